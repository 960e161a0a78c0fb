/** Turning route and rule flags into specs: shared by the route and rule commands. */
import {UsageError} from '../errors.js'
import * as v from '../validate.js'
import type {RouteSpec} from './route.js'
import type {RuleSpec} from './rule.js'
import {resolveTable} from './tables.js'

export interface RouteFlags {
  via?: v.Address
  dev?: string
  table?: string
  metric?: number
  src?: v.Address
  onlink?: boolean
}

export function routeSpec(dest: string, f: RouteFlags): RouteSpec {
  const d = v.routeDestination(dest)
  const family: v.Family = d !== 'default' ? d.family : (f.via?.family ?? f.src?.family ?? 4)
  if (f.via) v.sameFamily({family}, f.via, 'the destination and --via')
  if (f.src) v.sameFamily({family}, f.src, 'the destination and --src')
  return {
    dst: v.dstText(d),
    family,
    via: f.via?.ip,
    dev: f.dev,
    table: f.table ? resolveTable(f.table) : 254,
    metric: f.metric,
    src: f.src?.ip,
    onlink: f.onlink,
  }
}

export interface RuleFlags {
  from?: v.Cidr
  to?: v.Cidr
  fwmark?: v.Mark
  iif?: string
  oif?: string
  table: string
  priority: number
}

export function ruleSpec(f: RuleFlags): RuleSpec {
  if (f.from && f.to) v.sameFamily(f.from, f.to, '--from and --to')
  if (!f.from && !f.to && !f.fwmark && !f.iif && !f.oif)
    throw new UsageError('a rule needs a selector: --from, --to, --fwmark, --iif or --oif', 'e.g. netkit rule add --from 10.1.0.0/24 --table vpn')
  // A /0 is "all", as the kernel reports it (and an explicit "from all" is a selector).
  const net = (c?: v.Cidr) => (c && c.prefix > 0 ? c.cidr : undefined)
  return {
    family: f.from?.family ?? f.to?.family ?? 4,
    from: net(f.from),
    to: net(f.to),
    fwmark: f.fwmark,
    iif: f.iif,
    oif: f.oif,
    table: resolveTable(f.table),
    priority: f.priority,
  }
}
