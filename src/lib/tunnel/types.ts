/**
 * The shape of a tunnel: its definition (what the user asked for, persisted
 * under the config directory), the context a driver works in, and what a
 * driver must provide. One driver per type: ipsec, wireguard, vxlan.
 */
import type {Step} from '../plan.js'
import type {Runner} from '../runner.js'

export type TunnelType = 'ipsec' | 'wireguard' | 'vxlan'
export type Datapath = 'kernel' | 'userspace'
export type DatapathChoice = 'auto' | Datapath

/** One peer of a WireGuard interface. */
export interface WgPeer {
  /** The peer's public key (base64, 32 bytes). */
  publicKey: string
  /** host:port; none for a peer that only connects in (behind NAT). */
  endpoint?: string
  /** What the peer may send from, and what goes to it (CIDRs, normalized). */
  allowedIps: string[]
  keepalive?: number
  /** A file holding the pre-shared key (mode 0600), read by `wg` itself. */
  pskFile?: string
}

/**
 * A WireGuard tunnel. Two forms, one device each:
 * - one peer, given by --remote (and --peer-public-key, --endpoint): the
 *   original form, with `peerPublicKey` and `endpoint`;
 * - an interface with `peers` by name (no --remote), changed one peer at a
 *   time (`tunnel peer add|del`, or apply). Its `remoteSubnets` are derived
 *   from the peers (every allowed-ip outside the tunnel's own prefix), so
 *   routes, takeover checks and host settings work as for the first form.
 * wireguard/peers.ts sees both as a list of peers.
 */
export interface WireguardDef {
  /** The device name (unique on the machine for wireguard-go): default "wg-" + tunnel name. */
  ifname: string
  listenPort: number
  /** One-peer form: the peer's public key (base64, 32 bytes). */
  peerPublicKey?: string
  /** One-peer form: host:port of the peer; default remote:listenPort. */
  endpoint?: string
  /** Interface form: the peers by name. */
  peers?: Record<string, WgPeer>
  /** The tunnel device's own address, CIDR (optional for pure site-to-site). */
  address?: string
  keepalive?: number
  fwmark?: number
}

export interface IpsecDef {
  localId: string
  remoteId: string
  auth: 'psk' | 'x509'
  /** x509: paths of the certificate, its key and the CA certificate. */
  cert?: string
  key?: string
  ca?: string
  /** IKE proposals, swanctl syntax, e.g. "aes256gcm16-prfsha384-x25519". */
  proposals: string
  /** ESP proposals, swanctl syntax. */
  espProposals: string
  /** Dead peer detection interval in seconds (0: off). */
  dpdDelay: number
  /** CHILD_SA rekey time in seconds. */
  rekeyTime: number
  /** trap (default: no packet in clear before the SA), start, or none. */
  startAction: 'trap' | 'start' | 'none'
}

export interface VxlanDef {
  ifname: string
  vni: number
  port: number
  /** The underlay device. */
  dev: string
  address?: string
  /** The peer's address on the VXLAN link: the gateway to the remote subnets. */
  peerAddress?: string
}

/** What the user asked for. Secrets are never in here: they live in files under secrets/. */
export interface TunnelDef {
  version: 1
  name: string
  type: TunnelType
  netns?: string
  /** The underlay addresses; a WireGuard interface with peers has none (each peer has its endpoint). */
  local?: string
  remote?: string
  localSubnets: string[]
  remoteSubnets: string[]
  /** Routing table (number) for the remote subnets, with a policy rule; undefined: main. */
  table?: number
  /** Answer ARP on this interface for remote addresses. */
  proxyArp?: string
  mtu?: number
  datapath: DatapathChoice
  wireguard?: WireguardDef
  ipsec?: IpsecDef
  vxlan?: VxlanDef
}

export type TunnelState = 'up' | 'connecting' | 'down'

export interface TunnelStatus {
  state: TunnelState
  /** The data path in use (or that would be used). */
  datapath: Datapath
  /** ISO time the tunnel came up (SA established, first handshake), if known. */
  since?: string
  /** Type-specific details for `tunnel show`: SAs, handshake age, bytes... */
  details: Record<string, unknown>
}

/** Everything a driver needs to act. */
export interface TunnelContext {
  runner: Runner
  /** The config directory (default /etc/netkit). */
  configDir: string
  /** The data path chosen for this run, and why. */
  datapath: Datapath
  datapathReason: string
  /** Timeouts in ms (bounded waits for SAs, handshakes). */
  timeoutMs: number
  /**
   * Wait until the tunnel is proven up (SA installed, handshake done) and fail
   * otherwise. Off for the first of two hosts (--no-wait), and for boot.
   */
  wait: boolean
  /** A dry run of --replace: the old tunnel's device is still there (its removal was only printed). */
  replacing?: boolean
}

export interface TunnelDriver {
  type: TunnelType
  /**
   * Checks against the host and the namespace's other tunnels that need no
   * change, before anything changes (a UsageError or NetkitError). `psk`: the
   * pre-shared key the tunnel will have, if it is given now.
   */
  check?(def: TunnelDef, ctx: TunnelContext, psk?: string): Promise<void>
  /**
   * What the host must offer the tunnel that no change netkit makes can give
   * it (the host's own charon and its plugins): part of check(), and what
   * apply's plan checks for each tunnel it sets up, before anything changes.
   * `inFile`: the fix in a host file's words rather than tunnel add's flags.
   */
  hostCheck?(def: TunnelDef, ctx: TunnelContext, opts?: {inFile?: boolean}): Promise<void>
  /** The steps that bring the tunnel up on this host, each with its undo. */
  up(def: TunnelDef, ctx: TunnelContext): Promise<Step[]>
  /** Removes every runtime object the tunnel made (keeps the definition and secrets). Idempotent. */
  down(def: TunnelDef, ctx: TunnelContext): Promise<void>
  /** Removes the files the driver wrote for the tunnel (configs), on `tunnel del`. Idempotent. */
  purge?(def: TunnelDef, ctx: TunnelContext): Promise<void>
  /** The live state. Must not change anything. */
  status(def: TunnelDef, ctx: TunnelContext): Promise<TunnelStatus>
  /** Which data path this host offers for the type, and why. */
  datapath(ctx: Pick<TunnelContext, 'runner'>, choice: DatapathChoice): Promise<{datapath: Datapath; reason: string}>
}
