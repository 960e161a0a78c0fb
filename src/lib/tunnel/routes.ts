/**
 * Routes to a tunnel's remote subnets through a tunnel device, with netkit's
 * protocol; in a table of their own plus a policy rule when the tunnel has
 * --table (as Cilium routes its WireGuard traffic). All in one `ip -batch`.
 */
import {NetkitError} from '../errors.js'
import {ensureProtoName} from '../iproute2/tables.js'
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
        await refuseTakeover(def, ctx, dev)
        ensureProtoName({dryRun: ctx.runner.dryRun})
        await ctx.runner.batch([...routeLines(def, dev, 'replace', via), ...ruleLines(def, 'add')])
      },
      undo: async () => removeRoutes(def, ctx, dev),
    },
  ]
}

/**
 * "route replace" would silently take a remote subnet's route from whatever
 * carries it now (another tunnel: its traffic would then leave by this one,
 * perhaps unencrypted). A route to the same subnet in the same table by
 * another device is an error, before anything changes.
 */
async function refuseTakeover(def: TunnelDef, ctx: TunnelContext, dev: string): Promise<void> {
  const table = String(def.table ?? 254)
  const reads = await Promise.all([[], ['-6']].map((family) => ctx.runner.probe({tool: 'ip', args: ['-j', ...family, 'route', 'show', 'table', table]})))
  const rows = reads.flatMap((x) => (x.exitCode === 0 && x.stdout.trim() ? (JSON.parse(x.stdout) as {dst: string; dev?: string; gateway?: string; type?: string}[]) : []))
  for (const subnet of def.remoteSubnets) {
    const host = subnet.includes(':') ? '/128' : '/32'
    const other = rows.find((x) => (x.dst === subnet || `${x.dst}${host}` === subnet) && (!x.type || x.type === 'unicast') && x.dev !== dev)
    if (!other) continue
    const owner = /^(wg|vx)-(.+)$/.exec(other.dev ?? '')?.[2]
    throw new NetkitError('E_CONFLICT', `route ${subnet}${def.table === undefined ? '' : ` in table ${table}`} already goes ${other.gateway ? `via ${other.gateway} ` : ''}dev ${other.dev}${owner ? ` (tunnel ${owner})` : ''}: tunnel ${def.name} would take it over`, {
      fix: `remove that ${owner ? 'tunnel' : 'route'} first, or give tunnel ${def.name} a table of its own (--table N)`,
    })
  }
}

/** Removes the tunnel's routes and rules; what is already gone is fine. */
export async function removeRoutes(def: TunnelDef, ctx: TunnelContext, dev: string): Promise<void> {
  // One process: -force goes on past lines whose object is already gone.
  await ctx.runner.batch([...ruleLines(def, 'del'), ...routeLines(def, dev, 'del')], undefined, {force: true}).catch(() => {})
}
