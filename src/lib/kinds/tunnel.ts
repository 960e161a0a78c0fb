/**
 * Tunnels as apply sees them: made and removed by netkit's tunnel service
 * (with its own undo), compared by definition (tunnel/store.ts canonical) and
 * by whether their daemon or device runs. A WireGuard interface is the tunnel
 * (compared without its peers) and one wg-peer object per peer.
 */
import {createHash} from 'node:crypto'
import {existsSync} from 'node:fs'

import type {z} from 'zod/v4'

import {UsageError} from '../errors.js'
import {configDir, readSecretFile} from '../files.js'
import type {Runner, Secret} from '../runner.js'
import {defineTunnel} from '../tunnel/define.js'
import {tunnelStatus} from '../tunnel/service.js'
import {canonical, listDefs, pskPath} from '../tunnel/store.js'
import type {TunnelDef, TunnelStatus, WgPeer} from '../tunnel/types.js'
import type {PeerState} from '../tunnel/wireguard/driver.js'
import {interfaceOnly, isInterface, peerFingerprint, peersOf} from '../tunnel/wireguard/peers.js'
import * as v from '../validate.js'
import {type Attrs, Obj} from './object.js'
import type {AddIssue, Path, SchemaParts} from './schema-parts.js'
import {PEER_NAME, type PeerEntry, PeerObj, peerEntryFast, peerNameSchema, peerSchema} from './wg-peer.js'

/**
 * A tunnel entry's schema, as `netkit tunnel add` takes it (the name is its
 * key; the namespace is the one it is listed in). A WireGuard tunnel without
 * `remote` is an interface with `peers` by name.
 */
export const tunnelSchema = (parts: SchemaParts) => {
  const {z, ip, list, net, u32, ifname, port, cidrAddr, map, none} = parts
  const Peer = peerSchema(parts)
  return z.strictObject({
    type: z.enum(['ipsec', 'wireguard', 'vxlan']).describe('the tunnel type'),
    remote: ip.optional().describe('the peer host (a WireGuard interface with peers has none)'),
    local: ip.optional().describe("this host's underlay address (default: the file's or the kernel's address towards remote)"),
    localSubnets: list(net).default([]).describe('subnets behind this host'),
    remoteSubnets: list(net).default([]).describe('subnets behind the peer, routed through the tunnel'),
    table: u32.min(1).optional().describe('routing table for the remote subnets, with a policy rule (default main)'),
    proxyArp: ifname.optional().describe('answer ARP on this interface for remote addresses'),
    mtu: z.number().int().min(68).max(65535).optional().describe('the tunnel MTU'),
    datapath: z.enum(['auto', 'kernel', 'userspace']).default('auto').describe('kernel, userspace, or auto (the kernel where it can)'),
    // ipsec
    pskFile: z.string().min(1).optional().describe('IPsec: the pre-shared key file (mode 0600), the same on both hosts'),
    cert: z.string().min(1).optional().describe("IPsec X.509: this host's certificate"),
    key: z.string().min(1).optional().describe('IPsec X.509: its private key (mode 0600)'),
    ca: z.string().min(1).optional().describe('IPsec X.509: the CA certificate'),
    localId: z.string().min(1).optional().describe("IPsec: this host's IKE identity (default its address)"),
    remoteId: z.string().min(1).optional().describe("IPsec: the peer's IKE identity (default its address)"),
    proposals: z.string().min(1).optional().describe('IPsec: IKE proposals, swanctl syntax (default AEAD with Curve25519)'),
    espProposals: z.string().min(1).optional().describe('IPsec: ESP proposals, swanctl syntax'),
    dpd: z.number().int().min(0).max(86_400).optional().describe('IPsec: dead peer detection interval in seconds (0: off)'),
    rekeyTime: z.number().int().min(60).max(604_800).optional().describe('IPsec: CHILD_SA rekey time in seconds'),
    startAction: z.enum(['trap', 'start', 'none']).optional().describe('IPsec: trap (default: nothing in clear before the SA), start or none'),
    // wireguard
    listenPort: port.optional().describe('WireGuard: the UDP port this host listens on'),
    peerPublicKey: z.string().optional().describe("WireGuard, one peer: the peer's public key"),
    endpoint: z.string().optional().describe('WireGuard, one peer: host:port of the peer (default remote:listenPort)'),
    address: cidrAddr.optional().describe("the tunnel device's own address"),
    keepalive: z.number().int().min(1).max(65535).optional().describe('WireGuard, one peer: persistent keepalive in seconds'),
    fwmark: u32.min(1).optional().describe('WireGuard: the fwmark of its own packets'),
    /** A WireGuard interface's peers by name (`peers:` with none, or `{}`: an interface without peers yet). */
    peers: map(peerNameSchema(parts), Peer)
      .nullable()
      .transform((x) => x ?? none<z.output<typeof Peer>>())
      .optional()
      .describe('WireGuard interface: its peers by name (instead of remote)'),
    // vxlan
    vni: z.number().int().min(1).max(16_777_215).optional().describe('VXLAN: the network identifier'),
    port: port.optional().describe('VXLAN: the UDP port'),
    dev: ifname.optional().describe('VXLAN: the underlay device'),
    peerAddress: ip.optional().describe("VXLAN: the peer's address on the link (the gateway to the remote subnets)"),
  })
}

export type TunnelEntry = z.output<ReturnType<typeof tunnelSchema>>

/** A tunnel's name: its key in the file's `tunnels`. */
export const TUNNEL_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,11}$/
export const tunnelNameSchema = ({z}: SchemaParts) => z.string().regex(TUNNEL_NAME, 'a tunnel name: a letter, then up to 11 letters, digits, - or _')

const DATAPATHS = ['auto', 'kernel', 'userspace']

/**
 * A WireGuard interface with peers by name (what "netkit fleet render" writes: type, address,
 * listenPort, peers; mtu and datapath too) checked without zod: exactly what tunnelSchema gives,
 * defaults and the schema's order of fields included, or undefined for any other tunnel and any
 * doubt (the schema decides, and says what is wrong). A fleet's host file is read by each apply on
 * the host; zod and its schema cost about 50 ms of CPU there.
 */
export function tunnelEntryFast(x: unknown): TunnelEntry | undefined {
  if (!v.isMap(x)) return undefined
  const e = x
  for (const k in e) if (k !== 'type' && k !== 'address' && k !== 'listenPort' && k !== 'peers' && k !== 'mtu' && k !== 'datapath') return undefined
  const {type, address, listenPort, peers, mtu, datapath} = e
  if (type !== 'wireguard' || !v.isMap(peers)) return undefined
  if (listenPort !== undefined && !v.isIntIn(listenPort, 1, 65535)) return undefined
  if (mtu !== undefined && !v.isIntIn(mtu, 68, 65535)) return undefined
  if (datapath !== undefined && !DATAPATHS.includes(datapath as string)) return undefined
  let addr: v.Cidr | undefined
  if (address !== undefined) {
    if (typeof address !== 'string') return undefined
    try {
      addr = v.interfaceAddress(address)
    } catch {
      return undefined
    }
  }
  const byName = Object.create(null) as Record<string, PeerEntry>
  for (const name of Object.keys(peers)) {
    if (!PEER_NAME.test(name)) return undefined
    const p = peerEntryFast(peers[name])
    if (!p) return undefined
    byName[name] = p
  }
  const out: Record<string, unknown> = {type, localSubnets: [], remoteSubnets: []}
  if (mtu !== undefined) out.mtu = mtu
  out.datapath = datapath ?? 'auto'
  if (listenPort !== undefined) out.listenPort = listenPort
  if (addr !== undefined) out.address = addr
  out.peers = byName
  return out as TunnelEntry
}

/** A tunnel: what its type needs (authentication, remote, a peer's key or peers by name, a VNI). */
export function checkTunnels(tunnels: Record<string, TunnelEntry>, prefix: Path, add: AddIssue): void {
  for (const [name, t] of Object.entries(tunnels)) {
    const at = [...prefix, 'tunnels', name]
    if (t.type === 'ipsec' && !t.pskFile && !t.cert)
      add({path: at, message: 'an IPsec tunnel in a host file needs pskFile (the same key on both hosts) or cert, key and ca'})
    if (t.type !== 'wireguard' && !t.remote)
      add({path: [...at, 'remote'], message: `${t.type === 'ipsec' ? 'an IPsec' : 'a VXLAN'} tunnel needs remote (the peer host's underlay address)`})
    if (t.type !== 'wireguard' && t.peers) add({path: [...at, 'peers'], message: 'only a WireGuard tunnel has peers by name'})
    if (t.type === 'wireguard' && t.remote && t.peers)
      add({path: [...at, 'peers'], message: 'a WireGuard tunnel has remote and peerPublicKey (one peer) or peers (by name), not both'})
    if (t.type === 'wireguard' && t.remote && !t.peerPublicKey)
      add({
        path: [...at, 'peerPublicKey'],
        message: 'a WireGuard tunnel with remote needs the peer\'s public key ("netkit tunnel pubkey NAME" on the peer), or leave out remote and list peers',
      })
    if (t.type === 'vxlan' && t.vni === undefined) add({path: [...at, 'vni'], message: 'a VXLAN tunnel needs vni'})
  }
}

/** A tunnel: made and removed by netkit's tunnel service (with its own undo), compared by definition. */
export class TunnelObj extends Obj {
  get kind() {
    return 'tunnel' as const
  }

  constructor(
    readonly def: TunnelDef,
    /** The definition as canonical text, with the PSK's digest (a changed key is a changed tunnel). */
    readonly fingerprint: string,
    /** Where its definition came from: the file (desired: the PSK read from pskFile) or the config (live). */
    readonly psk?: Secret,
    owned = true,
    /** Live: whether its daemon or device is there (charon with the connection loaded, the WireGuard or VXLAN device up). Desired: true. */
    readonly running = true,
  ) {
    super(def.name, owned)
  }

  get attrs(): Attrs {
    return {definition: this.fingerprint, runtime: this.running ? 'running' : 'down'}
  }

  get desc(): string {
    return `${this.def.type} tunnel ${this.def.name}`
  }
}

/**
 * A tunnel entry through the same checks as `netkit tunnel add`; an error
 * names its place in the file (`at`). A WireGuard interface is the tunnel
 * (compared without its peers) and one object per peer.
 */
export async function tunnelFromEntry(name: string, t: TunnelEntry, runner: Runner, netns: string | undefined, at: string): Promise<Obj[]> {
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

/** A tunnel as read: its definition (and peers) as compared, and its runtime as its driver reads it. */
export interface LiveTunnel {
  def: TunnelDef
  fingerprint: string
  running: boolean
  peers?: {name: string; peer: WgPeer; fingerprint: string; running: boolean}[]
  /** As the driver read it (apply hands it to the peer change, which need not read the device again). */
  status?: TunnelStatus
}

/** The tunnels defined in `dir`, each with its runtime as its driver reads it (swanctl, wg, ip): one that is down is brought up again. */
export function readTunnels(runner: Runner, dir: string): Promise<LiveTunnel[]> {
  return Promise.all(
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

/** The live tunnels and their peers as objects; `applied`: apply's records of the namespace. */
export function liveTunnels(rows: LiveTunnel[], applied: Record<string, unknown>): Obj[] {
  const out: Obj[] = []
  for (const t of rows) {
    out.push(new TunnelObj(t.def, t.fingerprint, undefined, Boolean(applied[`tunnel:${t.def.name}`]), t.running))
    for (const p of t.peers ?? [])
      out.push(new PeerObj(t.def.name, p.name, p.peer, p.fingerprint, Boolean(applied[`wg-peer:${t.def.name} ${p.name}`]), p.running))
  }
  return out
}
