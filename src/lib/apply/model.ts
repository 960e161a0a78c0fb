/**
 * Host objects as `apply` sees them: each with an identity (key), a
 * comparable description of what it is, and the iproute2 lines that add and
 * delete it. Made from the host file (desired) and from the live state read
 * with `ip -j` (live), so both can be compared and either re-made on undo.
 */
import {addArgs, type LinkSpec} from '../iproute2/link.js'
import type {IpLink} from '../iproute2/json.js'
import {dstWord, routeArgs, type RouteSpec} from '../iproute2/route.js'
import {markText as ruleMark, type RuleSpec, selectorArgs} from '../iproute2/rule.js'
import {policyArgs, type PolicySpec} from '../iproute2/xfrm.js'
import {NETKIT_ALIAS, NETKIT_PROTO} from '../ownership.js'
import type {BatchLine} from '../runner.js'

export const KINDS = ['table', 'link', 'addr', 'sysctl', 'route', 'rule', 'proxy', 'xfrm-policy'] as const
export type Kind = (typeof KINDS)[number]

export interface Obj {
  kind: Kind
  key: string
  /** What it is, for comparing desired with live (only the fields the file gives count). */
  attrs: Record<string, string | number | boolean | undefined>
  desc: string
  add: BatchLine[]
  del: BatchLine[]
  /** Non-iproute2 objects. */
  sysctl?: {path: string; value: string}
  table?: {name: string; id: number}
  owned: boolean
  /** The object as an entry of a host file (for export). */
  entry?: Record<string, unknown>
}

const clean = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined && x !== null && x !== ''))

const line = (args: string[], object: string): BatchLine => ({args, object})

export function linkObj(s: LinkSpec & {master?: string; up?: boolean}, owned = true): Obj {
  const desc = `${s.kind} link ${s.name}`
  const add = [line(addArgs(s), desc), line(['link', 'set', s.name, 'alias', NETKIT_ALIAS], desc)]
  if (s.kind === 'veth') add.push(line(['link', 'set', s.peer!, 'alias', NETKIT_ALIAS], desc))
  if (s.master) add.push(line(['link', 'set', s.name, 'master', s.master], desc))
  if (s.up) {
    add.push(line(['link', 'set', s.name, 'up'], desc))
    if (s.kind === 'veth') add.push(line(['link', 'set', s.peer!, 'up'], desc))
  }
  return {
    kind: 'link',
    key: s.name,
    attrs: {type: s.kind, peer: s.peer, vni: s.vni, remote: s.remote, group: s.group, dev: s.dev, port: s.kind === 'vxlan' ? (s.port ?? 4789) : undefined, parent: s.parent, mode: s.kind === 'macvlan' ? (s.mode ?? 'bridge') : undefined, mtu: s.mtu, master: s.master, up: s.up},
    desc,
    add,
    del: [line(['link', 'del', s.name], desc)],
    owned,
    entry: clean({name: s.name, type: s.kind, peer: s.peer, vni: s.vni, remote: s.remote, group: s.group, dev: s.dev, port: s.kind === 'vxlan' ? s.port : undefined, parent: s.parent, mode: s.kind === 'macvlan' ? s.mode : undefined, mtu: s.mtu, master: s.master, up: s.up}),
  }
}

export function liveLink(l: IpLink): Obj | undefined {
  const kind = l.linkinfo?.info_kind
  if (kind !== 'veth' && kind !== 'bridge' && kind !== 'vxlan' && kind !== 'macvlan') return undefined
  const d = (l.linkinfo?.info_data ?? {}) as Record<string, unknown>
  return linkObj(
    {
      name: l.ifname,
      kind,
      ...(kind === 'veth' ? {peer: l.link} : {}),
      ...(kind === 'vxlan' ? {vni: d.id as number, remote: d.remote as string | undefined, group: d.group as string | undefined, dev: l.link, port: d.port as number} : {}),
      ...(kind === 'macvlan' ? {parent: l.link, mode: d.mode as LinkSpec['mode']} : {}),
      mtu: l.mtu,
      master: l.master,
      up: Boolean(l.flags?.includes('UP')),
    },
    l.ifalias === NETKIT_ALIAS,
  )
}

export function addrObj(dev: string, cidr: string, owned = true): Obj {
  const desc = `address ${cidr} on ${dev}`
  return {kind: 'addr', key: `${dev} ${cidr}`, attrs: {}, desc, add: [line(['addr', 'add', cidr, 'dev', dev], desc)], del: [line(['addr', 'del', cidr, 'dev', dev], desc)], owned, entry: {dev, address: cidr}}
}

export function routeObj(r: RouteSpec, owned = true): Obj {
  const desc = `route ${r.dst}${r.table === 254 ? '' : ` (table ${r.table})`}`
  return {
    kind: 'route',
    key: `${r.table} ${r.dst} ${r.metric ?? (r.family === 6 ? 1024 : 0)}`,
    attrs: {via: r.via, dev: r.dev, src: r.src},
    desc,
    add: [line(routeArgs('add', r), desc)],
    del: [line(['route', 'del', dstWord(r), ...(r.metric !== undefined ? ['metric', String(r.metric)] : []), 'table', String(r.table)], desc)],
    owned,
    entry: clean({to: r.dst, via: r.via, dev: r.dev, table: r.table === 254 ? undefined : r.table, metric: r.metric, src: r.src}),
  }
}

export function ruleObj(r: RuleSpec, owned = true): Obj {
  const sel = selectorArgs(r)
  const desc = `rule ${sel.join(' ') || 'from all'} priority ${r.priority}`
  return {
    kind: 'rule',
    key: `${r.family} ${r.priority} ${r.from ?? 'all'} ${r.to ?? 'all'} ${ruleMark(r.fwmark) ?? '-'} ${r.iif ?? '-'} ${r.oif ?? '-'}`,
    attrs: {table: r.table},
    desc,
    add: [line(['rule', 'add', ...sel, 'table', String(r.table), 'priority', String(r.priority), 'protocol', String(NETKIT_PROTO)], desc)],
    del: [line(['rule', 'del', ...sel, 'table', String(r.table), 'priority', String(r.priority)], desc)],
    owned,
    entry: clean({from: r.from, to: r.to, fwmark: ruleMark(r.fwmark) ?? undefined, iif: r.iif, oif: r.oif, table: r.table, priority: r.priority}),
  }
}

export function proxyObj(address: string, dev: string, owned = true): Obj {
  const desc = `proxy entry ${address} on ${dev}`
  return {kind: 'proxy', key: `${address} ${dev}`, attrs: {}, desc, add: [line(['neigh', 'add', 'proxy', address, 'dev', dev, 'protocol', String(NETKIT_PROTO)], desc)], del: [line(['neigh', 'del', 'proxy', address, 'dev', dev], desc)], owned, entry: {address, dev}}
}

export function policyObj(p: PolicySpec, mark: string | undefined, owned = true): Obj {
  const desc = `xfrm policy ${p.src} -> ${p.dst} dir ${p.dir}`
  return {
    kind: 'xfrm-policy',
    key: `${p.src} ${p.dst} ${p.dir} ${mark ?? '-'}`,
    attrs: {priority: p.priority, action: p.action, tmpl: p.tmplSrc ? `${p.tmplSrc}>${p.tmplDst} ${p.mode} ${p.reqid ?? ''}` : ''},
    desc,
    add: [line(policyArgs('add', p) as string[], desc)],
    del: [line(['xfrm', 'policy', 'delete', 'src', p.src, 'dst', p.dst, 'dir', p.dir, ...(p.mark ? ['mark', `0x${p.mark.value.toString(16)}`, 'mask', `0x${(p.mark.mask ?? 0xffff_ffff).toString(16)}`] : [])], desc)],
    owned,
    entry: clean({src: p.src, dst: p.dst, dir: p.dir, tmplSrc: p.tmplSrc, tmplDst: p.tmplDst, mode: p.tmplSrc ? p.mode : undefined, reqid: p.reqid, priority: p.priority, mark, action: p.action}),
  }
}

export function sysctlObj(path: string, value: string, owned = true): Obj {
  return {kind: 'sysctl', key: path, attrs: {value}, desc: `sysctl ${path.replaceAll('/', '.')} = ${value}`, add: [], del: [], sysctl: {path, value}, owned}
}

export function tableObj(name: string, id: number, owned = true): Obj {
  return {kind: 'table', key: name, attrs: {id}, desc: `table ${name} (${id})`, add: [], del: [], table: {name, id}, owned}
}

/** The attributes of `desired` that `live` has differently (attributes the file leaves out do not count). */
export function differences(desired: Obj, live: Obj): string[] {
  const out: string[] = []
  for (const [k, want] of Object.entries(desired.attrs)) {
    if (want === undefined) continue
    const have = live.attrs[k]
    if (String(have ?? '') !== String(want)) out.push(`${k} ${have ?? 'unset'}, not ${want}`)
  }
  return out
}
