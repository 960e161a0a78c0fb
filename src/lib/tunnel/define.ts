/**
 * From what the user typed to a validated tunnel definition. Everything is
 * checked here, before anything runs: a bad value is a UsageError (exit 2).
 * Missing values get defaults read from the host (the local address and the
 * underlay device from the route to the peer).
 */
import {randomBytes} from 'node:crypto'
import {statSync} from 'node:fs'

import {UsageError} from '../errors.js'
import {readSecretFile} from '../files.js'
import {Secret, type Runner} from '../runner.js'
import * as v from '../validate.js'
import {defaultEspProposals, defaultIkeProposals} from './ipsec/algorithms.js'
import type {DatapathChoice, IpsecDef, TunnelDef, TunnelType, WgPeer} from './types.js'
import {checkPeer, checkPeerSet, endpoint as checkEndpoint, peerName, type PeerInput, wgKey, withPeers} from './wireguard/peers.js'
import {routeGet} from '../iproute2/route-get.js'

export const DEFAULT_WG_PORT = 51820
export const DEFAULT_VXLAN_PORT = 4789

export interface TunnelInput {
  name: string
  type: TunnelType
  netns?: string
  local?: string
  /** The peer host. A WireGuard tunnel without it is an interface with peers by name (`peers`, or "tunnel peer add" later). */
  remote?: string
  localSubnet?: string[]
  remoteSubnet?: string[]
  table?: number
  proxyArp?: string
  mtu?: number
  datapath?: DatapathChoice
  // ipsec
  localId?: string
  remoteId?: string
  pskFile?: string
  cert?: string
  key?: string
  ca?: string
  proposals?: string
  espProposals?: string
  dpd?: number
  rekeyTime?: number
  startAction?: 'trap' | 'start' | 'none'
  // wireguard
  listenPort?: number
  peerPublicKey?: string
  endpoint?: string
  address?: string
  keepalive?: number
  fwmark?: number
  /** WireGuard interface form: its peers by name (a host file's `peers`). */
  peers?: Record<string, PeerInput>
  // vxlan
  vni?: number
  port?: number
  dev?: string
  peerAddress?: string
}

export interface Defined {
  def: TunnelDef
  /** The PSK, for ipsec with PSK auth (read from --psk-file, or generated). */
  psk?: Secret
  pskGenerated?: boolean
}

/** Tunnel names: short, because device names derive from them (Linux allows 15 characters). */
export function tunnelName(value: string): string {
  if (!/^[a-z0-9][a-z0-9_-]{0,11}$/i.test(value)) {
    throw new UsageError(`tunnel name "${value}" is not valid`, "use 1 to 12 letters, digits, '-' or '_', starting with a letter or digit")
  }
  return value
}

const isFile = (path: string): boolean => {
  try {
    return statSync(path).isFile()
  } catch {
    return false
  }
}

const PROPOSAL = /^[a-z0-9_-]+(,[a-z0-9_-]+)*$/i
const WEAK = /(^|[-_,])(null|3des|des|md5|sha1|modp768|modp1024|modp1536)($|[-_,])/i

/** A tunnel definition from what the user typed: each value checked, the local address found from the route to the peer when not given. */
export async function defineTunnel(input: TunnelInput, runner: Runner): Promise<Defined> {
  const name = tunnelName(input.name)
  if (input.remote === undefined) {
    if (input.type === 'wireguard') return {def: defineInterface(input, name)}
    throw new UsageError(`${input.type === 'ipsec' ? 'an IPsec' : 'a VXLAN'} tunnel needs --remote`, "give the peer host's underlay address with --remote")
  }
  if (input.peers !== undefined)
    throw new UsageError(
      'peers and --remote cannot be used together',
      'a WireGuard tunnel with --remote has that one peer; for an interface with peers by name, leave out --remote',
    )
  const remote = v.ipAddress(input.remote, '--remote')
  const route = await routeGet(runner, remote.ip)
  const local = localEnd(input, remote, route?.prefsrc)
  const {localSubnets, remoteSubnets} = subnetsOf(input)
  if (input.proxyArp) v.ifname(input.proxyArp, '--proxy-arp interface')

  const def: TunnelDef = {
    version: 1,
    name,
    type: input.type,
    ...(input.netns ? {netns: input.netns} : {}),
    local: local.ip,
    remote: remote.ip,
    localSubnets,
    remoteSubnets,
    ...(input.table === undefined ? {} : {table: input.table}),
    ...(input.proxyArp ? {proxyArp: input.proxyArp} : {}),
    ...(input.mtu === undefined ? {} : {mtu: input.mtu}),
    datapath: input.datapath ?? 'auto',
  }
  const out: Defined = {def}
  if (input.type === 'ipsec') {
    const auth = ipsecAuth(input, runner)
    Object.assign(out, auth.secret)
    def.ipsec = defineIpsec(input, auth.auth, local, remote, runner)
  } else if (input.type === 'wireguard') {
    def.wireguard = definePeerWireguard(input, name, remote, remoteSubnets)
  } else {
    def.vxlan = defineVxlan(input, name, remote, route?.dev, remoteSubnets)
  }
  return out
}

/** The tunnel's local end: --local, else the source address of the route to the peer; of the peer's family, and not the peer. */
function localEnd(input: TunnelInput, remote: v.Address, prefsrc: string | undefined): v.Address {
  let local: v.Address
  if (input.local) local = v.ipAddress(input.local, '--local')
  else if (prefsrc) local = v.ipAddress(prefsrc, 'local address')
  else throw new UsageError(`there is no route to ${remote.ip}, so the local address cannot be found`, 'pass --local IP, or add a route to the peer first')
  v.sameFamily(local, remote, '--local and --remote')
  if (local.ip === remote.ip) throw new UsageError('--local and --remote are the same address', 'give the peer address with --remote')
  return local
}

/** The subnets on each side, as CIDRs; no local one may overlap a remote one. */
function subnetsOf(input: TunnelInput): {localSubnets: string[]; remoteSubnets: string[]} {
  const localSubnets = (input.localSubnet ?? []).map((s) => v.network(s, '--local-subnet').cidr)
  const remoteSubnets = (input.remoteSubnet ?? []).map((s) => v.network(s, '--remote-subnet').cidr)
  for (const l of localSubnets) {
    for (const r of remoteSubnets) {
      if (v.overlaps(l, r)) throw new UsageError(`local subnet ${l} overlaps remote subnet ${r}`, 'the two sides need distinct subnets')
    }
  }
  return {localSubnets, remoteSubnets}
}

/** IPsec authentication: X.509 (--cert, --key and --ca, all readable), a PSK from --psk-file (16 characters at least), or a generated 256-bit PSK. */
function ipsecAuth(input: TunnelInput, runner: Runner): {auth: IpsecDef['auth']; secret: Omit<Defined, 'def'>} {
  const auth: IpsecDef['auth'] = input.cert || input.key || input.ca ? 'x509' : 'psk'
  if (auth === 'x509') {
    if (!input.cert || !input.key || !input.ca)
      throw new UsageError('X.509 authentication needs --cert, --key and --ca together', 'give all three, or none for a pre-shared key')
    if (input.pskFile) throw new UsageError('--psk-file and --cert cannot be used together', 'choose a pre-shared key or certificates')
    readSecretFile(input.key, '--key')
    for (const [flag, path] of [
      ['--cert', input.cert],
      ['--ca', input.ca],
    ] as const) {
      if (!isFile(path)) throw new UsageError(`${flag} ${path} is not a file that exists`, 'give the path of the PEM certificate')
    }
    return {auth, secret: {}}
  }
  if (input.pskFile) {
    const psk = readSecretFile(input.pskFile, '--psk-file')
    if (psk.length < 16)
      throw new UsageError(
        `the PSK in ${input.pskFile} is ${psk.length} characters long`,
        'use at least 16 (netkit makes a 256-bit one when --psk-file is not given)',
      )
    runner.addSecret(psk)
    return {auth, secret: {psk: new Secret(psk)}}
  }
  const psk = `0s${randomBytes(32).toString('base64')}`
  runner.addSecret(psk)
  return {auth, secret: {psk: new Secret(psk), pskGenerated: true}}
}

/** The IPsec part of a definition: proposals and identities checked (a warning for weak algorithms), defaults filled in; --table refused. */
function defineIpsec(input: TunnelInput, auth: IpsecDef['auth'], local: v.Address, remote: v.Address, runner: Runner): IpsecDef {
  checkProposals(input, runner)
  for (const [flag, value] of [
    ['--local-id', input.localId],
    ['--remote-id', input.remoteId],
  ] as const) {
    if (value !== undefined && (!/^[\x20-\x7e]{1,255}$/.test(value) || /["\\]/.test(value))) {
      throw new UsageError(`${flag} "${value}" is not a usable IKE identity`, 'use an address, a FQDN, user@fqdn or a DN, without quotes or backslashes')
    }
  }
  if (input.table !== undefined) {
    throw new UsageError(
      '--table is not available for IPsec tunnels: charon installs the routes to the remote subnets in its own table (220)',
      'leave out --table (it applies to wireguard and vxlan tunnels)',
    )
  }
  return {
    localId: input.localId ?? local.ip,
    remoteId: input.remoteId ?? remote.ip,
    auth,
    ...(auth === 'x509' ? {cert: input.cert, key: input.key, ca: input.ca} : {}),
    proposals: input.proposals ?? defaultIkeProposals(),
    espProposals: input.espProposals ?? defaultEspProposals(),
    dpdDelay: input.dpd ?? 30,
    rekeyTime: input.rekeyTime ?? 3600,
    startAction: input.startAction ?? 'trap',
  }
}

/** --proposals and --esp-proposals: well-formed lists; a warning when they name weak algorithms. */
function checkProposals(input: TunnelInput, runner: Runner): void {
  for (const [flag, value] of [
    ['--proposals', input.proposals],
    ['--esp-proposals', input.espProposals],
  ] as const) {
    if (value !== undefined && (!PROPOSAL.test(value) || value.length > 1000 || value.split(/[-,]/).some((t) => t.length > 32))) {
      throw new UsageError(`${flag} "${value}" is not a proposal list`, 'write it like aes256gcm16-prfsha384-x25519 (comma-separated)')
    }
  }
  const weak = [...new Set([input.proposals, input.espProposals].flatMap((p) => (p ? weakAlgorithms(p) : [])))]
  if (weak.length)
    runner.warn(`weak algorithms in the proposals (${weak.join(', ')}): use them only for a peer that cannot do better (the defaults are AEAD with Curve25519)`)
}

/** The WireGuard part of a one-peer tunnel (--remote): the peer's key, the endpoint (the peer at our listen port by default), an address or remote subnets. */
function definePeerWireguard(input: TunnelInput, name: string, remote: v.Address, remoteSubnets: string[]): NonNullable<TunnelDef['wireguard']> {
  if (!input.peerPublicKey)
    throw new UsageError(
      'a WireGuard tunnel with --remote needs --peer-public-key',
      'get it on the peer with "netkit tunnel pubkey NAME" (or leave out --remote for an interface with peers by name)',
    )
  const key = wgKey(input.peerPublicKey, '--peer-public-key')
  if (!input.address && remoteSubnets.length === 0) {
    throw new UsageError(
      'a WireGuard tunnel needs --address (its own address in the tunnel) or --remote-subnet',
      'e.g. --address 10.99.0.1/24 here and --address 10.99.0.2/24 on the peer',
    )
  }
  const listenPort = input.listenPort ?? DEFAULT_WG_PORT
  const endpoint = checkEndpoint(input.endpoint ?? `${remote.family === 6 ? `[${remote.ip}]` : remote.ip}:${listenPort}`)
  return {
    ifname: v.ifname(`wg-${name}`),
    listenPort,
    peerPublicKey: key,
    endpoint,
    ...(input.address ? {address: v.interfaceAddress(input.address, '--address').cidr} : {}),
    ...(input.keepalive === undefined ? {} : {keepalive: input.keepalive}),
    ...(input.fwmark === undefined ? {} : {fwmark: input.fwmark}),
  }
}

/** The VXLAN part: the VNI, the underlay device (the route's by default), and an address and peer address on one subnet when it routes remote subnets. */
function defineVxlan(
  input: TunnelInput,
  name: string,
  remote: v.Address,
  routeDev: string | undefined,
  remoteSubnets: string[],
): NonNullable<TunnelDef['vxlan']> {
  if (input.vni === undefined) throw new UsageError('a VXLAN tunnel needs --vni', 'pick a VNI from 1 to 16777215, the same on both hosts')
  const dev = input.dev ?? routeDev
  if (!dev) throw new UsageError(`there is no route to ${remote.ip}, so the underlay device cannot be found`, 'pass --dev IF')
  const address = input.address ? v.interfaceAddress(input.address, '--address') : undefined
  const peer = input.peerAddress ? v.ipAddress(input.peerAddress, '--peer-address') : undefined
  if (remoteSubnets.length > 0 && (!address || !peer)) {
    throw new UsageError(
      'a VXLAN tunnel that routes --remote-subnet needs --address and --peer-address',
      "give this host's address on the VXLAN link and the peer's (the gateway to its subnets)",
    )
  }
  if (address && peer && !v.contains(v.networkOf(address.cidr), peer.ip)) {
    throw new UsageError(`--peer-address ${peer.ip} is not on the subnet of --address ${address.cidr}`, 'give the peer an address on the same VXLAN subnet')
  }
  return {
    ifname: v.ifname(`vx-${name}`),
    vni: input.vni,
    port: input.port ?? DEFAULT_VXLAN_PORT,
    dev: v.ifname(dev, '--dev'),
    ...(address ? {address: address.cidr} : {}),
    ...(peer ? {peerAddress: peer.ip} : {}),
  }
}

/**
 * A WireGuard interface with peers by name (no --remote): one key pair, one
 * listen port, one device. Its routes are its peers' allowed-ips outside its
 * own prefix (peers.ts).
 */
function defineInterface(input: TunnelInput, name: string): TunnelDef {
  const refuse = (flag: string, fix: string) => {
    throw new UsageError(`${flag} is for a tunnel with one peer (--remote)`, fix)
  }
  if (input.peerPublicKey !== undefined)
    refuse('--peer-public-key', 'give --remote too, or add the peer with "netkit tunnel peer add NAME PEER --public-key KEY --allowed-ips ..."')
  if (input.endpoint !== undefined) refuse('--endpoint', 'each peer has its own: "netkit tunnel peer add NAME PEER --endpoint HOST:PORT ..."')
  if (input.keepalive !== undefined) refuse('--keepalive', 'each peer has its own: "netkit tunnel peer add NAME PEER --keepalive N ..."')
  if ((input.remoteSubnet ?? []).length > 0) refuse('--remote-subnet', 'list the subnets behind each peer in its allowed-ips (they are routed into the tunnel)')
  if (input.local !== undefined) refuse('--local', 'leave it out: WireGuard answers on every address (--listen-port)')
  const localSubnets = (input.localSubnet ?? []).map((s) => v.network(s, '--local-subnet').cidr)
  if (input.proxyArp) v.ifname(input.proxyArp, '--proxy-arp interface')
  const address = input.address ? v.interfaceAddress(input.address, '--address').cidr : undefined
  const peers: Record<string, WgPeer> = {}
  for (const [peer, p] of Object.entries(input.peers ?? {})) peers[peerName(peer)] = checkPeer(p, `peer ${peer}`)
  checkPeerSet(peers, {localSubnets})
  const def: TunnelDef = {
    version: 1,
    name,
    type: 'wireguard',
    ...(input.netns ? {netns: input.netns} : {}),
    localSubnets,
    remoteSubnets: [],
    ...(input.table === undefined ? {} : {table: input.table}),
    ...(input.proxyArp ? {proxyArp: input.proxyArp} : {}),
    ...(input.mtu === undefined ? {} : {mtu: input.mtu}),
    datapath: input.datapath ?? 'auto',
    wireguard: {
      ifname: v.ifname(`wg-${name}`),
      listenPort: input.listenPort ?? DEFAULT_WG_PORT,
      ...(address ? {address} : {}),
      ...(input.fwmark === undefined ? {} : {fwmark: input.fwmark}),
    },
  }
  return withPeers(def, peers)
}

/** Weak algorithms in a proposal list (for warnings and the doctor). */
export function weakAlgorithms(proposals: string): string[] {
  return proposals.split(/[-,]/).filter((p) => WEAK.test(p))
}
