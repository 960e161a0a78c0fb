/**
 * Who peers with whom, and what each link carries.
 *
 * full-mesh: every host peers with every other; a peer carries its own
 * overlay address (a /32 or /128) and its subnets.
 *
 * hub-and-spoke: hubs peer with every host (hubs with each other, and with
 * every spoke); a spoke peers with the hubs only. A spoke reaches the other
 * spokes through the first hub listed (WireGuard's allowed-ips and IPsec's
 * traffic selectors of one destination belong to one peer), which forwards
 * (ip_forward is set on hubs). Every other hub carries only itself.
 */
import type {Inventory} from './inventory.js'

export interface Link {
  /** The peer's name. */
  peer: string
  /** What this host sends to the peer: the peer's own networks, and for a spoke's first hub the other spokes' too. */
  remote: string[]
  /** What the peer sends to this host (its `remote` seen from the other end): IPsec's local traffic selectors. */
  local: string[]
}

export interface HostPlan {
  name: string
  hub: boolean
  links: Link[]
}

/** The overlay address as a single-host network. */
export const hostNet = (ip: string) => `${ip}/${ip.includes(':') ? 128 : 32}`

/** Every host's links, peers sorted by name (so the rendered files do not depend on the inventory's order). */
export function plan(inv: Inventory, overlay: Map<string, string>): HostPlan[] {
  const own = new Map(inv.hosts.map((h) => [h.name, [hostNet(overlay.get(h.name)!), ...h.subnets]]))
  const hubs = new Set(inv.topology === 'hub-and-spoke' ? inv.hubs : [])
  const primary = inv.topology === 'hub-and-spoke' ? inv.hubs[0] : undefined
  const spokes = inv.hosts.filter((h) => primary !== undefined && !hubs.has(h.name)).map((h) => h.name)
  const peersOf = (name: string): string[] => inv.hosts.map((h) => h.name).filter((n) => n !== name && (primary === undefined || hubs.has(name) || hubs.has(n)))
  // What host `from` sends to `to`.
  const carried = (from: string, to: string): string[] => {
    const nets = [...own.get(to)!]
    if (to === primary && !hubs.has(from)) for (const s of spokes) if (s !== from) nets.push(...own.get(s)!)
    return nets
  }
  const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
  return inv.hosts
    .map((h) => ({
      name: h.name,
      hub: hubs.has(h.name),
      links: peersOf(h.name)
        .sort(byName)
        .map((p) => ({peer: p, remote: carried(h.name, p), local: carried(p, h.name)})),
    }))
    .sort((a, b) => byName(a.name, b.name))
}
