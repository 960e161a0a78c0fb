/**
 * What `netkit metrics` reports, read once per run: every tunnel's status (the
 * drivers' status(), as `tunnel show` reads it: wireguard-go's control socket
 * or `wg show DEV dump`, charon's VICI list-sas) and the doctor's checks, all through one
 * runner whose identical reads run once (the doctor's handshake check and the
 * handshake metrics see the same dump). The doctor runs without --probe: no
 * traffic is sent, every check only reads (about as long as `netkit doctor`).
 *
 * Names follow Prometheus' conventions: the netkit_ prefix, base units
 * (seconds, bytes), counters ending in _total, an _info gauge for a label that
 * only describes. Labels: `netns` (the namespace the tunnel is defined in,
 * "" for the host itself), `tunnel`, `type`; WireGuard peers by `peer` (the
 * public key) and `peer_name` where the tunnel names its peers.
 */
import {runDoctor} from '../doctor/run.js'
import type {Finding} from '../doctor/types.js'
import {netnsExists} from '../iproute2/netns.js'
import type {Runner} from '../runner.js'
import {tunnelStatus} from '../tunnel/service.js'
import {listDefs, listScopes, scopeDir} from '../tunnel/store.js'
import type {TunnelDef, TunnelState, TunnelStatus} from '../tunnel/types.js'
import type {ChildSa, IkeSa} from '../tunnel/ipsec/vici.js'
import type {MetricFamily, MetricType, Sample} from './exposition.js'

/** charon's IKE SA states (ike_sa_state_t), each reported, 0 when no SA is in it. */
export const IKE_STATES = ['CREATED', 'CONNECTING', 'ESTABLISHED', 'PASSIVE', 'REKEYING', 'REKEYED', 'DELETING', 'DESTROYING']
/** charon's CHILD_SA states (child_sa_state_t). */
export const CHILD_STATES = ['CREATED', 'ROUTED', 'INSTALLING', 'INSTALLED', 'UPDATING', 'REKEYING', 'REKEYED', 'RETRYING', 'DELETING', 'DELETED', 'DESTROYING']
const TUNNEL_STATES: TunnelState[] = ['up', 'connecting', 'down']
const VERDICT: Record<string, number> = {ok: 0, warn: 1, fail: 2}

/** One tunnel as read: its definition and status (or why it could not be read). */
export interface TunnelSnapshot {
  def: TunnelDef
  status: TunnelStatus
  error?: string
}

export interface ScopeSnapshot {
  /** undefined: the host itself. */
  netns?: string
  tunnels: TunnelSnapshot[]
  /** The doctor's findings (undefined: not run). */
  findings?: Finding[]
}

export interface Snapshot {
  /** Unix seconds when the state was read. */
  now: number
  scopes: ScopeSnapshot[]
}

export interface CollectOptions {
  runner: Runner
  configDir: string
  /** The scopes to read: [undefined] is the host itself; 'all' every namespace netkit has tunnels in, and the host. */
  scopes: (string | undefined)[] | 'all'
  doctor: boolean
  /** With doctor: where the tools' versions are kept between runs (doctor/run.ts versionCachePath). */
  versionCache?: string
}

/** Reads every tunnel's status and the doctor's findings, once. */
export async function collect(opts: CollectOptions): Promise<Snapshot> {
  const runner = opts.runner.withReadCache()
  const wanted = opts.scopes === 'all' ? listScopes(opts.configDir).map((s) => s.netns) : opts.scopes
  const now = Math.floor(Date.now() / 1000)
  const scopes = await Promise.all(
    wanted.map(async (netns): Promise<ScopeSnapshot> => {
      const defs = listDefs(scopeDir(opts.configDir, netns))
      // A namespace gone since its tunnels were defined: they are down, and there is nothing to check in it.
      const present = netns === undefined || netnsExists(netns)
      const [tunnels, findings] = await Promise.all([
        Promise.all(defs.map(async (def) => readTunnel(def, runner, opts.configDir))),
        opts.doctor && present
          ? runDoctor({runner: runner.in(netns ?? null), configDir: opts.configDir, versionCache: opts.versionCache}).then((r) => r.findings)
          : undefined,
      ])
      return {netns, tunnels, findings}
    }),
  )
  return {now, scopes}
}

async function readTunnel(def: TunnelDef, runner: Runner, configDir: string): Promise<TunnelSnapshot> {
  try {
    return {def, status: await tunnelStatus(def, {runner, configDir})}
  } catch (error) {
    // One tunnel that cannot be read (a charon that does not answer) is reported down; the others still are.
    return {def, status: {state: 'down', datapath: 'userspace', details: {}}, error: error instanceof Error ? error.message : String(error)}
  }
}

/** A family under construction. */
class Families {
  readonly list: MetricFamily[] = []
  private readonly byName = new Map<string, MetricFamily>()

  def(name: string, type: MetricType, help: string): void {
    const f = {name, type, help, samples: []}
    this.list.push(f)
    this.byName.set(name, f)
  }

  add(name: string, labels: Record<string, string>, value: number): void {
    const f = this.byName.get(name)
    if (!f) throw new Error(`internal error: metric ${name} is not defined`)
    f.samples.push({labels, value} as Sample)
  }
}

/** A WireGuard peer as the driver's status reports it: today `details.peer`, on an interface with many peers `details.peers`. */
interface PeerStatus {
  name?: string
  publicKey: string
  latestHandshake?: string | null
  handshakeAgeSeconds?: number | null
  rxBytes?: number
  txBytes?: number
}

export function wireguardPeers(status: TunnelStatus): PeerStatus[] {
  const d = status.details as {peer?: PeerStatus; peers?: PeerStatus[]}
  if (Array.isArray(d.peers)) return d.peers.filter((p) => p && typeof p.publicKey === 'string')
  return d.peer && typeof d.peer.publicKey === 'string' ? [d.peer] : []
}

/** The snapshot as metric families (see docs/metrics.md for the list). */
export function toFamilies(snap: Snapshot): MetricFamily[] {
  const m = new Families()
  m.def(
    'netkit_tunnel_up',
    'gauge',
    'Whether the tunnel is up (1: IPsec CHILD_SA installed, WireGuard handshake done, VXLAN device up; 0: connecting or down).',
  )
  m.def('netkit_tunnel_state', 'gauge', "The tunnel's state: 1 for the state it is in (up, connecting, down), 0 for the others.")
  m.def('netkit_tunnel_datapath_info', 'gauge', 'The data path the tunnel uses (kernel or userspace), as the label datapath; always 1.')
  m.def('netkit_wireguard_peer_last_handshake_timestamp_seconds', 'gauge', 'Unix time of the latest handshake with the WireGuard peer (0: never).')
  m.def(
    'netkit_wireguard_peer_last_handshake_age_seconds',
    'gauge',
    'Seconds since the latest handshake with the WireGuard peer when the state was read (absent: never).',
  )
  m.def('netkit_wireguard_peer_receive_bytes_total', 'counter', 'Bytes received from the WireGuard peer.')
  m.def('netkit_wireguard_peer_transmit_bytes_total', 'counter', 'Bytes sent to the WireGuard peer.')
  m.def('netkit_ipsec_ike_sas', 'gauge', "IKE SAs of the tunnel's IKE connection in each charon state.")
  m.def('netkit_ipsec_child_sas', 'gauge', 'CHILD_SAs of the tunnel in each charon state.')
  m.def('netkit_ipsec_ike_sa_rekey_seconds', 'gauge', 'Seconds until the established IKE SA is rekeyed (negative: overdue).')
  m.def('netkit_ipsec_child_sa_rekey_seconds', 'gauge', 'Seconds until the installed CHILD_SA is rekeyed (negative: overdue).')
  m.def('netkit_ipsec_child_sa_expire_seconds', 'gauge', 'Seconds until the installed CHILD_SA expires (its hard lifetime).')
  m.def('netkit_ipsec_receive_bytes_total', 'counter', "Bytes received on the tunnel's CHILD_SAs (they start again from 0 at each rekey).")
  m.def('netkit_ipsec_transmit_bytes_total', 'counter', "Bytes sent on the tunnel's CHILD_SAs (they start again from 0 at each rekey).")
  m.def('netkit_ipsec_receive_packets_total', 'counter', "Packets received on the tunnel's CHILD_SAs (they start again from 0 at each rekey).")
  m.def('netkit_ipsec_transmit_packets_total', 'counter', "Packets sent on the tunnel's CHILD_SAs (they start again from 0 at each rekey).")
  m.def(
    'netkit_doctor_check_status',
    'gauge',
    "The doctor's verdict per check, the worst of its findings: 0 ok, 1 warn, 2 fail (a check that did not apply is absent).",
  )
  m.def('netkit_doctor_finding_status', 'gauge', 'The doctor\'s verdict per check and subject (a tunnel, an interface; "" for the host): 0 ok, 1 warn, 2 fail.')

  for (const scope of snap.scopes) {
    const netns = scope.netns ?? ''
    for (const {def, status, error} of scope.tunnels) {
      const base = {netns, tunnel: def.name, type: def.type}
      m.add('netkit_tunnel_up', base, status.state === 'up' ? 1 : 0)
      for (const s of TUNNEL_STATES) m.add('netkit_tunnel_state', {...base, state: s}, status.state === s ? 1 : 0)
      if (!error) m.add('netkit_tunnel_datapath_info', {...base, datapath: status.datapath}, 1)
      if (def.type === 'wireguard' && status.state !== 'down') wireguardMetrics(m, snap.now, {netns, tunnel: def.name}, status)
      if (def.type === 'ipsec') ipsecMetrics(m, {netns, tunnel: def.name}, status)
    }
    if (scope.findings) doctorMetrics(m, netns, scope.findings)
  }
  return m.list
}

function wireguardMetrics(m: Families, now: number, base: Record<string, string>, status: TunnelStatus): void {
  const ifname = String((status.details as {ifname?: string}).ifname ?? '')
  for (const p of wireguardPeers(status)) {
    const labels = {...base, interface: ifname, peer: p.publicKey, ...(p.name ? {peer_name: p.name} : {})}
    const ts = p.latestHandshake ? Math.floor(Date.parse(p.latestHandshake) / 1000) : 0
    m.add('netkit_wireguard_peer_last_handshake_timestamp_seconds', labels, ts)
    if (ts > 0) m.add('netkit_wireguard_peer_last_handshake_age_seconds', labels, Math.max(0, now - ts))
    m.add('netkit_wireguard_peer_receive_bytes_total', labels, p.rxBytes ?? 0)
    m.add('netkit_wireguard_peer_transmit_bytes_total', labels, p.txBytes ?? 0)
  }
}

function ipsecMetrics(m: Families, base: Record<string, string>, status: TunnelStatus): void {
  const sas = ((status.details as {ikeSas?: IkeSa[]}).ikeSas ?? []) as IkeSa[]
  const children: ChildSa[] = sas.flatMap((s) => s.children ?? [])
  const count = (states: string[], seen: string[]) => {
    const out = new Map(states.map((s) => [s, 0]))
    for (const s of seen) out.set(s, (out.get(s) ?? 0) + 1)
    return out
  }
  for (const [state, n] of count(
    IKE_STATES,
    sas.map((s) => s.state),
  ))
    m.add('netkit_ipsec_ike_sas', {...base, state}, n)
  for (const [state, n] of count(
    CHILD_STATES,
    children.map((c) => c.state),
  ))
    m.add('netkit_ipsec_child_sas', {...base, state}, n)
  // The SAs that carry the tunnel, chosen as its status chooses them.
  const ike = sas.find((s) => s.state === 'ESTABLISHED' && s.children.some((c) => c.state === 'INSTALLED')) ?? sas.find((s) => s.state === 'ESTABLISHED')
  const child = ike?.children.find((c) => c.state === 'INSTALLED')
  if (ike?.rekeyTime !== undefined) m.add('netkit_ipsec_ike_sa_rekey_seconds', base, ike.rekeyTime)
  if (child?.rekeyTime !== undefined) m.add('netkit_ipsec_child_sa_rekey_seconds', base, child.rekeyTime)
  if (child?.lifeTime !== undefined) m.add('netkit_ipsec_child_sa_expire_seconds', base, child.lifeTime)
  if (status.state === 'down' && children.length === 0) return
  const sum = (f: (c: ChildSa) => number) => children.reduce((a, c) => a + f(c), 0)
  m.add(
    'netkit_ipsec_receive_bytes_total',
    base,
    sum((c) => c.bytesIn),
  )
  m.add(
    'netkit_ipsec_transmit_bytes_total',
    base,
    sum((c) => c.bytesOut),
  )
  m.add(
    'netkit_ipsec_receive_packets_total',
    base,
    sum((c) => c.packetsIn),
  )
  m.add(
    'netkit_ipsec_transmit_packets_total',
    base,
    sum((c) => c.packetsOut),
  )
}

function doctorMetrics(m: Families, netns: string, findings: Finding[]): void {
  const worst = new Map<string, number>()
  const bySubject = new Map<string, {check: string; subject: string; value: number}>()
  for (const f of findings) {
    const v = VERDICT[f.result]
    if (v === undefined) continue
    worst.set(f.id, Math.max(worst.get(f.id) ?? 0, v))
    const subject = f.subject ?? ''
    const key = `${f.id}\0${subject}`
    const had = bySubject.get(key)
    bySubject.set(key, {check: f.id, subject, value: Math.max(had?.value ?? 0, v)})
  }
  for (const [check, v] of worst) m.add('netkit_doctor_check_status', {netns, check}, v)
  for (const s of bySubject.values()) m.add('netkit_doctor_finding_status', {netns, check: s.check, subject: s.subject}, s.value)
}
