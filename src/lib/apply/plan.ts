/**
 * Desired (the host file) against live (ip -j, ip xfrm, sysctl, netkit's
 * files): what to add, change and remove, in an order that works (tables and
 * links before what uses them; removals the other way round). Only objects a
 * previous `apply` made (recorded in the ledger) are ever removed; a foreign
 * object in the way is an error, never touched.
 */
import {NetkitError} from '../errors.js'
import {type IpLink, ipJson, ipJsonProbe} from '../iproute2/json.js'
import {type LinkSpec} from '../iproute2/link.js'
import type {IpRoute} from '../iproute2/route.js'
import type {IpRule} from '../iproute2/rule.js'
import {listTables, resolveTable, tableNumber} from '../iproute2/tables.js'
import {parsePolicies} from '../iproute2/xfrm-parse.js'
import {isNetkitProto, owned, scopeOf} from '../ownership.js'
import type {Runner} from '../runner.js'
import {getSysctls, resolveKey} from '../sysctl.js'
import * as v from '../validate.js'
import {
  addrObj, differences, KINDS, type Kind, linkObj, liveLink, type Obj, policyObj, proxyObj, routeObj, ruleObj, sysctlObj, tableObj,
} from './model.js'
import type {HostFile} from './schema.js'

export interface Change {
  action: 'add' | 'change' | 'remove'
  kind: Kind
  desc: string
  /** What is there now (change, remove), and what should be (add, change). */
  live?: Obj
  desired?: Obj
  why?: string
}

export interface Plan {
  changes: Change[]
  unchanged: number
}

export function desiredObjects(f: HostFile): Obj[] {
  const out: Obj[] = []
  for (const [name, id] of Object.entries(f.tables)) out.push(tableObj(name, id))
  const tableOf = (t?: string) => (t === undefined ? 254 : (f.tables[t] ?? resolveTable(t)))
  for (const l of f.links) out.push(linkObj({name: l.name, kind: l.type, peer: l.peer, vni: l.vni, remote: l.remote, group: l.group, dev: l.dev, port: l.port, parent: l.parent, mode: l.mode, mtu: l.mtu, master: l.master, up: l.up} as LinkSpec & {master?: string; up?: boolean}))
  for (const a of f.addresses) out.push(addrObj(a.dev, v.interfaceAddress(a.address).cidr))
  for (const [k, value] of Object.entries(f.sysctls)) out.push(sysctlObj(resolveKey(k).path, value))
  for (const r of f.routes) {
    const d = v.routeDestination(r.to)
    const family: v.Family = d === 'default' ? (r.via?.includes(':') ? 6 : 4) : d.family
    out.push(routeObj({dst: d === 'default' ? 'default' : d.cidr, family, via: r.via, dev: r.dev, table: tableOf(r.table), metric: r.metric, src: r.src}))
  }
  for (const r of f.rules) {
    const from = r.from ? v.network(r.from) : undefined
    const to = r.to ? v.network(r.to) : undefined
    out.push(ruleObj({family: from?.family ?? to?.family ?? 4, from: from?.cidr, to: to?.cidr, fwmark: r.fwmark ? v.mark(r.fwmark) : undefined, iif: r.iif, oif: r.oif, table: tableOf(r.table), priority: r.priority}))
  }
  for (const p of f.proxyArp) out.push(proxyObj(v.ipAddress(p.address).ip, p.dev))
  for (const p of f.xfrmPolicies) {
    const mark = p.mark ? v.mark(p.mark) : undefined
    const src = v.network(p.src)
    out.push(policyObj({src: src.cidr, dst: v.network(p.dst).cidr, family: src.family, dir: p.dir, tmplSrc: p.tmplSrc, tmplDst: p.tmplDst, proto: 'esp', mode: p.mode, reqid: p.reqid, priority: p.priority, mark, action: p.action}, mark ? `0x${mark.value.toString(16)}/0x${(mark.mask ?? 0xffff_ffff).toString(16)}` : undefined))
  }
  return out
}


/** The live objects of the kinds the file or the ledger mentions: one read per kind. */
export async function liveObjects(runner: Runner, desired: Obj[]): Promise<Obj[]> {
  const out: Obj[] = []
  for (const t of listTables()) if (t.source !== 'built in') out.push(tableObj(t.name, t.id, t.owned))
  const [links, routes4, routes6, rules4, rules6, neigh4, neigh6, addrs] = await Promise.all([
    ipJson<IpLink>(runner, ['-d', 'link', 'show']),
    ipJsonProbe<IpRoute>(runner, ['-4', 'route', 'show', 'table', 'all']),
    ipJsonProbe<IpRoute>(runner, ['-6', 'route', 'show', 'table', 'all']),
    ipJson<IpRule>(runner, ['-4', 'rule', 'show']),
    ipJson<IpRule>(runner, ['-6', 'rule', 'show']),
    ipJsonProbe<{dst: string; dev: string; protocol?: string}>(runner, ['neigh', 'show', 'proxy']),
    ipJsonProbe<{dst: string; dev: string; protocol?: string}>(runner, ['-6', 'neigh', 'show', 'proxy']),
    ipJson<{ifname: string; addr_info?: {local: string; prefixlen: number}[]}>(runner, ['addr', 'show']),
  ])
  for (const l of links) {
    const o = liveLink(l)
    if (o) out.push(o)
  }
  const ledgerAddrs = owned(scopeOf(runner.netns), 'addr')
  for (const l of addrs) for (const a of l.addr_info ?? []) out.push(addrObj(l.ifname, `${a.local}/${a.prefixlen}`, Boolean(ledgerAddrs[`${l.ifname} ${a.local}/${a.prefixlen}`])))
  for (const [family, rows] of [[4, routes4], [6, routes6]] as const) {
    for (const r of rows) {
      if (r.type && r.type !== 'unicast') continue
      const table = tableNumber(r.table, 254)
      if (table === 255) continue
      const dst = r.dst === 'default' ? 'default' : r.dst.includes('/') ? r.dst : `${r.dst}/${family === 6 ? 128 : 32}`
      out.push(routeObj({dst, family, via: r.gateway, dev: r.dev, table, metric: r.metric, src: r.prefsrc}, isNetkitProto(r.protocol)))
    }
  }
  for (const [family, rows] of [[4, rules4], [6, rules6]] as const) {
    for (const r of rows) {
      const net = (a?: string, len?: number) => (!a || a === 'all' ? undefined : `${a}/${len ?? (family === 6 ? 128 : 32)}`)
      const fwmark = r.fwmark ? v.mark(`${r.fwmark}${r.fwmask ? `/${r.fwmask}` : ''}`) : undefined
      out.push(ruleObj({family, from: net(r.src, r.srclen), to: net(r.dst, r.dstlen), fwmark, iif: r.iif, oif: r.oif, table: tableNumber(r.table, 0), priority: r.priority}, isNetkitProto(r.protocol)))
    }
  }
  for (const n of [...neigh4, ...neigh6]) out.push(proxyObj(n.dst, n.dev, isNetkitProto(n.protocol)))
  if (desired.some((d) => d.kind === 'xfrm-policy') || Object.keys(owned(scopeOf(runner.netns), 'applied')).some((k) => k.startsWith('xfrm-policy:'))) {
    const text = await runner.read({tool: 'ip', args: ['xfrm', 'policy', 'list']})
    const ledger = owned(scopeOf(runner.netns), 'xfrm-policy')
    for (const p of parsePolicies(text)) {
      if (!['in', 'out', 'fwd'].includes(p.dir)) continue
      const t = p.tmpls[0]
      const [mv, mm] = (p.mark ?? '').split('/')
      const mark = p.mark ? {value: Number(mv), mask: Number(mm)} : undefined
      const o = policyObj({src: p.src, dst: p.dst, family: p.src.includes(':') ? 6 : 4, dir: p.dir as 'in', tmplSrc: t?.src, tmplDst: t?.dst, proto: 'esp', mode: (t?.mode as 'tunnel') ?? 'tunnel', reqid: t?.reqid, priority: p.priority, mark, action: p.action}, p.mark)
      o.owned = Boolean(ledger[o.key])
      out.push(o)
    }
  }
  const sysKeys = [...new Set([...desired.filter((d) => d.kind === 'sysctl').map((d) => d.key), ...Object.keys(owned(scopeOf(runner.netns), 'applied')).filter((k) => k.startsWith('sysctl:')).map((k) => k.slice(7))])]
  if (sysKeys.length) {
    const values = await getSysctls(runner, sysKeys.map((p) => ({path: p, name: p.replaceAll('/', '.')})))
    sysKeys.forEach((p, i) => out.push(sysctlObj(p, values[i])))
  }
  return out
}

const ORDER: Record<Kind, number> = Object.fromEntries(KINDS.map((k, i) => [k, i])) as Record<Kind, number>

export function appliedKey(o: {kind: Kind; key: string}): string {
  return `${o.kind}:${o.key}`
}

export function computePlan(runner: Runner, desired: Obj[], live: Obj[]): Plan {
  const byKey = new Map(live.map((o) => [appliedKey(o), o]))
  const applied = owned(scopeOf(runner.netns), 'applied')
  const changes: Change[] = []
  let unchanged = 0
  const wanted = new Set<string>()
  for (const d of desired) {
    const k = appliedKey(d)
    wanted.add(k)
    const l = byKey.get(k)
    if (!l) {
      changes.push({action: 'add', kind: d.kind, desc: d.desc, desired: d})
      continue
    }
    const diff = differences(d, l)
    if (diff.length === 0) {
      unchanged++
      continue
    }
    const mine = d.kind === 'sysctl' || Boolean(applied[k]) || (d.kind === 'table' && l.owned)
    if (!mine) {
      throw new NetkitError('E_CONFLICT', `${l.desc} is there and differs from the file (${diff.join('; ')}), and netkit's apply did not make it`, {fix: 'netkit never changes objects it did not make: remove or rename it, or change the file to match'})
    }
    changes.push({action: 'change', kind: d.kind, desc: d.desc, live: l, desired: d, why: diff.join('; ')})
  }
  for (const [k] of Object.entries(applied)) {
    if (wanted.has(k)) continue
    const l = byKey.get(k)
    if (l) changes.push({action: 'remove', kind: l.kind, desc: l.desc, live: l})
  }
  changes.sort((a, b) => {
    const ra = a.action === 'remove' ? 0 : 1
    const rb = b.action === 'remove' ? 0 : 1
    if (ra !== rb) return ra - rb
    const byKind = ra === 0 ? ORDER[b.kind] - ORDER[a.kind] : ORDER[a.kind] - ORDER[b.kind]
    if (byKind !== 0 || a.kind !== 'link') return byKind
    // Bridges before the links that join them (and after them when removing); lower devices first.
    const rank = (c: Change) => {
      const t = (c.desired ?? c.live)!.attrs.type
      return t === 'bridge' ? 0 : t === 'veth' ? 1 : 2
    }
    return ra === 0 ? rank(b) - rank(a) : rank(a) - rank(b)
  })
  return {changes, unchanged}
}

