/**
 * Routes to a tunnel's remote subnets through a tunnel device, with netkit's
 * protocol; in a table of their own plus a policy rule when the tunnel has
 * --table (as Cilium routes its WireGuard traffic). All in one `ip -batch`.
 */
import {NetkitError} from '../errors.js'
import {type NumericRouteRow as RouteRow, routesExactly} from '../iproute2/route-exact.js'
import {ensureProtoName} from '../iproute2/tables.js'
import {NETKIT_PROTO} from '../ownership.js'
import type {Step} from '../plan.js'
import type {BatchLine} from '../runner.js'
import {listDefs} from './store.js'
import type {TunnelContext, TunnelDef} from './types.js'
import {netnsFlag} from '../wording.js'

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
        await refuseTakeover(def, ctx)
        ensureProtoName(ctx.runner)
        await ctx.runner.batch([...routeLines(def, dev, 'replace', via), ...ruleLines(def, 'add')])
      },
      undo: async () => removeRoutes(def, ctx, dev),
    },
  ]
}

/** charon's routing table (kernel-libipsec and the kernel data path alike). */
export const CHARON_TABLE = 220

/** The device a tunnel's routes go by (IPsec: charon's TUN device on kernel-libipsec; on the kernel path its routes are in table 220). */
export function tunnelDevice(def: TunnelDef): string | undefined {
  return def.wireguard?.ifname ?? def.vxlan?.ifname ?? (def.type === 'ipsec' ? 'ipsec0' : undefined)
}

/** Up to this many subnets, the takeover check reads each exactly; more, the whole routing table once. */
const EXACT_READS = 16

/** The routes to the subnets, in every table: each exactly (a few), or all of the families they are in (many). */
async function routesToSubnets(subnets: string[], ctx: TunnelContext): Promise<RouteRow[]> {
  const exact = subnets.length <= EXACT_READS ? await routesExactly(ctx.runner, subnets) : undefined
  if (exact) return exact.flat()
  // -N: tables and protocols as numbers, whatever names /etc/iproute2 gives them.
  // Only the families the subnets are in (one process fewer for the usual IPv4-only peer).
  const families = [...new Set(subnets.map((s) => (s.includes(':') ? '-6' : '-4')))]
  const reads = await Promise.all(families.map((family) => ctx.runner.probe({tool: 'ip', args: ['-N', '-j', family, 'route', 'show', 'table', 'all']})))
  // "default" is 0.0.0.0/0 (::/0): a tunnel that routes everything must not take the host's default route over either.
  return reads.flatMap((x, i) =>
    (x.exitCode === 0 && x.stdout.trim() ? (JSON.parse(x.stdout) as RouteRow[]) : []).map((r) =>
      r.dst === 'default' ? {...r, dst: families[i] === '-4' ? '0.0.0.0/0' : '::/0'} : r,
    ),
  )
}

/**
 * A remote subnet that something else carries is not taken over, whatever
 * the table and whatever the type of either tunnel. "route replace" would
 * silently take it in the tunnel's own table, and a route in another table
 * wins or loses by the rules' order (charon's table 220 comes before main,
 * a --table's rule before main too): either way one tunnel's traffic would
 * leave by the other, perhaps unencrypted. Refused before anything changes:
 *  - a route to the subnet in the tunnel's own table by another device;
 *  - a tunnel's route to it in any other table (netkit's protocol, or charon's table 220);
 *  - another tunnel of the namespace defined to carry it (an IPsec tunnel
 *    without an SA has no route yet, only its guard).
 * Two IPsec tunnels may carry the same subnet: two gateways to one site,
 * and charon routes by whichever has the SA.
 */
export async function refuseTakeover(def: TunnelDef, ctx: TunnelContext): Promise<void> {
  if (def.remoteSubnets.length === 0) return
  const ipsec = def.type === 'ipsec'
  const dev = tunnelDevice(def)
  const table = String(ipsec ? CHARON_TABLE : (def.table ?? 254))
  const rows = await routesToSubnets(def.remoteSubnets, ctx)
  const others = listDefs(ctx.configDir).filter((o) => o.name !== def.name)
  const ns = netnsFlag(ctx.runner.netns)
  const fix = (owner: string | undefined, subnet: string, sameTable: boolean) =>
    owner
      ? `remove tunnel ${owner} first ("netkit tunnel del ${owner}${ns}"), or let one tunnel carry ${subnet}`
      : `remove that route first${sameTable && !ipsec ? `, or give tunnel ${def.name} a table of its own (--table N)` : ''}`
  for (const subnet of def.remoteSubnets) {
    const host = subnet.includes(':') ? '/128' : '/32'
    const other = rows.find((x) => {
      if ((x.dst !== subnet && `${x.dst}${host}` !== subnet) || (x.type && x.type !== '1')) return false
      const t = x.table ?? '254'
      // IPsec's own: charon's table and device.
      if (ipsec && (t === String(CHARON_TABLE) || x.dev === dev)) return false
      if (t === table) return x.dev !== dev
      return x.protocol === '178' || t === String(CHARON_TABLE)
    })
    if (other) {
      const t = other.table ?? '254'
      const owner =
        (t === String(CHARON_TABLE) || other.dev === 'ipsec0'
          ? others.find((o) => o.type === 'ipsec' && o.remoteSubnets.includes(subnet))
          : others.find((o) => tunnelDevice(o) === other.dev)
        )?.name ?? /^(wg|vx)-(.+)$/.exec(other.dev ?? '')?.[2]
      throw new NetkitError(
        'E_CONFLICT',
        `route ${subnet}${t === '254' ? '' : ` in table ${t}`} already goes ${other.gateway ? `via ${other.gateway} ` : ''}dev ${other.dev}${owner ? ` (tunnel ${owner})` : ''}: tunnel ${def.name} would take it over`,
        {
          fix: fix(owner, subnet, t === table),
        },
      )
    }
    const carrier = others.find((o) => o.remoteSubnets.includes(subnet) && !(ipsec && o.type === 'ipsec'))
    if (carrier) {
      throw new NetkitError('E_CONFLICT', `tunnel ${carrier.name} (${carrier.type}) already carries ${subnet}: tunnel ${def.name} would take it over`, {
        fix: fix(carrier.name, subnet, false),
      })
    }
  }
}

/** Puts the tunnel's routes and rules (back) in place, without the takeover check (an undo). */
export async function addRoutes(def: TunnelDef, ctx: TunnelContext, dev: string): Promise<void> {
  if (def.remoteSubnets.length) await ctx.runner.batch([...routeLines(def, dev, 'replace'), ...ruleLines(def, 'add')])
}

/**
 * Removes the tunnel's routes and rules. What is already gone is fine (read
 * first, so only what is there is deleted); one that is there and cannot be
 * removed is an error, not a rule left behind in silence (a rule outlives its
 * device, and would send the subnet into a table that a --replace moved away from).
 */
export async function removeRoutes(def: TunnelDef, ctx: TunnelContext, dev: string): Promise<void> {
  if (def.remoteSubnets.length === 0) return
  const there = await routesAndRulesThere(def, ctx, dev)
  const lines = [...ruleLines(def, 'del'), ...routeLines(def, dev, 'del')].filter((l) =>
    there.has(`${l.args[0]} ${l.args[2] === 'to' ? l.args[3] : l.args[2]}`),
  )
  if (lines.length > 0) await ctx.runner.batch(lines)
}

/** Which of the tunnel's rules ("rule SUBNET") and routes ("route SUBNET") are there now. */
async function routesAndRulesThere(def: TunnelDef, ctx: TunnelContext, dev: string): Promise<Set<string>> {
  const table = String(def.table ?? 254)
  const there = new Set<string>()
  const read = async (args: string[]) => {
    const r = await ctx.runner.probe({tool: 'ip', args: ['-N', '-j', ...args]})
    try {
      return r.exitCode === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>[]) : []
    } catch {
      return []
    }
  }
  // ip prints a host route or rule without its prefix length.
  const cidr = (dst: unknown, len: unknown) => (String(dst).includes('/') ? String(dst) : `${dst}/${len ?? (String(dst).includes(':') ? 128 : 32)}`)
  // Only the families the subnets are in; both at once.
  const families = [...new Set(def.remoteSubnets.map((s) => (s.includes(':') ? '-6' : '-4')))]
  const reads = await Promise.all(
    families.map((family) =>
      Promise.all([
        read([family, 'route', 'show', 'table', table, 'proto', String(NETKIT_PROTO)]),
        def.table === undefined ? Promise.resolve([]) : read([family, 'rule', 'show']),
      ]),
    ),
  )
  for (const [routes, rules] of reads) {
    for (const r of routes) if (r.dev === dev) there.add(`route ${cidr(r.dst, undefined)}`)
    for (const r of rules) {
      if (r.dst !== undefined && String(r.table) === table && r.priority === TUNNEL_RULE_PRIORITY && String(r.protocol) === String(NETKIT_PROTO))
        there.add(`rule ${cidr(r.dst, r.dstlen)}`)
    }
  }
  return there
}
