/**
 * `netkit export`: netkit's own state as a host file that `netkit apply`
 * takes back (on the same host, a no-op). Objects apply or the primitives
 * made, tunnels (keys by the path of their files, never inline), SAs apply
 * made (with their key files), and the namespaces netkit made from here,
 * each with its own contents. What a tunnel makes (its device, addresses,
 * routes, rules) comes back with the tunnel and is not written on its own.
 */
import {configDir} from '../files.js'
import {type IpLink, ipJsonProbe} from '../iproute2/json.js'
import {netnsExists} from '../iproute2/netns.js'
import {listTables} from '../iproute2/tables.js'
import {ledgerScopes, owned, ROOT_SCOPE, scopeOf} from '../ownership.js'
import type {Runner} from '../runner.js'
import {TUNNEL_RULE_PRIORITY} from '../tunnel/routes.js'
import {listDefs, pskPath, scopeDir} from '../tunnel/store.js'
import type {TunnelDef} from '../tunnel/types.js'
import {isInterface, peersOf} from '../tunnel/wireguard/peers.js'
import {clean, LinkObj, type Obj, type RuleObj, type SysctlObj, TUNNEL_DEV} from '../kinds/index.js'
import {liveObjects} from './live.js'
import {appliedKey} from './ledger.js'

/** A tunnel's definition as a host file's tunnel entry (the options of `tunnel add`; a PSK as the path of the file that holds it). */
export function tunnelEntry(def: TunnelDef, dir: string): Record<string, unknown> {
  const e: Record<string, unknown> = clean({type: def.type, local: def.local, remote: def.remote})
  if (def.localSubnets.length) e.localSubnets = def.localSubnets
  // A WireGuard interface's routes are its peers' allowed-ips.
  if (def.remoteSubnets.length && !isInterface(def)) e.remoteSubnets = def.remoteSubnets
  Object.assign(e, clean({table: def.table, proxyArp: def.proxyArp, mtu: def.mtu, datapath: def.datapath === 'auto' ? undefined : def.datapath}))
  if (def.ipsec) {
    const i = def.ipsec
    Object.assign(e, i.auth === 'psk' ? {pskFile: pskPath(dir, def.name)} : {cert: i.cert, key: i.key, ca: i.ca})
    Object.assign(e, {
      localId: i.localId,
      remoteId: i.remoteId,
      proposals: i.proposals,
      espProposals: i.espProposals,
      dpd: i.dpdDelay,
      rekeyTime: i.rekeyTime,
      startAction: i.startAction,
    })
  }
  if (def.wireguard) {
    const w = def.wireguard
    Object.assign(
      e,
      clean({listenPort: w.listenPort, peerPublicKey: w.peerPublicKey, endpoint: w.endpoint, address: w.address, keepalive: w.keepalive, fwmark: w.fwmark}),
    )
    if (w.peers) e.peers = Object.fromEntries(peersOf(def).map(({name, ...p}) => [name, clean({...p})]))
  }
  if (def.vxlan) {
    const x = def.vxlan
    Object.assign(e, clean({vni: x.vni, port: x.port, dev: x.dev, address: x.address, peerAddress: x.peerAddress}))
  }
  return e
}

/** The rules a tunnel makes for its table (they come back with the tunnel, so they are not exported on their own). */
const tunnelRule = (o: Obj, defs: TunnelDef[]) =>
  o.kind === 'rule' &&
  defs.some(
    (d) =>
      d.table !== undefined &&
      o.attrs.table === d.table &&
      d.remoteSubnets.includes(String((o as RuleObj).spec.to)) &&
      (o as RuleObj).spec.priority === TUNNEL_RULE_PRIORITY,
  )

/**
 * One namespace's own objects as a host file's scope: what apply or the
 * primitives made (links with the netkit alias, addresses and xfrm policies in
 * the ledger, routes, rules and proxy entries of protocol netkit, the sysctls
 * apply set) and its tunnels; what the tunnels make is theirs.
 */
async function exportScope(runner: Runner, ledger: string, netns: string | undefined, inner: boolean): Promise<Record<string, unknown>> {
  const applied = owned(ledger, 'applied')
  const dir = scopeDir(configDir(), netns)
  const defs = listDefs(dir)
  const live = await liveObjects({runner, ledger, desired: [], fresh: false, applied, ...(inner ? {netns} : {})}, {all: true})
  const pairs = onePerPair(ownObjects(live, applied, defs), applied, inner)
  await namePeersElsewhere(runner, pairs)
  const out: Record<string, unknown> = {}
  // An SA goes in only when its key files are known (an SA apply made); the keys never do.
  for (const [key, kind] of [
    ['links', 'link'],
    ['addresses', 'addr'],
    ['routes', 'route'],
    ['rules', 'rule'],
    ['proxyArp', 'proxy'],
    ['xfrmPolicies', 'xfrm-policy'],
    ['xfrmStates', 'xfrm-state'],
  ] as const) {
    const list = pairs.filter((o) => o.kind === kind).flatMap((o) => o.entry ?? [])
    if (list.length) out[key] = list
  }
  const sysctls = appliedSysctls(applied, live)
  if (sysctls) out.sysctls = sysctls
  if (defs.length) out.tunnels = Object.fromEntries(defs.map((d) => [d.name, tunnelEntry(d, dir)]))
  return out
}

/** The live objects netkit made here (owned, or recorded by apply), but for what a tunnel makes and what a file says elsewhere (namespaces, tunnels, peers, table names). */
function ownObjects(live: Obj[], applied: Record<string, unknown>, defs: TunnelDef[]): Obj[] {
  // A tunnel's device, and the addresses and routes on it (objectsOf marks those as made by something else).
  const ofTunnel = (o: Obj) => (o.kind === 'link' && TUNNEL_DEV.test(o.key)) || ((o.kind === 'route' || o.kind === 'addr') && o.auto) || tunnelRule(o, defs)
  return live.filter(
    (o) => (o.owned || applied[appliedKey(o)]) && o.kind !== 'netns' && o.kind !== 'tunnel' && o.kind !== 'wg-peer' && o.kind !== 'table' && !ofTunnel(o),
  )
}

/**
 * A veth pair is one entry (one end makes both). The end apply made it from (its record is in
 * this scope's ledger, by that end's name) is the one written, so that applying the export finds
 * the pair exactly as apply recorded it; of a pair made otherwise ("netkit link add"), the end in
 * a bridge, which carries more.
 */
function onePerPair(mine: Obj[], applied: Record<string, unknown>, inner: boolean): Obj[] {
  const seen = new Set<string>()
  const made = (o: Obj) => Boolean(applied[appliedKey(o)])
  mine.sort(
    (a, b) =>
      Number(b.kind === 'link' && made(b)) - Number(a.kind === 'link' && made(a)) ||
      Number(Boolean(b.kind === 'link' && b.attrs.master)) - Number(Boolean(a.kind === 'link' && a.attrs.master)),
  )
  return mine.filter((o) => {
    if (o.kind !== 'link' || o.attrs.type !== 'veth') return true
    if (o.attrs.peerNetns) {
      // The far end of a pair made from another namespace is that namespace's (inside a file's namespace, the end is the outer scope's).
      if (made(o)) return !String(o.attrs.peerNetns).startsWith('netnsid ')
      return !inner && !String(o.attrs.peerNetns).startsWith('netnsid ')
    }
    if (seen.has(o.key)) return false
    seen.add(String(o.attrs.peer))
    return true
  })
}

/** A veth whose other end is in another namespace: that end's name is read there. */
async function namePeersElsewhere(runner: Runner, pairs: Obj[]): Promise<void> {
  for (const [i, o] of pairs.entries()) {
    if (!(o instanceof LinkObj) || !o.spec.peerNetns || o.spec.peer || o.spec.peerIndex === undefined) continue
    const there = await ipJsonProbe<IpLink>(runner.in(o.spec.peerNetns), ['link', 'show'])
    const peer = there.find((l) => l.ifindex === o.spec.peerIndex)?.ifname
    if (peer) pairs[i] = new LinkObj({...o.spec, peer}, o.owned)
  }
}

/** The sysctls apply set here, with their live values (undefined when there are none). */
function appliedSysctls(applied: Record<string, unknown>, live: Obj[]): Record<string, unknown> | undefined {
  const sysctls = Object.keys(applied)
    .filter((k) => k.startsWith('sysctl:'))
    .map((k) => k.slice(7))
  if (!sysctls.length) return undefined
  const values = live.filter((o) => o.kind === 'sysctl') as SysctlObj[]
  return Object.fromEntries(sysctls.map((p) => [p.replaceAll('/', '.'), values.find((o) => o.key === p)?.value]))
}

/**
 * netkit's own state as a host file: the namespace it runs in, the table
 * names netkit added, and the namespaces that are netkit's from here (those
 * an apply here made; from the root namespace also those "netkit ns add"
 * made, unless an apply elsewhere made them), each with its own objects and
 * tunnels. Applying it on a host like this one is a no-op.
 */
export async function exportHost(runner: Runner): Promise<Record<string, unknown>> {
  const top = scopeOf(runner.netns)
  const applied = owned(top, 'applied')
  const out: Record<string, unknown> = {version: 1}
  const tables = Object.fromEntries(
    listTables()
      .filter((t) => t.owned)
      .map((t) => [t.name, t.id]),
  )
  if (Object.keys(tables).length) out.tables = tables
  Object.assign(out, await exportScope(runner, top, runner.netns ?? undefined, false))
  const fromApply = Object.keys(applied)
    .filter((k) => k.startsWith('netns:'))
    .map((k) => k.slice(6))
  const elsewhere = new Set(
    ledgerScopes()
      .filter((s) => s !== top)
      .flatMap((s) =>
        Object.keys(owned(s, 'applied'))
          .filter((k) => k.startsWith('netns:'))
          .map((k) => k.slice(6)),
      ),
  )
  const fromNsAdd = runner.netns ? [] : Object.keys(owned(ROOT_SCOPE, 'netns')).filter((n) => !elsewhere.has(n))
  const names = [...new Set([...fromApply, ...fromNsAdd])].filter((n) => netnsExists(n)).sort()
  if (names.length) {
    const namespaces: Record<string, unknown> = {}
    for (const n of names) namespaces[n] = await exportScope(runner.in(n), scopeOf(n), n, true)
    out.namespaces = namespaces
  }
  // Routes and rules name the tables the file names (as a person would write them).
  const byId = new Map(Object.entries(tables).map(([name, id]) => [id, name]))
  for (const scope of [out, ...Object.values((out.namespaces ?? {}) as Record<string, Record<string, unknown>>)]) {
    for (const e of [...((scope.routes ?? []) as {table?: number | string}[]), ...((scope.rules ?? []) as {table?: number | string}[])]) {
      if (typeof e.table === 'number' && byId.has(e.table)) e.table = byId.get(e.table)
    }
  }
  return out
}
