/**
 * Routes as apply sees them: made from a host file's entry or from `ip -j
 * route show table all` (through iproute2/route.ts's parser), marked with
 * netkit's protocol.
 */
import type {z} from 'zod/v4'

import {dstWord, type IpRoute, routeArgs, routeOf, type RouteSpec} from '../iproute2/route.js'
import {isNetkitProto, NETKIT_PROTO} from '../ownership.js'
import type {BatchLine} from '../runner.js'
import * as v from '../validate.js'
import {type Attrs, clean, line, mixedFamilies, Obj, sameValue, TUNNEL_DEV} from './object.js'
import type {AddIssue, Path, SchemaParts} from './schema-parts.js'

export const routeSchema = ({z, dest, ip, ifname, table, u32}: SchemaParts) =>
  z.strictObject({
    to: dest.describe('the destination'),
    via: ip.optional().describe('the gateway (a route needs via or dev)'),
    dev: ifname.optional().describe('the device'),
    table: table.optional().describe('the routing table (default main)'),
    metric: u32.optional().describe('the metric'),
    src: ip.optional().describe("the source address (one of this host's)"),
  })

export type RouteEntry = z.output<ReturnType<typeof routeSchema>>

/**
 * A route entry checked without zod (a file can hold hundreds of thousands): exactly what `routeSchema`
 * gives for it, or undefined for anything else, which the schema then checks and names what is wrong.
 */
export function routeEntryFast(x: unknown): RouteEntry | undefined {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return undefined
  const entry = x as Record<string, unknown>
  const out: Partial<Record<keyof RouteEntry, unknown>> = {}
  try {
    for (const k in entry) {
      const value = entry[k]
      if (k === 'metric') {
        if (!Number.isSafeInteger(value) || (value as number) < 0 || (value as number) > v.U32_MAX) return undefined
        out.metric = value
      } else if (k === 'table') {
        if (typeof value === 'string' && value.length > 0) out.table = value
        else if (Number.isSafeInteger(value) && (value as number) >= 1) out.table = String(value)
        else return undefined
      } else if (typeof value !== 'string') return undefined
      else if (k === 'to') out.to = v.routeDestination(value)
      else if (k === 'dev') out.dev = v.ifname(value)
      else if (k === 'via' || k === 'src') out[k] = v.ipAddress(value)
      else return undefined
    }
  } catch {
    return undefined
  }
  return out.to === undefined ? undefined : (out as RouteEntry)
}

/** A route: via or dev; to, via and src of one family. */
export function checkRoutes(routes: RouteEntry[], prefix: Path, add: AddIssue): void {
  routes.forEach((r, i) => {
    if (!r.via && !r.dev) add({path: [...prefix, 'routes', i], message: 'a route needs via or dev'})
    if (mixedFamilies(r.to === 'default' ? undefined : r.to.family, r.via?.family, r.src?.family))
      add({path: [...prefix, 'routes', i], message: 'to, via and src are of different address families (IPv4 and IPv6)'})
  })
}

export class RouteObj extends Obj {
  get kind() {
    return 'route' as const
  }

  declare readonly spec: RouteSpec

  constructor(spec: RouteSpec, owned = true) {
    super(`${spec.table} ${spec.dst} ${spec.metric ?? (spec.family === 6 ? 1024 : 0)}`, owned)
    this.spec = spec
  }

  get attrs(): Attrs {
    return {via: this.spec.via, dev: this.spec.dev, src: this.spec.src}
  }

  /** `differences` finds none, told from the specs (tens of thousands of routes are compared at each apply). */
  override matches(live: Obj): boolean {
    if (!(live instanceof RouteObj)) return super.matches(live)
    const d = this.spec
    const l = live.spec
    return (
      (d.via === undefined || sameValue(d.via, l.via)) && (d.dev === undefined || sameValue(d.dev, l.dev)) && (d.src === undefined || sameValue(d.src, l.src))
    )
  }

  get desc(): string {
    return `route ${this.spec.dst}${this.spec.table === 254 ? '' : ` (table ${this.spec.table})`}`
  }

  override get add(): BatchLine[] {
    return [line(routeArgs('add', this.spec), this.desc)]
  }

  override get del(): BatchLine[] {
    const r = this.spec
    // Only netkit's (protocol 178): undoing an add that failed must not take a foreign route to the same place.
    return [
      line(
        ['route', 'del', dstWord(r), ...(r.metric !== undefined ? ['metric', String(r.metric)] : []), 'proto', String(NETKIT_PROTO), 'table', String(r.table)],
        this.desc,
      ),
    ]
  }

  override get entry(): Record<string, unknown> {
    const r = this.spec
    return clean({to: r.dst, via: r.via, dev: r.dev, table: r.table === 254 ? undefined : r.table, metric: r.metric, src: r.src})
  }
}

/** A host file's route entry as an object; `tableOf` gives a table name's number. */
export function routeFromEntry(r: RouteEntry, tableOf: (t?: string) => number): RouteObj {
  const d = r.to
  const family: v.Family = d === 'default' ? (r.via?.family ?? 4) : d.family
  return new RouteObj({dst: v.dstText(d), family, via: r.via?.ip, dev: r.dev, table: tableOf(r.table), metric: r.metric, src: r.src?.ip})
}

/** The live unicast routes of every table but local, from `ip -j route show table all`. */
export function liveRoutes(rows: IpRoute[]): RouteObj[] {
  const out: RouteObj[] = []
  for (const r of rows) {
    if (r.type && r.type !== 'unicast') continue
    const spec = routeOf(r)
    if (spec.table === 255) continue
    const o = new RouteObj(spec, isNetkitProto(r.protocol))
    o.auto = r.protocol === 'kernel' || r.protocol === 'ra' || spec.dst.startsWith('fe80:') || TUNNEL_DEV.test(r.dev ?? '')
    out.push(o)
  }
  return out
}
