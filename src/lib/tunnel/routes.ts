/**
 * Routes to a tunnel's remote subnets through a tunnel device, with netkit's
 * protocol; in a table of their own plus a policy rule when the tunnel has
 * --table (as Cilium routes its WireGuard traffic). All in one `ip -batch`.
 */
import {NETKIT_PROTO} from '../ownership.js'
import type {Step} from '../plan.js'
import type {BatchLine} from '../runner.js'
import type {TunnelContext, TunnelDef} from './types.js'

/** The priority of the rules netkit adds for tunnel tables (before main at 32766). */
export const TUNNEL_RULE_PRIORITY = 1000

function routeLines(def: TunnelDef, dev: string, verb: 'replace' | 'del', via?: string): BatchLine[] {
  const table = String(def.table ?? 254)
  return def.remoteSubnets.map((subnet) => ({
    args: ['route', verb, subnet, ...(via ? ['via', via] : []), 'dev', dev, 'proto', String(NETKIT_PROTO), 'table', table],
    object: `route ${subnet} (tunnel ${def.name})`,
  }))
}

function ruleLines(def: TunnelDef, verb: 'add' | 'del'): BatchLine[] {
  if (def.table === undefined) return []
  return def.remoteSubnets.map((subnet) => ({
    args: ['rule', verb, 'to', subnet, 'table', String(def.table), 'priority', String(TUNNEL_RULE_PRIORITY), 'protocol', String(NETKIT_PROTO)],
    object: `rule to ${subnet} table ${def.table} (tunnel ${def.name})`,
    // `ip rule` takes an IPv6 subnet only with -6.
    ...(subnet.includes(':') ? {family: 6 as const} : {}),
  }))
}

/**
 * `via`: the peer's address inside the tunnel, for layer-2 tunnels (VXLAN),
 * where the remote subnets are behind the peer rather than on the link.
 */
export function routeSteps(def: TunnelDef, ctx: TunnelContext, dev: string, via?: string): Step[] {
  if (def.remoteSubnets.length === 0) return []
  return [
    {
      title: `route ${def.remoteSubnets.join(', ')} through ${dev}${def.table === undefined ? '' : ` (table ${def.table})`}`,
      apply: async () => {
        await ctx.runner.batch([...routeLines(def, dev, 'replace', via), ...ruleLines(def, 'add')])
      },
      undo: async () => removeRoutes(def, ctx, dev),
    },
  ]
}

/** Removes the tunnel's routes and rules; what is already gone is fine. */
export async function removeRoutes(def: TunnelDef, ctx: TunnelContext, dev: string): Promise<void> {
  // One process: -force goes on past lines whose object is already gone.
  await ctx.runner.batch([...ruleLines(def, 'del'), ...routeLines(def, dev, 'del')], undefined, {force: true}).catch(() => {})
}
