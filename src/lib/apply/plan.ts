/**
 * Desired (the host file) against live (ip -j, ip xfrm, sysctl, netkit's
 * files): what to add, change and remove, per namespace, in an order that
 * works (namespaces, tables and links before what uses them; removals the
 * other way round). Only objects a previous `apply` made (recorded in the
 * ledger as "applied") are ever removed; a foreign object in the way is an
 * error, never touched.
 */
import {createHash} from 'node:crypto'
import {existsSync, readdirSync} from 'node:fs'

import {NetkitError, UsageError} from '../errors.js'
import {configDir, readSecretFile} from '../files.js'
import {promotesSecondaries} from '../iproute2/addr.js'
import {type IpLink, ipJsonProbe} from '../iproute2/json.js'
import {netnsExists, NETNS_DIR} from '../iproute2/netns.js'
import type {IpRoute} from '../iproute2/route.js'
import type {IpRule} from '../iproute2/rule.js'
import {listTables, resolveTable, type TableRow, tableNumber} from '../iproute2/tables.js'
import {requireEsp, stateKeyArgs} from '../iproute2/xfrm.js'
import {keyDigest, parsePolicies, parseStates, stateKeys} from '../iproute2/xfrm-parse.js'
import {isNetkitProto, ledgerScopes, ledgerText, type OwnedEntry, owned, ROOT_SCOPE, scopeOf} from '../ownership.js'
import {type Runner, Secret} from '../runner.js'
import {checkValue, getSysctls, resolveKey} from '../sysctl.js'
import {defineTunnel} from '../tunnel/define.js'
import {interfaceOnly, isInterface, peerFingerprint, peersOf} from '../tunnel/wireguard/peers.js'
import type {PeerState} from '../tunnel/wireguard/driver.js'
import {refuseUnfit, tunnelStatus} from '../tunnel/service.js'
import {canonical, listDefs, pskPath, scopeDir} from '../tunnel/store.js'
import type {TunnelDef, TunnelStatus, WgPeer} from '../tunnel/types.js'
import {phase} from '../timing.js'
import * as v from '../validate.js'
import {
  AddrObj,
  differences,
  KIND_ORDER,
  KINDS,
  type Kind,
  LinkObj,
  liveLink,
  NetnsObj,
  type Obj,
  PeerObj,
  PolicyObj,
  ProxyObj,
  RouteObj,
  RuleObj,
  settingsOnly,
  StateObj,
  SysctlObj,
  TableObj,
  TUNNEL_DEV,
  TunnelObj,
  xfrmMark,
} from './model.js'
import type {HostFile, ScopeFile, TunnelEntry} from './schema.js'
import {inNamespace} from '../wording.js'

export interface Change {
  action: 'add' | 'change' | 'remove'
  kind: Kind
  desc: string
  /** The namespace the object is in (undefined: the one apply runs in). */
  netns?: string
  /** What is there now (change, remove), and what should be (add, change). */
  live?: Obj
  desired?: Obj
  why?: string
  /** A sysctl's value found just before apply set it, where the plan could not read it (a namespace it makes): what removing it puts back. */
  before?: string
  /** Half of a pair that takes an object away and makes it again (the kernel deletes it along with something the plan changes): its ownership stays as it is. */
  again?: boolean
}

/** One namespace's part of the plan: the one apply runs in, or one the file names. */
export interface Scope {
  /** The namespace, or undefined for the one apply runs in. */
  netns?: string
  runner: Runner
  /** The ledger scope its objects are recorded in. */
  ledger: string
  desired: Obj[]
  /** The namespace does not exist yet (nothing to read) or is going away. */
  fresh: boolean
  applied: Record<string, OwnedEntry>
  /**
   * Whose records in this scope are this apply's: null, those of an apply run
   * here (no "by"); a scope name, those an apply run there made here (a
   * namespace of its file); undefined, all of them (a namespace it made and removes).
   */
  owner?: string | null
}

/** Apply's records of a scope that belong to `owner` (see Scope.owner). */
export function appliedIn(ledger: string, owner: string | null | undefined): Record<string, OwnedEntry> {
  const all = owned(ledger, 'applied')
  if (owner === undefined) return all
  return Object.fromEntries(Object.entries(all).filter(([, e]) => (e.meta?.by ?? null) === owner))
}

export interface Plan {
  scopes: Scope[]
  changes: Change[]
  unchanged: number
  /** What the comparison read, and its digest (see memo.ts). */
  reads: {recipes: ReadRecipe[]; digest: string}
  /** Objects here that are neither netkit's nor in the file: left alone, and said so. */
  foreign: Foreign[]
  /** The plan came from the memo: the host is exactly as a verified apply of this file left it. */
  memo?: boolean
  /** Each scope's live objects when the plan was made (to tell, after an undo, what did not come back). */
  before?: Obj[][]
  /** A WireGuard interface's status as the plan read it (key: `statusKey`), for a peer change of a tunnel the plan does not touch otherwise. */
  statuses?: Map<string, TunnelStatus>
}

export const statusKey = (netns: string | undefined, tunnel: string): string => `${netns ?? ''}\0${tunnel}`

export function appliedKey(o: {kind: Kind; key: string}): string {
  return `${o.kind}:${o.key}`
}

const linkObj = (l: ScopeFile['links'][number]) =>
  new LinkObj({
    name: l.name,
    kind: l.type,
    peer: l.peer,
    peerNetns: l.peerNetns,
    vni: l.vni,
    remote: l.remote?.ip,
    group: l.group?.ip,
    dev: l.dev,
    port: l.port,
    parent: l.parent,
    mode: l.mode,
    mtu: l.mtu,
    master: l.master,
    up: l.up,
  })

function routeObj(r: ScopeFile['routes'][number], tableOf: (t?: string) => number): RouteObj {
  const d = r.to
  const family: v.Family = d === 'default' ? (r.via?.family ?? 4) : d.family
  return new RouteObj({dst: v.dstText(d), family, via: r.via?.ip, dev: r.dev, table: tableOf(r.table), metric: r.metric, src: r.src?.ip})
}

/** The objects one namespace's part of the file describes (addresses were parsed by the schema). */
export async function scopeObjects(s: ScopeFile, tables: Record<string, number>, runner: Runner, netns: string | undefined, at: string): Promise<Obj[]> {
  const out: Obj[] = []
  const tableOf = (t?: string) => (t === undefined ? 254 : (tables[t] ?? resolveTable(t)))
  for (const l of s.links) out.push(linkObj(l))
  for (const a of s.addresses) out.push(new AddrObj(a.dev, a.address.cidr))
  for (const [k, value] of Object.entries(s.sysctls)) {
    const key = resolveKey(k)
    out.push(new SysctlObj(key.path, checkValue(key, value)))
  }
  for (const r of s.routes) out.push(routeObj(r, tableOf))
  // A /0 is "all", as the kernel reports it.
  const net = (c?: v.Cidr) => (c && c.prefix > 0 ? c.cidr : undefined)
  for (const r of s.rules)
    out.push(
      new RuleObj({
        family: r.family ?? r.from?.family ?? r.to?.family ?? 4,
        from: net(r.from),
        to: net(r.to),
        fwmark: r.fwmark,
        iif: r.iif,
        oif: r.oif,
        table: tableOf(r.table),
        priority: r.priority,
      }),
    )
  for (const p of s.proxyArp) out.push(new ProxyObj(p.address.ip, p.dev))
  for (const p of s.xfrmPolicies) {
    out.push(
      new PolicyObj(
        {
          src: p.src.cidr,
          dst: p.dst.cidr,
          family: p.src.family,
          dir: p.dir,
          tmplSrc: p.tmplSrc?.ip,
          tmplDst: p.tmplDst?.ip,
          proto: 'esp',
          mode: p.mode,
          reqid: p.reqid,
          priority: p.priority,
          mark: p.mark,
          action: p.action,
        },
        xfrmMark(p.mark),
      ),
    )
  }
  s.xfrmStates.forEach((x, i) => out.push(stateObj(x, runner, `${at}xfrmStates.${i}`)))
  for (const [name, t] of Object.entries(s.tunnels))
    for (const o of await tunnelObjs(name, {...fromFile(s, t), ...t}, runner, netns, `${at}tunnels.${name}`)) out.push(o)
  return out
}

/**
 * A tunnel's `local` (and a VXLAN tunnel's `dev`) from the file's own
 * addresses, when it does not give them: the address on the peer's subnet,
 * or the one on the subnet of the gateway of a route to the peer. A namespace
 * the file creates has no routes yet to ask the kernel; for the rest, the file
 * says what the host will be. Nothing found: the kernel's route decides.
 */
function fromFile(s: ScopeFile, t: TunnelEntry): {local?: TunnelEntry['local']; dev?: string} {
  if (!t.remote || (t.local && (t.type !== 'vxlan' || t.dev))) return {}
  const remote = t.remote.ip
  const family = t.remote.family
  const onLink = (ip: string) => s.addresses.find((a) => a.address.family === family && v.contains(v.networkOf(a.address.cidr), ip))
  let a = onLink(remote)
  if (!a) {
    const covers = (to: (typeof s.routes)[number]['to']) => (to === 'default' ? true : to.family === family && v.contains(to.cidr, remote))
    const gw = s.routes
      .filter((r) => r.via && r.table === undefined && covers(r.to))
      .sort((x, y) => (y.to === 'default' ? 0 : y.to.prefix) - (x.to === 'default' ? 0 : x.to.prefix))[0]
    if (gw?.via) a = onLink(gw.via.ip)
  }
  if (!a) return {}
  return {local: {ip: a.address.ip, family: a.address.family} as TunnelEntry['local'], ...(t.type === 'vxlan' ? {dev: a.dev} : {})}
}

const STATE_WORDS: Record<string, string> = {
  aead: 'aead.alg',
  'aead-key-file': 'aead.keyFile',
  icv: 'aead.icv',
  enc: 'enc.alg',
  'enc-key-file': 'enc.keyFile',
  auth: 'auth.alg',
  'auth-key-file': 'auth.keyFile',
}

/** An SA entry through the same checks as `netkit xfrm state add` (keys read from their files now, registered as secrets). */
function stateObj(x: ScopeFile['xfrmStates'][number], runner: Runner, at: string): StateObj {
  const spec = {src: x.src.ip, dst: x.dst.ip, spi: x.spi, mode: x.mode, reqid: x.reqid, mark: x.mark}
  try {
    const algs = stateKeyArgs({...spec, aead: x.aead, enc: x.enc, auth: x.auth}, (n) => STATE_WORDS[n])
    const keys = algs.filter((a): a is Secret => a instanceof Secret).map((k) => k.value)
    for (const k of keys) runner.addSecret(k)
    const keyFiles = Object.fromEntries(Object.entries({aead: x.aead?.keyFile, enc: x.enc?.keyFile, auth: x.auth?.keyFile}).filter(([, f]) => f))
    return new StateObj(spec, algs, keyDigest(keys), keyFiles as Record<string, string>)
  } catch (error) {
    if (error instanceof UsageError) throw new UsageError(`host file: ${at}: ${error.what}`, error.fix ?? 'fix that entry', 'E_FILE')
    throw error
  }
}

/**
 * A tunnel entry through the same checks as `netkit tunnel add`; an error
 * names its place in the file. A WireGuard interface is the tunnel (compared
 * without its peers) and one object per peer.
 */
async function tunnelObjs(name: string, t: TunnelEntry, runner: Runner, netns: string | undefined, at: string): Promise<Obj[]> {
  try {
    const peers = t.peers ? Object.fromEntries(Object.entries(t.peers).map(([k, p]) => [k, {...p, allowedIps: p.allowedIps.map((n) => n.cidr)}])) : undefined
    const {def, psk} = await defineTunnel(
      {
        ...t,
        name,
        netns,
        local: t.local?.ip,
        remote: t.remote?.ip,
        localSubnet: t.localSubnets.map((n) => n.cidr),
        remoteSubnet: t.remoteSubnets.map((n) => n.cidr),
        address: t.address?.cidr,
        peerAddress: t.peerAddress?.ip,
        dev: t.dev,
        peers,
      },
      runner,
    )
    if (!isInterface(def)) return [new TunnelObj(def, fingerprint(def, psk?.value), psk)]
    return [new TunnelObj(def, fingerprint(interfaceOnly(def))), ...peersOf(def).map(({name: peer, ...p}) => new PeerObj(name, peer, p, peerFingerprint(p)))]
  } catch (error) {
    if (error instanceof UsageError)
      throw new UsageError(`host file: ${at}: ${fileWords(error.what)}`, error.fix ? fileWords(error.fix) : 'fix that entry', 'E_FILE')
    throw error
  }
}

const FILE_KEYS: Record<string, string> = {'local-subnet': 'localSubnets', 'remote-subnet': 'remoteSubnets', 'psk-file': 'pskFile'}

/** `tunnel add`'s words in a message about a host file's tunnel entry: --peer-public-key -> peerPublicKey. */
function fileWords(text: string): string {
  return text
    .replace(/--([a-z][a-z-]*)(?: [A-Z]{2,}\b)?/g, (_, f: string) => `"${FILE_KEYS[f] ?? f.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase())}"`)
    .replace(/\bpass "/g, 'give "')
}

/** A tunnel's definition as text, with a digest of its PSK (a new key is a change; the key itself is never shown). */
function fingerprint(def: TunnelDef, psk?: string): string {
  return `${canonical(def)}${psk ? ` psk:${createHash('sha256').update(psk).digest('hex').slice(0, 16)}` : ''}`
}

/** Every scope the file or the ledger names, with its desired objects. */
export async function desiredScopes(runner: Runner, f: HostFile): Promise<Scope[]> {
  const top = scopeOf(runner.netns)
  // Several applies can record in one namespace (one run there, others that list it in their files): each sees its own.
  const applied = appliedIn(top, null)
  await checkDevices(runner, f)
  const root: Scope = {runner, ledger: top, desired: [], fresh: false, applied, owner: null}
  for (const [name, id] of Object.entries(f.tables)) root.desired.push(new TableObj(name, id))
  for (const name of Object.keys(f.namespaces)) root.desired.push(new NetnsObj(name))
  // One at a time: a spread of a file's hundreds of thousands of routes overflows the stack.
  for (const o of await scopeObjects(f, f.tables, runner, runner.netns ?? undefined, '')) root.desired.push(o)
  const scopes = [root]
  const named = new Set(Object.keys(f.namespaces))
  for (const [name, s] of Object.entries(f.namespaces)) {
    const r = runner.in(name)
    scopes.push({
      netns: name,
      runner: r,
      ledger: scopeOf(name),
      desired: await scopeObjects(s, f.tables, r, name, `namespaces.${name}.`),
      fresh: !netnsExists(name),
      applied: appliedIn(scopeOf(name), top),
      owner: top,
    })
  }
  for (const sc of scopes) once(sc)
  // Namespaces an earlier apply made and the file no longer lists: their contents go with them.
  const gone = new Set<string>()
  for (const k of Object.keys(applied)) {
    const name = k.startsWith('netns:') ? k.slice(6) : undefined
    if (name && !named.has(name) && netnsExists(name)) {
      gone.add(name)
      scopes.push({netns: name, runner: runner.in(name), ledger: scopeOf(name), desired: [], fresh: false, applied: owned(scopeOf(name), 'applied')})
    }
  }
  // Namespaces that were not this apply's but that it filled, and the file no longer lists: what it made there goes (not what another apply made).
  for (const ledger of ledgerScopes()) {
    const name = ledger.startsWith('ns:') ? ledger.slice(3) : undefined
    if (!name || named.has(name) || gone.has(name) || name === runner.netns || !netnsExists(name)) continue
    const mine = appliedIn(ledger, top)
    if (Object.keys(mine).length) scopes.push({netns: name, runner: runner.in(name), ledger, desired: [], fresh: false, applied: mine, owner: top})
  }
  return scopes
}

/** Each object once per namespace: two entries for the same route (or link, rule, ...) would leave one of them unsaid. */
function once(scope: Scope): void {
  const seen = new Set<string>()
  for (const o of scope.desired) {
    if (seen.has(o.id))
      throw new UsageError(
        `the file lists ${o.desc}${inNamespace(scope.runner.netns)} twice`,
        'keep one entry for it (a route is one per table, destination and metric; a rule one per priority and selector)',
        'E_FILE',
      )
    seen.add(o.id)
  }
}

/**
 * Every device the file's objects sit on is in the file or on the host (a
 * tunnel's device is made by its tunnel): a name that is neither is bad input,
 * found before anything changes, and before a big file's objects are made.
 */
async function checkDevices(runner: Runner, f: HostFile): Promise<void> {
  const scopes: [string | undefined, ScopeFile][] = [[undefined, f]]
  for (const [name, s] of Object.entries(f.namespaces)) scopes.push([name, s])
  // A veth's far end, moved into another of the file's namespaces, is a device there.
  const movedIn = new Map<string, string[]>()
  for (const [, s] of scopes)
    for (const l of s.links) {
      if (l.type !== 'veth' || !l.peerNetns || !l.peer) continue
      if (!movedIn.has(l.peerNetns)) movedIn.set(l.peerNetns, [])
      movedIn.get(l.peerNetns)!.push(l.peer)
    }
  for (const [name, s] of scopes) {
    const r = name ? runner.in(name) : runner
    const have = new Set<string>(name ? movedIn.get(name) : [])
    have.add('lo')
    if (!name || netnsExists(name)) for (const l of await ipJsonProbe<{ifname: string}>(r, ['link', 'show'])) have.add(l.ifname)
    for (const l of s.links) {
      have.add(l.name)
      if (l.type === 'veth' && !l.peerNetns && l.peer) have.add(l.peer)
    }
    const where = r.netns ? `namespace ${r.netns}` : 'this host'
    const need = (dev: string | undefined, what: () => string) => {
      if (dev && !have.has(dev) && !TUNNEL_DEV.test(dev))
        throw new UsageError(
          `the file's ${what()} needs link ${dev}, which is neither in the file nor on ${where}`,
          `add ${dev} to the file's links, or correct the name`,
          'E_FILE',
        )
    }
    for (const l of s.links) {
      need(l.master, () => `the bridge port ${l.name}`)
      need(l.type === 'vxlan' ? l.dev : undefined, () => linkObj(l).desc)
      need(l.type === 'macvlan' ? l.parent : undefined, () => linkObj(l).desc)
    }
    for (const a of s.addresses) need(a.dev, () => new AddrObj(a.dev, a.address.cidr).desc)
    for (const rt of s.routes) need(rt.dev, () => routeObj(rt, (t) => (t === undefined ? 254 : (f.tables[t] ?? resolveTable(t)))).desc)
    for (const p of s.proxyArp) need(p.dev, () => new ProxyObj(p.address.ip, p.dev).desc)
  }
}

/**
 * Deleting an IPv4 primary address makes the kernel delete the secondary
 * addresses of its subnet too: when one of those is not netkit's and not
 * going anyway, removing (or re-making) that address is refused before
 * anything changes.
 */
async function keepSecondaries(scope: Scope, live: Obj[], changes: Change[]): Promise<void> {
  const going = new Set(changes.filter((c) => c.action !== 'add').map((c) => c.live!.id))
  const subnet = (a: AddrObj) => `${a.dev} ${v.networkOf(a.cidr)}`
  for (const c of changes) {
    const a = c.live
    if (!(a instanceof AddrObj) || c.action === 'add' || a.secondary || a.cidr.includes(':')) continue
    const lost = live.filter(
      (o): o is AddrObj => o instanceof AddrObj && o.secondary && !o.owned && !going.has(o.id) && !o.cidr.includes(':') && subnet(o) === subnet(a),
    )
    if (lost.length === 0) continue
    if (!(await promotesSecondaries(scope.runner, a.dev))) {
      throw new NetkitError(
        'E_CONFLICT',
        `removing ${a.desc}${inNamespace(scope.runner.netns)} would delete ${lost.map((o) => o.cidr).join(', ')} too (the kernel removes a subnet's secondary addresses with its primary), and netkit did not add ${lost.length === 1 ? 'that one' : 'those'}`,
        {fix: `keep ${a.cidr} in the file, or remove the others first (or set net/ipv4/conf/${a.dev}/promote_secondaries to 1)`},
      )
    }
  }
}

/**
 * What the file asks that the host cannot take, found before anything
 * changes: a table number another name already has here, a sysctl that does
 * not exist (and is not one of a link the plan makes).
 */
function refuseUnknowable(scopes: Scope[], reads: LiveRead[], changes: Change[]): void {
  const removing = new Set(changes.filter((c) => c.kind === 'table' && c.action === 'remove').map((c) => c.live!.key))
  for (const c of changes) {
    if (c.kind === 'table' && c.action === 'add') {
      const t = c.desired as TableObj
      const other = reads[0].tables.find((x) => x.id === t.number && x.name !== t.name && !removing.has(x.name))
      if (other)
        throw new UsageError(
          `tables.${t.name}: table ${t.number} is already named ${other.name} on this host (${other.source})`,
          `use the name ${other.name}, or another number`,
          'E_FILE',
        )
    }
    if (c.kind === 'sysctl' && c.action === 'add') {
      const scope = scopes.find((s) => s.netns === c.netns)!
      const path = (c.desired as SysctlObj).path
      const dev = /^net\/ipv[46]\/(?:conf|neigh)\/([^/]+)\//.exec(path)?.[1]
      const here = scope.netns ?? scope.runner.netns ?? undefined
      const made =
        dev !== undefined &&
        scopes.some((sc) =>
          sc.desired.some(
            (o) =>
              o instanceof LinkObj &&
              (sc === scope ? o.spec.name === dev || (o.spec.peer === dev && !o.spec.peerNetns) : o.spec.peer === dev && o.spec.peerNetns === here),
          ),
        )
      if (!made && !scope.fresh)
        throw new UsageError(
          `sysctls: ${path.replaceAll('/', '.')} does not exist${inNamespace(scope.runner.netns)}`,
          dev ? `check the name, and that link ${dev} is there or in the file` : 'check the name (netkit sysctl get NAME)',
          'E_FILE',
        )
    }
  }
}

/**
 * What this host cannot hold, refused by the plan itself, so that `diff`
 * and `--dry-run` say what the real apply would, and apply changes nothing:
 * SAs need the kernel's ESP (modules are machine-wide, so one look answers
 * for every namespace); a tunnel the plan sets up needs what it cannot be
 * given (its data path; the host's own charon's plugins, which netkit never
 * changes), as `tunnel add` refuses it.
 */
async function refuseUnsupported(scopes: Scope[], changes: Change[]): Promise<void> {
  if (changes.some((c) => c.kind === 'xfrm-state' && c.action !== 'remove')) await requireEsp(scopes[0].runner)
  for (const c of changes) {
    if (c.kind !== 'tunnel' || c.action === 'remove') continue
    const def = (c.desired as TunnelObj).def
    const scope = scopes.find((s) => s.netns === c.netns)!
    try {
      await refuseUnfit(def, {runner: scope.runner, configDir: configDir(), inFile: true})
    } catch (error) {
      if (!(error instanceof UsageError)) throw error
      const at = `${c.netns ? `namespaces.${c.netns}.` : ''}tunnels.${def.name}`
      throw new UsageError(`host file: ${at}: ${fileWords(error.what)}`, error.fix ? fileWords(error.fix) : 'fix that entry', error.code)
    }
  }
}

/**
 * What the kernel deletes along with what the plan deletes: the addresses,
 * routes and proxy entries on a link that goes (removed, or deleted and made
 * again; a veth's far end goes with it, in its namespace), the routes through
 * the subnet of the last address there, and all of a namespace that goes.
 * What the file keeps is taken away before and made again after (a pair of
 * changes, undone in the reverse order); anything else (another tool's, or
 * netkit's but no longer the file's) would be lost for good, so such a plan is
 * refused before anything changes. Returns how many unchanged objects the plan
 * now makes again.
 */
function collateral(scopes: Scope[], lives: Obj[][], reads: LiveRead[], changes: Change[]): number {
  const at = (netns?: string) => scopes.findIndex((s) => (s.runner.netns ?? undefined) === netns)
  const removed = scopes.map((s) => new Set(changes.filter((c) => c.action === 'remove' && c.netns === s.netns).map((c) => c.live!.id)))
  // `again`: what it sits on is there again afterwards (a link made again, a new address in the subnet), so it can be made again too.
  const hit: {scope: number; object: Obj; because: string; again: boolean}[] = []
  const take = (i: number, because: string, again: boolean, pick: (o: Obj) => boolean) => {
    for (const o of lives[i] ?? [])
      if (!o.auto && !removed[i].has(o.id) && (o.kind === 'addr' || o.kind === 'route' || o.kind === 'proxy') && pick(o))
        hit.push({scope: i, object: o, because, again})
  }
  const onDev = (dev: string) => (o: Obj) => (o instanceof AddrObj || o instanceof ProxyObj ? o.dev === dev : o instanceof RouteObj && o.spec.dev === dev)
  const where = (i: number) => inNamespace(scopes[i].runner.netns)
  for (const c of changes) {
    const i = scopes.findIndex((s) => s.netns === c.netns)
    const l = c.live
    if (l instanceof LinkObj && (c.action === 'remove' || (c.action === 'change' && !settingsOnly(c.desired!, l)))) {
      const because = `${c.action === 'remove' ? 'removing' : 'making again'} ${l.desc}${where(i)}`
      const again = c.action === 'change'
      take(i, because, again, onDev(l.spec.name))
      if (l.spec.kind === 'veth' && l.spec.peer && !l.spec.peerNetns) take(i, because, again, onDev(l.spec.peer))
      const j = l.spec.peerNetns ? at(l.spec.peerNetns) : -1
      if (j >= 0 && l.spec.peerIndex !== undefined && reads[j]?.ip.length) {
        const far = (JSON.parse(reads[j].ip[0]) as {ifindex: number; ifname: string}[]).find((x) => x.ifindex === l.spec.peerIndex)?.ifname
        if (far) take(j, because, again, onDev(far))
      }
    } else if (l instanceof AddrObj && c.action !== 'add' && !l.cidr.includes(':')) {
      const net = v.networkOf(l.cidr)
      const inNet = (ip?: string) => Boolean(ip && v.contains(net, ip))
      const others = lives[i].some(
        (o) =>
          o instanceof AddrObj &&
          o.dev === l.dev &&
          o.id !== l.id &&
          !removed[i].has(o.id) &&
          !changes.some((x) => x.live === o) &&
          inNet(o.cidr.split('/')[0]),
      )
      // Renumbering: a new address in the same subnet brings the gateways back within reach.
      const renumbered = changes.some(
        (x) => x.action !== 'remove' && x.netns === c.netns && x.desired instanceof AddrObj && x.desired.dev === l.dev && inNet(x.desired.cidr.split('/')[0]),
      )
      if (!others) take(i, `removing ${l.desc}${where(i)}`, renumbered, (o) => o instanceof RouteObj && o.spec.dev === l.dev && inNet(o.spec.via))
    } else if (c.kind === 'netns' && c.action === 'remove') {
      const j = at(l!.key)
      if (j >= 0) take(j, `removing namespace ${l!.key}`, false, () => true)
    }
  }
  if (hit.length === 0) return 0
  const wanted = (h: (typeof hit)[number]) => scopes[h.scope].desired.find((d) => d.id === h.object.id)
  // What the file does not keep (another tool's, or netkit's but not the file's), or keeps on something that will not be there: refused.
  // Once each: a route can go both with its link and with the address its gateway is reached through.
  const named = new Set<string>()
  const lost = hit.filter((h) => {
    const id = `${h.scope}|${h.object.id}`
    if ((wanted(h) && h.again) || named.has(id)) return false
    named.add(id)
    return true
  })
  if (lost.length) {
    const list = lost
      .slice(0, 3)
      .map(
        (h) =>
          `${h.object.desc}${where(h.scope)} (${wanted(h) ? 'the file keeps it' : h.object.owned || scopes[h.scope].applied[h.object.id] ? "netkit's" : "not netkit's"})`,
      )
      .join(', ')
    throw new NetkitError(
      'E_CONFLICT',
      `${lost[0].because} would also delete ${list}${lost.length > 3 ? ` and ${lost.length - 3} more` : ''}: the kernel deletes them with it, and netkit would not put them back`,
      {
        fix: 'remove those first, or keep what they depend on as it is; nothing was changed',
      },
    )
  }
  // What the file keeps: taken away before and made again after (and, undoing, in the reverse order).
  const done = new Set<string>()
  let remade = 0
  for (const h of hit) {
    const d = wanted(h)!
    const netns = scopes[h.scope].netns
    const id = `${netns ?? ''}|${d.id}`
    if (done.has(id)) continue
    done.add(id)
    const was = changes.findIndex((c) => c.netns === netns && c.live === h.object)
    if (was >= 0) changes.splice(was, 1)
    else remade++
    changes.push({action: 'remove', kind: d.kind, desc: d.desc, netns, live: h.object, why: `${h.because} deletes it`, again: true})
    changes.push({action: 'add', kind: d.kind, desc: d.desc, netns, desired: d, why: `made again after ${h.because}`, again: true})
  }
  const ordered = order(changes)
  changes.length = 0
  for (const c of ordered) changes.push(c)
  return remade
}

/**
 * A live veth whose far end is in another namespace knows that end only by
 * its ifindex there; one the plan deletes gets its name, read there, so that
 * undoing can make the pair again.
 */
async function namePeers(scopes: Scope[], reads: LiveRead[], changes: Change[]): Promise<void> {
  for (const c of changes) {
    const l = c.live
    if (!(l instanceof LinkObj) || c.action === 'add' || !l.spec.peerNetns || l.spec.peer || l.spec.peerIndex === undefined) continue
    const j = scopes.findIndex((s) => (s.runner.netns ?? undefined) === l.spec.peerNetns)
    const there =
      j >= 0 && reads[j]?.ip.length
        ? (JSON.parse(reads[j].ip[0]) as IpLink[])
        : await ipJsonProbe<IpLink>(scopes[0].runner.in(l.spec.peerNetns), ['link', 'show']).catch(() => [])
    l.spec.peer = there.find((x) => x.ifindex === l.spec.peerIndex)?.ifname
  }
}

type Neigh = {dst: string; dev: string; protocol?: string}

/**
 * What one scope's live read covers (decided by the file and the ledger).
 * Kept with the digest of what it read, so that a later run can repeat
 * exactly the same read and know, from the digest alone, that nothing changed.
 */
export interface ReadRecipe {
  /** The namespace (undefined: the one apply runs in). */
  netns?: string
  fresh: boolean
  xfrm: boolean
  /** The SAD (`ip xfrm state`): only when the file or the ledger has SAs (it holds keys). */
  sad?: boolean
  sysctls: string[]
  tunnels: boolean
}

/** One scope's live state as read, before it is made into objects. */
export interface LiveRead {
  recipe: ReadRecipe
  /** `ip -j -d -batch` output: links, addresses, routes, rules, proxy entries, netns ids; then -6 rules and proxy entries. */
  ip: string[]
  xfrm: string
  sad: string
  tables: TableRow[]
  netns: string[]
  sysctls: (string | undefined)[]
  tunnels: {
    def: TunnelDef
    fingerprint: string
    running: boolean
    peers?: {name: string; peer: WgPeer; fingerprint: string; running: boolean}[]
    /** As the driver read it (apply hands it to the peer change, which need not read the device again). */
    status?: TunnelStatus
  }[]
}

// Routes: only unicast ones are compared; the kernel's local-table entries come and go by themselves (an IPv6
// address gets its local route only once duplicate address detection ends).
const IP_READS = ['link show', 'addr show', 'route show table all type unicast', 'rule show', 'neigh show proxy', 'netns list-id']
// `neigh show proxy` without a family shows both; `rule show` only IPv4.
const IP6_READS = ['rule show']

export function recipeOf(scope: Scope, opts: {all?: boolean} = {}): ReadRecipe {
  const {desired, applied} = scope
  const kinds = new Set<string>(desired.map((d) => d.kind))
  for (const k of Object.keys(applied)) kinds.add(k.slice(0, k.indexOf(':')))
  const sysctls = [
    ...new Set([
      ...desired.filter((d) => d.kind === 'sysctl').map((d) => d.key),
      ...Object.keys(applied)
        .filter((k) => k.startsWith('sysctl:'))
        .map((k) => k.slice(7)),
    ]),
  ]
  return {
    ...(scope.netns ? {netns: scope.netns} : {}),
    fresh: scope.fresh,
    xfrm: Boolean(opts.all) || kinds.has('xfrm-policy'),
    ...(opts.all || kinds.has('xfrm-state') ? {sad: true} : {}),
    sysctls,
    tunnels: Boolean(opts.all) || kinds.has('tunnel') || kinds.has('wg-peer'),
  }
}

/** Everything a scope's comparison depends on, read (processes in parallel), nothing parsed yet. */
export async function readLive(runner: Runner, recipe: ReadRecipe): Promise<LiveRead> {
  const out: LiveRead = {recipe, ip: [], xfrm: '', sad: '', tables: [], netns: [], sysctls: [], tunnels: []}
  if (!recipe.netns) {
    out.tables = listTables().filter((t) => t.source !== 'built in')
    if (existsSync(NETNS_DIR)) out.netns = readdirSync(NETNS_DIR).sort()
  }
  if (recipe.fresh) return out
  const [ip4, ip6, xfrm, sad, sysctls] = await Promise.all([
    ipJsonBatch(runner, ['-d'], IP_READS),
    ipJsonBatch(runner, ['-6', '-d'], IP6_READS),
    recipe.xfrm ? runner.read({tool: 'ip', args: ['xfrm', 'policy', 'list']}) : Promise.resolve(''),
    recipe.sad ? runner.read({tool: 'ip', args: ['xfrm', 'state', 'list']}) : Promise.resolve(''),
    recipe.sysctls.length ? readSysctls(runner, recipe.sysctls) : Promise.resolve([]),
  ])
  out.ip = [...ip4, ...ip6]
  out.xfrm = xfrm
  out.sad = sad
  out.sysctls = sysctls
  if (recipe.tunnels) {
    const dir = scopeDir(configDir(), recipe.netns ?? runner.netns ?? undefined)
    // Each tunnel's runtime as its driver reads it (swanctl, wg, ip): one that is down is brought up again.
    out.tunnels = await Promise.all(
      listDefs(dir).map(async (def) => {
        const file = pskPath(dir, def.name)
        const psk = existsSync(file) ? readSecretFile(file, 'PSK file') : undefined
        const status = await tunnelStatus(def, {runner, configDir: configDir()})
        const {state, details} = status
        if (!isInterface(def)) return {def, fingerprint: fingerprint(def, psk), running: state !== 'down'}
        // An interface: the tunnel without its peers, and each peer with whether the device has it.
        const present = new Set(((details.peers ?? []) as PeerState[]).filter((p) => p.present).map((p) => p.name))
        const peers = peersOf(def).map(({name, ...p}) => ({name, peer: p, fingerprint: peerFingerprint(p), running: present.has(name)}))
        return {def, fingerprint: fingerprint(interfaceOnly(def)), running: state !== 'down', peers, status}
      }),
    )
  }
  return out
}

/**
 * What in `ip -j -d` output changes by itself, none of which apply compares: what counts down (bridge timers,
 * address lifetimes, route expiry) and an IPv6 address's "tentative" (until duplicate address detection ends,
 * a second or so after a link comes up on a host that does DAD).
 */
const VOLATILE = /"(?:\w+_timer|valid_life_time|preferred_life_time|expires)":[\d.]+,?|"tentative":true,?/g

/**
 * A digest of what was read and of the ledger (whole: cheaper to digest as
 * text than to parse): equal digests, equal comparisons. No secret is in it
 * (PSKs are digested already).
 */
export function digestOf(reads: LiveRead[]): string {
  const h = createHash('sha256')
  h.update(ledgerText()).update('\0')
  for (const r of reads) {
    h.update(JSON.stringify(r.recipe))
    for (const t of r.ip) h.update(t.replace(VOLATILE, '')).update('\0')
    h.update(r.xfrm).update('\0')
    // The SAD's text holds keys: only its digest goes in (as part of this one).
    h.update(r.sad).update('\0')
    h.update(
      JSON.stringify([r.tables, r.netns, r.sysctls, r.tunnels.map((t) => [t.fingerprint, t.running, t.peers?.map((p) => [p.name, p.fingerprint, p.running])])]),
    )
  }
  return h.digest('hex')
}

/** The live objects of one namespace, from what was read. */
export function objectsOf(read: LiveRead, scope: {ledger: string; applied: Record<string, OwnedEntry>; runner?: Runner}): Obj[] {
  const out: Obj[] = []
  for (const t of read.tables) out.push(new TableObj(t.name, t.id, t.owned))
  const mine = read.netns.length ? owned(ROOT_SCOPE, 'netns') : {}
  for (const n of read.netns) out.push(new NetnsObj(n, Object.hasOwn(mine, n)))
  if (read.recipe.fresh) return out
  const [links, addrs, routes, rules4, neigh, ids, rules6] = read.ip.map((t) => JSON.parse(t) as unknown[])
  const nsById = new Map((ids as {nsid: number; name?: string}[]).map((i) => [i.nsid, i.name]))
  for (const l of links as IpLink[]) {
    const o = liveLink(l, (id) => nsById.get(id))
    if (o) out.push(o)
  }
  const ledgerAddrs = owned(scope.ledger, 'addr')
  for (const l of addrs as {ifname: string; addr_info?: {local: string; prefixlen: number; secondary?: boolean}[]}[]) {
    for (const a of l.addr_info ?? []) {
      const cidr = `${a.local}/${a.prefixlen}`
      const o = new AddrObj(l.ifname, cidr, Boolean(ledgerAddrs[`${l.ifname} ${cidr}`]))
      o.secondary = Boolean(a.secondary)
      o.auto = cidr.startsWith('127.') || cidr === '::1/128' || cidr.startsWith('fe80:') || TUNNEL_DEV.test(l.ifname)
      out.push(o)
    }
  }
  for (const r of routes as IpRoute[]) {
    if (r.type && r.type !== 'unicast') continue
    const table = tableNumber(r.table, 254)
    if (table === 255) continue
    const family = r.dst.includes(':') || r.gateway?.includes(':') ? 6 : 4
    const dst = r.dst === 'default' ? 'default' : r.dst.includes('/') ? r.dst : `${r.dst}/${family === 6 ? 128 : 32}`
    const o = new RouteObj({dst, family, via: r.gateway, dev: r.dev, table, metric: r.metric, src: r.prefsrc}, isNetkitProto(r.protocol))
    o.auto = r.protocol === 'kernel' || r.protocol === 'ra' || dst.startsWith('fe80:') || TUNNEL_DEV.test(r.dev ?? '')
    out.push(o)
  }
  for (const [family, rows] of [
    [4, rules4],
    [6, rules6],
  ] as const) {
    for (const r of rows as IpRule[]) {
      const net = (a?: string, len?: number) => (!a || a === 'all' ? undefined : `${a}/${len ?? (family === 6 ? 128 : 32)}`)
      const fwmark = r.fwmark ? v.mark(`${r.fwmark}${r.fwmask ? `/${r.fwmask}` : ''}`) : undefined
      const o = new RuleObj(
        {family, from: net(r.src, r.srclen), to: net(r.dst, r.dstlen), fwmark, iif: r.iif, oif: r.oif, table: tableNumber(r.table, 0), priority: r.priority},
        isNetkitProto(r.protocol),
      )
      // The kernel's own three: from all lookup local, main, default.
      o.auto = (r.priority === 0 || r.priority === 32766 || r.priority === 32767) && !o.spec.from && !o.spec.to && !fwmark && !r.iif && !r.oif
      out.push(o)
    }
  }
  for (const n of neigh as Neigh[]) out.push(new ProxyObj(n.dst, n.dev, isNetkitProto(n.protocol)))
  if (read.xfrm) {
    const ledger = owned(scope.ledger, 'xfrm-policy')
    for (const p of parsePolicies(read.xfrm)) {
      if (p.dir !== 'in' && p.dir !== 'out' && p.dir !== 'fwd') continue
      const t = p.tmpls[0]
      const [mv, mm] = (p.mark ?? '').split('/')
      const mark = p.mark ? {value: Number(mv), mask: Number(mm)} : undefined
      const o = new PolicyObj(
        {
          src: p.src,
          dst: p.dst,
          family: p.src.includes(':') ? 6 : 4,
          dir: p.dir,
          tmplSrc: t?.src,
          tmplDst: t?.dst,
          proto: 'esp',
          mode: (t?.mode as 'tunnel') ?? 'tunnel',
          reqid: t?.reqid || undefined,
          priority: p.priority,
          mark,
          action: p.action,
        },
        p.mark,
      )
      o.owned = Boolean(ledger[o.key])
      out.push(o)
    }
  }
  if (read.sad) {
    const ledger = owned(scope.ledger, 'xfrm-state')
    const keys = stateKeys(read.sad, (k) => {
      scope.runner?.addSecret(k)
      return new Secret(k)
    })
    for (const x of parseStates(read.sad)) {
      if (x.proto !== 'esp') continue
      const [mv, mm] = (x.mark ?? '').split('/')
      const spec = {
        src: x.src,
        dst: x.dst,
        spi: Number(x.spi),
        mode: x.mode as 'tunnel',
        reqid: x.reqid || undefined,
        mark: x.mark ? {value: Number(mv), mask: Number(mm)} : undefined,
      }
      const k = `${x.src} ${x.dst} ${x.spi}`
      out.push(new StateObj(spec, keys.get(k), x.keyDigest, ledger[k]?.meta?.keyFiles as Record<string, string> | undefined, Boolean(ledger[k])))
    }
  }
  for (const [i, value] of read.sysctls.entries()) if (value !== undefined) out.push(new SysctlObj(read.recipe.sysctls[i], value))
  for (const t of read.tunnels) {
    out.push(new TunnelObj(t.def, t.fingerprint, undefined, Boolean(scope.applied[`tunnel:${t.def.name}`]), t.running))
    for (const p of t.peers ?? [])
      out.push(new PeerObj(t.def.name, p.name, p.peer, p.fingerprint, Boolean(scope.applied[`wg-peer:${t.def.name} ${p.name}`]), p.running))
  }
  return out
}

/** The live objects of one namespace (links, addresses, routes, rules, proxy entries; xfrm policies, sysctls and tunnels when the file or the ledger has any). */
export async function liveObjects(scope: Scope, opts: {all?: boolean} = {}): Promise<Obj[]> {
  return objectsOf(await readLive(scope.runner, recipeOf(scope, opts)), scope)
}

/** Sysctl values, undefined for a key that does not exist (yet: an interface the plan makes). */
async function readSysctls(runner: Runner, paths: string[]): Promise<(string | undefined)[]> {
  const keys = paths.map((p) => ({path: p, name: p.replaceAll('/', '.')}))
  try {
    return await getSysctls(runner, keys)
  } catch {
    return Promise.all(
      keys.map((k) =>
        getSysctls(runner, [k]).then(
          ([x]) => x,
          () => undefined,
        ),
      ),
    )
  }
}

/**
 * Several `ip -j` reads in one process (one process per read costs more than
 * the read): one JSON array per command, one per line, returned as text.
 * Should one of them fail (IPv6 off in a namespace), each is read on its own,
 * a failure as empty.
 */
async function ipJsonBatch(runner: Runner, global: string[], commands: string[]): Promise<string[]> {
  const r = await runner.probe({tool: 'ip', args: [...global, '-j', '-batch', '-'], input: commands.join('\n') + '\n'})
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('['))
  if (r.exitCode === 0 && lines.length === commands.length) return lines
  // One read failed: find which, one at a time. A host without IPv6 has no IPv6 rules (nothing to compare);
  // any other failure (a namespace gone, ip refusing) is an error, never "nothing there", which would plan
  // to make everything again or to remove nothing.
  return Promise.all(
    commands.map(async (c) => {
      const inv = {tool: 'ip', args: [...global, '-j', ...c.split(' ')]}
      const one = await runner.probe(inv)
      if (one.exitCode === 0) return one.stdout.trim() || '[]'
      if (global.includes('-6') && /address family not supported/i.test(one.stderr)) return '[]'
      return runner.read(inv)
    }),
  )
}

const ORDER = KIND_ORDER

/** One scope's changes: desired against live, with ownership from the ledger. */
/** What is reported as foreign: objects the file could describe (SPD and SAD entries aside: IKE daemons own theirs). */
const FOREIGN_KINDS = new Set<Kind>(['link', 'addr', 'route', 'rule', 'proxy'])

export interface Foreign {
  kind: Kind
  object: string
  netns?: string
}

export function compareScope(scope: Scope, live: Obj[]): {changes: Change[]; unchanged: number; foreign: Foreign[]} {
  const byKey = new Map<string, Obj>()
  for (const o of live) byKey.set(o.id, o)
  const {applied} = scope
  const changes: Change[] = []
  let unchanged = 0
  const wanted = new Set<string>()
  const netns = scope.netns
  for (const d of scope.desired) {
    const k = d.id
    wanted.add(k)
    const l = byKey.get(k)
    if (!l) {
      changes.push({action: 'add', kind: d.kind, desc: d.desc, netns, desired: d})
      continue
    }
    const diff = differences(d, l)
    if (diff.length === 0) {
      unchanged++
      continue
    }
    // A tunnel is netkit's own (its store): one that is only down is brought up whoever made it.
    const mine =
      d.kind === 'sysctl' ||
      Boolean(applied[k]) ||
      (d.kind === 'table' && l.owned) ||
      ((d.kind === 'tunnel' || d.kind === 'wg-peer') && diff.length === 1 && diff[0] === 'it is down')
    if (!mine) {
      throw new NetkitError(
        'E_CONFLICT',
        `${l.desc}${inNamespace(netns)} is there and differs from the file (${diff.join('; ')}), and netkit's apply did not make it`,
        {fix: 'netkit never changes objects it did not make: remove or rename it, or change the file to match'},
      )
    }
    changes.push({action: 'change', kind: d.kind, desc: d.desc, netns, live: l, desired: d, why: diff.join('; ')})
  }
  for (const k of Object.keys(applied)) {
    if (wanted.has(k)) continue
    const l = byKey.get(k)
    if (l) changes.push({action: 'remove', kind: l.kind, desc: l.desc, netns, live: l})
  }
  // Not netkit's, not in the file: reported, never touched.
  const foreign: Foreign[] = []
  for (const o of live) {
    if (!o.owned && !o.auto && FOREIGN_KINDS.has(o.kind) && !wanted.has(o.id) && !applied[o.id])
      foreign.push({kind: o.kind, object: o.desc, ...(netns ? {netns} : {})})
  }
  return {changes: order(changes), unchanged, foreign}
}

/** Removals first (last kind first), then additions and changes by kind; bridges before the links that join them. */
function order(changes: Change[]): Change[] {
  const buckets: Change[][] = Array.from({length: KINDS.length * 2}, () => [])
  for (const c of changes) buckets[c.action === 'remove' ? KINDS.length - 1 - ORDER[c.kind] : KINDS.length + ORDER[c.kind]].push(c)
  const rank = (c: Change) => {
    const t = (c.desired ?? c.live)!.attrs.type
    return t === 'bridge' ? 0 : t === 'veth' ? 1 : 2
  }
  buckets[KINDS.length - 1 - ORDER.link].sort((a, b) => rank(b) - rank(a))
  buckets[KINDS.length + ORDER.link].sort((a, b) => rank(a) - rank(b))
  return buckets.flat()
}

/** The whole plan: every scope read (in parallel) and compared. */
export async function computePlan(scopes: Scope[], earlier: LiveRead[] = []): Promise<Plan> {
  phase('desired')
  // A read just made with the same recipe (the memo's, which did not match) is not made again.
  const reuse = (r: ReadRecipe) => earlier.find((e) => JSON.stringify(e.recipe) === JSON.stringify(r))
  const reads = await Promise.all(
    scopes.map((s) => {
      const r = recipeOf(s)
      return reuse(r) ?? readLive(s.runner, r)
    }),
  )
  phase('live read')
  const changes: Change[] = []
  const foreign: Foreign[] = []
  let unchanged = 0
  const lives: Obj[][] = []
  for (const [i, s] of scopes.entries()) {
    const live = objectsOf(reads[i], s)
    lives.push(live)
    const r = compareScope(s, live)
    await keepSecondaries(s, live, r.changes)
    for (const c of r.changes) changes.push(c)
    for (const x of r.foreign) foreign.push(x)
    unchanged += r.unchanged
  }
  refuseUnknowable(scopes, reads, changes)
  await refuseUnsupported(scopes, changes)
  unchanged -= collateral(scopes, lives, reads, changes)
  await namePeers(scopes, reads, changes)
  const statuses = new Map<string, TunnelStatus>()
  scopes.forEach((sc, i) => reads[i].tunnels.forEach((t) => t.status && statuses.set(statusKey(sc.netns, t.def.name), t.status)))
  return {scopes, changes, unchanged, foreign, reads: {recipes: reads.map((r) => r.recipe), digest: digestOf(reads)}, before: lives, statuses}
}

const KEPT_KINDS = new Set<Kind>(['link', 'addr', 'route', 'rule', 'proxy', 'xfrm-policy'])

/**
 * After an undo, the state read back and compared with the state the plan
 * was made from: `missing`, what was there and is not now (deleted by the
 * kernel along with something, or an undo line that failed); `left`, what the
 * plan added and is still there (an undo line that failed or never ran).
 * Both empty when the host is back as it was; an error then says it.
 */
export async function undoOutcome(plan: Plan): Promise<{missing: string[]; left: string[]}> {
  const missing: string[] = []
  const left: string[] = []
  for (const [i, s] of plan.scopes.entries()) {
    const before = (plan.before?.[i] ?? []).filter((o) => !o.auto && KEPT_KINDS.has(o.kind))
    const added = plan.changes.filter((c) => c.netns === s.netns && c.action === 'add' && KEPT_KINDS.has(c.kind))
    const where = inNamespace(s.runner.netns)
    if (s.netns && !netnsExists(s.netns)) {
      if (before.length) missing.push(`namespace ${s.netns} (with ${before.length} objects)`)
      continue
    }
    if (s.fresh) {
      // A namespace the plan made, there still.
      left.push(`namespace ${s.netns}`)
      continue
    }
    if (before.length === 0 && added.length === 0) continue
    const now = new Set(objectsOf(await readLive(s.runner, recipeOf({...s, fresh: false})), s).map((o) => o.id))
    for (const o of before) if (!now.has(o.id)) missing.push(`${o.desc}${where}`)
    const was = new Set(before.map((o) => o.id))
    for (const c of added) if (now.has(c.desired!.id) && !was.has(c.desired!.id)) left.push(`${c.desc}${where}`)
  }
  return {missing, left}
}
