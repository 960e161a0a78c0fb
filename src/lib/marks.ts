/**
 * The marks netkit puts on what it makes, so it can tell its own objects from
 * everyone else's: a routing protocol number on routes, rules and proxy
 * neighbours, and an alias on links.
 */

/** The routing protocol number netkit puts on its routes, rules and proxy neighbours. */
export const NETKIT_PROTO = 178
/** The name netkit registers for it (rt_protos.d/netkit.conf). */
export const NETKIT_PROTO_NAME = 'netkit'
/** The alias netkit puts on links it creates. */
export const NETKIT_ALIAS = 'netkit'
