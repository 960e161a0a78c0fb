/**
 * Stage 1, the desired state: the host file's objects, scope by scope (the
 * namespace apply runs in, each namespace of the file, and those an earlier
 * apply filled that the file no longer lists).
 */
import {createHash} from 'node:crypto'

import {UsageError} from '../errors.js'
import {netnsExists} from '../iproute2/netns.js'
import {resolveTable} from '../iproute2/tables.js'
import {keyDigest} from '../iproute2/xfrm-parse.js'
import {stateKeyArgs} from '../iproute2/xfrm.js'
import {ledgerScopes, owned, scopeOf} from '../ownership.js'
import {type Runner, Secret} from '../runner.js'
import {checkValue, resolveKey} from '../sysctl.js'
import {defineTunnel} from '../tunnel/define.js'
import {canonical} from '../tunnel/store.js'
import type {TunnelDef} from '../tunnel/types.js'
import {interfaceOnly, isInterface, peerFingerprint, peersOf} from '../tunnel/wireguard/peers.js'
import * as v from '../validate.js'
import {appliedIn} from './ledger.js'
import {
  AddrObj,
  LinkObj,
  NetnsObj,
  type Obj,
  PeerObj,
  PolicyObj,
  ProxyObj,
  RouteObj,
  RuleObj,
  StateObj,
  SysctlObj,
  TableObj,
  TunnelObj,
  xfrmMark,
} from './model.js'
import type {Scope} from './plan.js'
import type {HostFile, ScopeFile, TunnelEntry} from './schema.js'

export const linkObj = (l: ScopeFile['links'][number]) =>
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

export function routeObj(r: ScopeFile['routes'][number], tableOf: (t?: string) => number): RouteObj {
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
export function fileWords(text: string): string {
  return text
    .replace(/--([a-z][a-z-]*)(?: [A-Z]{2,}\b)?/g, (_, f: string) => `"${FILE_KEYS[f] ?? f.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase())}"`)
    .replace(/\bpass "/g, 'give "')
}

/** A tunnel's definition as text, with a digest of its PSK (a new key is a change; the key itself is never shown). */
export function fingerprint(def: TunnelDef, psk?: string): string {
  return `${canonical(def)}${psk ? ` psk:${createHash('sha256').update(psk).digest('hex').slice(0, 16)}` : ''}`
}

/** Every scope the file or the ledger names, with its desired objects. */
export async function desiredScopes(runner: Runner, f: HostFile): Promise<Scope[]> {
  const top = scopeOf(runner.netns)
  // Several applies can record in one namespace (one run there, others that list it in their files): each sees its own.
  const applied = appliedIn(top, null)
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
