/**
 * The peers of a WireGuard tunnel, whichever its form: an interface with
 * peers by name (`peers`), or the one-peer form (--remote), which is seen
 * here as an interface with one peer named after the tunnel. Peers are
 * checked here (once, before anything runs) and compared here.
 */
import {isAbsolute, resolve} from 'node:path'

import {UsageError} from '../../errors.js'
import {readSecretFile} from '../../files.js'
import {canonical} from '../store.js'
import * as v from '../../validate.js'
import type {TunnelDef, WgPeer} from '../types.js'

/** A peer's name: a host name (it names the peer in messages, files and apply's ledger). */
export const PEER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/
const WG_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/

export interface NamedPeer extends WgPeer {
  name: string
}

/** What a user gives for a peer (flags or a host file's entry), before it is checked. */
export interface PeerInput {
  publicKey?: string
  endpoint?: string
  allowedIps?: string[]
  keepalive?: number
  pskFile?: string
}

/** A tunnel with peers by name (made without --remote). */
export const isInterface = (def: TunnelDef): boolean => def.wireguard?.peers !== undefined

export function peerName(value: string): string {
  if (!PEER_NAME.test(value))
    throw new UsageError(`peer name "${value}" is not valid`, "use 1 to 63 letters, digits, '.', '-' or '_', starting with a letter or digit (a host name)")
  return value
}

export function wgKey(value: string, flag: string): string {
  const key = value.trim()
  if (!WG_KEY.test(key))
    throw new UsageError(`${flag} is not a WireGuard key`, 'it is 44 characters of base64, as printed by "netkit tunnel pubkey" or "wg pubkey"')
  return key
}

/** HOST:PORT with an IP address (IPv6 in brackets), normalized. */
export function endpoint(value: string, flag = '--endpoint'): string {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(value)
  if (!m) throw new UsageError(`${flag} "${value}" is not HOST:PORT`, 'write it like 192.0.2.2:51820')
  const host = m[1].startsWith('[') ? `[${v.ipAddress(m[1].slice(1, -1), flag).ip}]` : v.ipAddress(m[1], flag).ip
  return `${host}:${v.port(m[2], `${flag} port`)}`
}

/** The address part of an endpoint. */
export const endpointHost = (ep: string): string => ep.replace(/:\d+$/, '').replace(/^\[|\]$/g, '')

/** One peer, checked. `what`: how messages name it ("peer b"). */
export function checkPeer(input: PeerInput, what: string): WgPeer {
  const at = (e: unknown) => (e instanceof UsageError ? new UsageError(`${what}: ${e.what}`, e.fix ?? 'fix it', e.code) : e)
  try {
    if (!input.publicKey) throw new UsageError('--public-key is missing', 'give the peer\'s public key ("netkit tunnel pubkey NAME" on the peer)')
    const publicKey = wgKey(input.publicKey, '--public-key')
    const allowedIps = (input.allowedIps ?? [])
      .flatMap((s) => s.split(','))
      .map((s) => s.trim())
      .filter(Boolean)
      .map((s) => v.network(s, '--allowed-ips').cidr)
    if (allowedIps.length === 0)
      throw new UsageError('--allowed-ips is missing', 'give the addresses the peer sends from, e.g. --allowed-ips 10.99.0.2/32,10.2.0.0/24')
    const twice = v.firstOverlap(allowedIps.map((cidr) => ({cidr})))
    if (twice) throw new UsageError(`--allowed-ips lists ${twice[0].cidr} and ${twice[1].cidr}, which overlap`, 'list each network once')
    if (input.keepalive !== undefined && (!Number.isInteger(input.keepalive) || input.keepalive < 1 || input.keepalive > 65535))
      throw new UsageError(`--keepalive ${input.keepalive} is out of range`, 'give 1 to 65535 seconds')
    let pskFile: string | undefined
    if (input.pskFile !== undefined) {
      pskFile = isAbsolute(input.pskFile) ? input.pskFile : resolve(input.pskFile)
      wgKey(readSecretFile(pskFile, '--psk-file'), `the key in --psk-file ${pskFile}`)
    }
    return {
      publicKey,
      ...(input.endpoint ? {endpoint: endpoint(input.endpoint)} : {}),
      allowedIps,
      ...(input.keepalive === undefined ? {} : {keepalive: input.keepalive}),
      ...(pskFile ? {pskFile} : {}),
    }
  } catch (error) {
    throw at(error)
  }
}

/** The peers of one interface together: distinct keys, allowed-ips that overlap no other peer's nor a local subnet. */
export function checkPeerSet(peers: Record<string, WgPeer>, def: Pick<TunnelDef, 'localSubnets'>): void {
  const keys = new Map<string, string>()
  for (const [name, p] of Object.entries(peers)) {
    const other = keys.get(p.publicKey)
    if (other !== undefined)
      throw new UsageError(`peers ${other} and ${name} have the same public key`, 'each peer has its own key ("netkit tunnel pubkey" on each host)')
    keys.set(p.publicKey, name)
  }
  const nets = [
    ...def.localSubnets.map((cidr) => ({cidr, peer: undefined as string | undefined})),
    ...Object.entries(peers).flatMap(([peer, p]) => p.allowedIps.map((cidr) => ({cidr, peer}))),
  ]
  const hit = v.firstOverlap(nets)
  if (!hit) return
  const [a, b] = hit[0].peer === undefined ? [hit[1], hit[0]] : hit
  if (a.peer === undefined) throw new UsageError(`--local-subnet ${a.cidr} overlaps ${b.cidr}`, 'list each local subnet once')
  if (b.peer === undefined)
    throw new UsageError(
      `peer ${a.peer}: allowed-ip ${a.cidr} overlaps the local subnet ${b.cidr}`,
      "a peer's allowed-ips are behind the peer, not behind this host",
    )
  throw new UsageError(
    `peer ${b.peer}: allowed-ip ${b.cidr} overlaps ${a.cidr} of peer ${a.peer}`,
    'give each peer distinct allowed-ips (WireGuard sends each address to one peer)',
  )
}

/** The allowed-ips netkit routes into the tunnel: those outside the tunnel's own prefix (the address's connected route covers the rest). */
export function routedIps(peers: Record<string, WgPeer>, address?: string): string[] {
  const own = address ? v.span(address) : undefined
  const out = new Set<string>()
  for (const name of Object.keys(peers).sort()) {
    for (const a of peers[name].allowedIps) {
      const s = v.span(a)
      const inside = own !== undefined && s.family === own.family && s.start >= own.start && s.end <= own.end
      if (!inside) out.add(a)
    }
  }
  return [...out]
}

/** The definition with these peers (and the routes they need). */
export function withPeers(def: TunnelDef, peers: Record<string, WgPeer>): TunnelDef {
  const sorted: Record<string, WgPeer> = {}
  for (const name of Object.keys(peers).sort()) sorted[name] = peers[name]
  return {...def, remoteSubnets: routedIps(sorted, def.wireguard!.address), wireguard: {...def.wireguard!, peers: sorted}}
}

/** What the one-peer form's peer may send from, and what goes to it: its subnets and the tunnel's own network. */
export function onePeerAllowedIps(def: TunnelDef): string[] {
  const out = [...def.remoteSubnets]
  const a = def.wireguard?.address
  if (a) {
    const net = v.networkOf(a)
    if (!out.includes(net)) out.push(net)
  }
  return out
}

/** Every peer of the tunnel, by name (the one-peer form's peer is named after the tunnel). */
export function peersOf(def: TunnelDef): NamedPeer[] {
  const w = def.wireguard
  if (!w) return []
  if (w.peers)
    return Object.keys(w.peers)
      .sort()
      .map((name) => ({name, ...w.peers![name]}))
  return [
    {name: def.name, publicKey: w.peerPublicKey!, endpoint: w.endpoint, allowedIps: onePeerAllowedIps(def), ...(w.keepalive ? {keepalive: w.keepalive} : {})},
  ]
}

/**
 * Where a tunnel's outer packets go: its peer host, or, for a WireGuard
 * interface, each peer with an endpoint (one behind NAT has none here).
 * `subject` names it in the doctor's findings.
 */
export function tunnelEnds(def: TunnelDef): {subject: string; peer?: string; remote: string}[] {
  if (!isInterface(def)) return def.remote ? [{subject: def.name, remote: def.remote}] : []
  return peersOf(def)
    .filter((p) => p.endpoint)
    .map((p) => ({subject: `${def.name} peer ${p.name}`, peer: p.name, remote: endpointHost(p.endpoint!)}))
}

/** The definition without its peers (what a change of the interface itself is): apply compares peers one by one. */
export function interfaceOnly(def: TunnelDef): TunnelDef {
  if (!isInterface(def)) return def
  return {...def, remoteSubnets: [], wireguard: {...def.wireguard!, peers: {}}}
}

/**
 * A peer as apply compares it. A PSK is compared by the path of its file (wg
 * reads it there when the peer is set): new key, new file name.
 */
export function peerFingerprint(p: WgPeer): string {
  // canonical(p) written out for a peer's five fields (sorted, absent ones left out): an apply or a change of
  // one peer compares every peer of the interface (a thousand), and the generic walk was most of that time.
  for (const k in p) if (!PEER_FIELDS.has(k)) return canonical(p)
  const j = JSON.stringify
  return (
    `{"allowedIps":${j(p.allowedIps)}` +
    (p.endpoint === undefined ? '' : `,"endpoint":${j(p.endpoint)}`) +
    (p.keepalive === undefined ? '' : `,"keepalive":${j(p.keepalive)}`) +
    (p.pskFile === undefined ? '' : `,"pskFile":${j(p.pskFile)}`) +
    `,"publicKey":${j(p.publicKey)}` +
    '}'
  )
}
const PEER_FIELDS = new Set(['allowedIps', 'endpoint', 'keepalive', 'publicKey', 'pskFile'])

/** Whether two peer sets (by name) are the same. */
export function samePeers(a: Record<string, WgPeer>, b: Record<string, WgPeer>): boolean {
  const names = Object.keys(a)
  if (names.length !== Object.keys(b).length) return false
  return names.every((n) => b[n] !== undefined && peerFingerprint(a[n]) === peerFingerprint(b[n]))
}

const bare = ({name: _name, ...p}: NamedPeer): string => peerFingerprint(p)

/**
 * `wg set` words that take the device's peers from `before` to `after`, by
 * public key (what the device knows them by): a key gone is removed, as is one
 * whose endpoint went (wg cannot unset an endpoint: the peer is made again); a
 * peer new or changed is set, its allowed-ips replaced. Peers that did not
 * change are not named, so their sessions go on. A PSK goes by its file,
 * never on the argv. Empty: nothing to change.
 */
export function peerSetArgs(before: NamedPeer[], after: NamedPeer[]): string[] {
  const args: string[] = []
  const next = new Map(after.map((p) => [p.publicKey, p]))
  const removed = new Set<string>()
  for (const p of before) {
    const now = next.get(p.publicKey)
    if (!now || (p.endpoint && !now.endpoint)) {
      args.push('peer', p.publicKey, 'remove')
      removed.add(p.publicKey)
    }
  }
  const prev = new Map(before.map((p) => [p.publicKey, p]))
  for (const p of after) {
    const old = removed.has(p.publicKey) ? undefined : prev.get(p.publicKey)
    if (old && bare(old) === bare(p)) continue
    args.push('peer', p.publicKey)
    if (p.pskFile || old?.pskFile) args.push('preshared-key', p.pskFile ?? '/dev/null')
    if (p.endpoint) args.push('endpoint', p.endpoint)
    args.push('allowed-ips', p.allowedIps.join(','))
    if (p.keepalive || old?.keepalive) args.push('persistent-keepalive', String(p.keepalive ?? 0))
  }
  return args
}
