/**
 * Routes, marked with netkit's protocol (178), in any table (by name or
 * number). Read back with `ip -j route`; several changes in one batch.
 */
import {NetkitError, UsageError} from '../errors.js'
import {isNetkitProto, NETKIT_PROTO} from '../ownership.js'
import type {Runner} from '../runner.js'
import * as v from '../validate.js'
import {ipJson, requireLink} from './json.js'
import {ensureProtoName, tableName, tableNumber} from './tables.js'

/** A route as `ip -j route` prints it. */
export interface IpRoute {
  type?: string
  dst: string
  gateway?: string
  dev?: string
  protocol?: string
  metric?: number
  prefsrc?: string
  table?: string
  flags?: string[]
}

export interface RouteSpec {
  dst: string
  family: v.Family
  via?: string
  dev?: string
  table: number
  metric?: number
  src?: string
  onlink?: boolean
}

export interface RouteRow {
  dst: string
  family: v.Family
  via: string | null
  dev: string | null
  table: number
  tableName: string | null
  metric: number | null
  protocol: string
  src: string | null
  owned: boolean
}

function normDst(dst: string, family: v.Family): string {
  if (dst === 'default') return 'default'
  return dst.includes('/') ? dst : `${dst}/${family === 6 ? 128 : 32}`
}

/** A route as `ip -j route` prints it, as a spec: its family known (read with -4 or -6) or told by its addresses; `table` where it has none. */
export function routeOf(r: IpRoute, family: v.Family = r.dst.includes(':') || r.gateway?.includes(':') ? 6 : 4, table = 254): RouteSpec {
  return {dst: normDst(r.dst, family), family, via: r.gateway, dev: r.dev, table: tableNumber(r.table, table), metric: r.metric, src: r.prefsrc}
}

function toRow(r: IpRoute, family: v.Family, table: number): RouteRow {
  const s = routeOf(r, family, table)
  return {
    dst: s.dst,
    family,
    via: s.via ?? null,
    dev: s.dev ?? null,
    table: s.table,
    tableName: tableName(s.table) ?? null,
    metric: s.metric ?? null,
    protocol: r.protocol ?? 'boot',
    src: s.src ?? null,
    owned: isNetkitProto(r.protocol),
  }
}

/** Routes of a table ('all': every table), both families. */
export async function listRoutes(runner: Runner, opts: {table?: number | 'all'; owned?: boolean} = {}): Promise<RouteRow[]> {
  const t = opts.table ?? 254
  // Both families at once: two short reads in parallel.
  const perFamily = await Promise.all(
    ([4, 6] as const).map(async (family) => {
      // An empty table does not exist for the kernel ("FIB table does not exist"): no routes.
      const r = await runner.probe({tool: 'ip', args: ['-j', `-${family}`, 'route', 'show', 'table', String(t)]})
      if (r.exitCode !== 0 && !/table does not exist/i.test(r.stderr)) await ipJson(runner, [`-${family}`, 'route', 'show', 'table', String(t)])
      const rows = r.exitCode === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as IpRoute[]) : []
      return rows.filter((x) => !x.type || x.type === 'unicast').map((x) => toRow(x, family, t === 'all' ? 254 : t))
    }),
  )
  return perFamily.flat().filter((r) => !opts.owned || r.owned)
}

function sameRoute(r: RouteRow, s: RouteSpec): boolean {
  return (r.via ?? undefined) === s.via && (!s.dev || r.dev === s.dev) && (!s.src || r.src === s.src)
}

async function validate(runner: Runner, s: RouteSpec): Promise<void> {
  if (!s.via && !s.dev) throw new UsageError('a route needs --via IP or --dev IF (or both)', 'e.g. netkit route add 10.2.0.0/24 --via 10.1.0.254')
  if (s.dev) await requireLink(runner, s.dev)
}

function find(rows: RouteRow[], s: RouteSpec): RouteRow | undefined {
  return rows.find(
    (r) =>
      r.dst === s.dst &&
      r.family === s.family &&
      r.table === s.table &&
      (s.metric === undefined || (r.metric ?? 0) === s.metric || (s.family === 6 && r.metric === s.metric)),
  )
}

/** A batch line cannot carry -4/-6: the destination says the family ("::/0" for an IPv6 default). */
export function dstWord(s: {dst: string; family: v.Family}): string {
  return s.dst === 'default' && s.family === 6 ? '::/0' : s.dst
}

const PROTO_WORD = String(NETKIT_PROTO)

export function routeArgs(verb: string, s: RouteSpec): string[] {
  // Pushed one by one, not spread: apply makes tens of thousands of these.
  const args = ['route', verb, dstWord(s)]
  if (s.via) args.push('via', s.via)
  if (s.dev) args.push('dev', s.dev)
  if (s.src) args.push('src', s.src)
  if (s.metric !== undefined) args.push('metric', String(s.metric))
  if (s.onlink) args.push('onlink')
  args.push('proto', PROTO_WORD, 'table', String(s.table))
  return args
}

const describe = (s: RouteSpec) => `route ${s.dst}${s.table === 254 ? '' : ` in table ${tableName(s.table) ?? s.table}`}`

export async function addRoute(runner: Runner, s: RouteSpec, opts: {replace?: boolean} = {}): Promise<boolean> {
  await validate(runner, s)
  const existing = find(await listRoutes(runner, {table: s.table}), s)
  if (existing && sameRoute(existing, s)) return false
  if (existing && opts.replace && !existing.owned) {
    throw new UsageError(
      `${describe(s)} exists and was not made by netkit (protocol ${existing.protocol}): --replace changes only netkit's routes`,
      `netkit leaves other tools' routes alone; to take it over, run "netkit route del ${s.dst} --force" first`,
      'E_NOT_OWNED',
    )
  }
  if (existing && !opts.replace) {
    throw new NetkitError(
      'E_CONFLICT',
      `${describe(s)} already exists and goes ${existing.via ? `via ${existing.via} ` : ''}dev ${existing.dev}${existing.owned ? '' : ` (protocol ${existing.protocol}, not netkit's)`}`,
      {fix: 'delete it first, or pass --replace'},
    )
  }
  ensureProtoName(runner)
  await runner.batch([{args: routeArgs(existing ? 'replace' : 'add', s), object: describe(s)}])
  return true
}

export async function delRoute(
  runner: Runner,
  s: Omit<RouteSpec, 'via' | 'dev'> & {via?: string; dev?: string},
  opts: {force?: boolean} = {},
): Promise<boolean> {
  if (s.dev) await requireLink(runner, s.dev)
  const existing = (await listRoutes(runner, {table: s.table})).find(
    (r) =>
      r.dst === s.dst &&
      r.family === s.family &&
      (s.metric === undefined || (r.metric ?? 0) === s.metric) &&
      (!s.via || r.via === s.via) &&
      (!s.dev || r.dev === s.dev),
  )
  if (!existing) return false
  if (!existing.owned && !opts.force)
    throw new UsageError(
      `${describe(s as RouteSpec)} was not made by netkit (protocol ${existing.protocol})`,
      "netkit leaves other tools' routes alone; pass --force to delete it anyway",
      'E_NOT_OWNED',
    )
  await runner.batch([
    {
      args: [
        'route',
        'del',
        dstWord(s),
        ...(existing.via ? ['via', existing.via] : []),
        ...(existing.dev ? ['dev', existing.dev] : []),
        ...(existing.metric !== null ? ['metric', String(existing.metric)] : []),
        'proto',
        existing.owned ? String(NETKIT_PROTO) : existing.protocol,
        'table',
        String(s.table),
      ],
      object: describe(s as RouteSpec),
    },
  ])
  return true
}
