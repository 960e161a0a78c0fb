/**
 * `netkit lab`: the built-in demo. Builds the world (world.ts), joins every
 * pair of hosts with netkit's own tunnels, proves that traffic flows and that
 * nothing crosses the underlay in clear, runs the doctor on each host, and
 * says what it built. `lab down` removes all of it.
 */
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {runDoctor, versionCachePath} from '../doctor/run.js'
import {NetkitError, UsageError} from '../errors.js'
import {netnsExists} from '../iproute2/netns.js'
import {Interruption} from '../plan.js'
import type {Runner} from '../runner.js'
import {defineTunnel, type TunnelInput} from '../tunnel/define.js'
import {addTunnel, delTunnel, tunnelPublicKey} from '../tunnel/service.js'
import {listDefs, scopeDir} from '../tunnel/store.js'
import {buildWorld, destroyWorld, labHost, type LabHost, labNamespaces, MAX_HOSTS} from './world.js'

export const LAB_TYPES = ['ipsec', 'wireguard', 'vxlan'] as const
export type LabType = (typeof LAB_TYPES)[number]
/** The default: IPsec carries the container subnets, WireGuard joins the hosts on an overlay. */
export const DEFAULT_LAB_TYPES: LabType[] = ['ipsec', 'wireguard']

export interface LabOptions {
  runner: Runner
  configDir: string
  hosts: number
  /** The first type carries the container subnets; the others join the hosts on an overlay of their own. */
  types: LabType[]
  timeoutMs: number
  log: (line: string) => void
}

export interface PairResult {
  type: LabType
  from: string
  to: string
  target: string
  ping: boolean
  seconds: number
}

export interface CaptureResult {
  type: LabType
  host: string
  packets: number
  clear: boolean
  sample: string[]
}

export interface LabReport {
  hosts: LabHost[]
  types: LabType[]
  tunnels: number
  pairs: PairResult[]
  captures: CaptureResult[]
  doctor: {host: string; fail: number; warn: number}[]
  seconds: number
  /** The same lab was up already: nothing was built, it was proven again. */
  alreadyUp: boolean
  /** Dry run: the tunnel commands the lab would run. */
  commands?: string[]
}

/** What lab.json records of a lab that is up. */
interface LabRecord {
  hosts: number
  types: LabType[]
}

function readRecord(configDir: string): LabRecord | undefined {
  try {
    return JSON.parse(readFileSync(recordPath(configDir), 'utf8')) as LabRecord
  } catch {
    return undefined
  }
}

/**
 * A lab that is up already: the same one (same hosts and types) is proven
 * again and nothing is built; a different one, or lab namespaces without a
 * record, is an error that changes nothing.
 */
function existingLab(opts: LabOptions): LabRecord | undefined {
  const present = labNamespaces(MAX_HOSTS).filter((ns) => netnsExists(ns))
  if (present.length === 0) return undefined
  const rec = readRecord(opts.configDir)
  if (rec && rec.hosts === opts.hosts && rec.types.join(',') === opts.types.join(',')) return rec
  const what = rec
    ? `with ${rec.hosts} hosts and ${rec.types.join(',')} tunnels`
    : `(namespaces ${present.slice(0, 3).join(', ')}${present.length > 3 ? ', ...' : ''}, with no record of how it was built)`
  throw new NetkitError('E_EXISTS', `a lab is up already ${what}`, {
    fix: rec
      ? `run "netkit lab down" first, or "netkit lab up --hosts ${rec.hosts} --type ${rec.types.join(',')}" to prove it again`
      : 'run "netkit lab down" first',
  })
}

function recordPath(configDir: string): string {
  return join(configDir, 'lab.json')
}

/** A pair's own /30 from its indices: 100.<base>.<lo>.<hi*4 + 1|2>. */
function pairAddress(base: number, a: LabHost, b: LabHost): {address: string; peer: string} {
  const lo = Math.min(a.index, b.index)
  const hi = Math.max(a.index, b.index)
  const mine = a.index === lo ? 1 : 2
  return {address: `100.${base}.${lo}.${hi * 4 + mine}/30`, peer: `100.${base}.${lo}.${hi * 4 + 3 - mine}`}
}

const NAME_PREFIX: Record<LabType, string> = {ipsec: 'ip', wireguard: 'wg', vxlan: 'vx'}
const OVERLAY_BASE: Record<LabType, number> = {ipsec: 64, wireguard: 65, vxlan: 66}

/**
 * WireGuard in the lab: one interface per host ("mesh", device wg-mesh), with
 * every other host as a peer, as a fleet runs it: one key pair, one listen
 * port and one wireguard-go per host. Host N is 100.65.0.N on it.
 */
export const LAB_WG_TUNNEL = 'mesh'
const WG_PORT = 51820
const wgAddress = (h: LabHost) => `100.${OVERLAY_BASE.wireguard}.0.${h.index}`

/** Host a's WireGuard interface with every other host as a peer (`keyOf`: a host's public key). */
function meshInput(carriesSubnets: boolean, a: LabHost, hosts: LabHost[], keyOf: (h: LabHost) => string): TunnelInput {
  const peers = Object.fromEntries(
    hosts
      .filter((b) => b !== a)
      .map((b) => [
        `h${b.index}`,
        {
          publicKey: keyOf(b),
          endpoint: `${b.underlay}:${WG_PORT}`,
          allowedIps: [`${wgAddress(b)}/32`, ...(carriesSubnets ? [b.subnet] : [])],
        },
      ]),
  )
  return {
    name: LAB_WG_TUNNEL,
    type: 'wireguard',
    netns: a.host,
    address: `${wgAddress(a)}/24`,
    listenPort: WG_PORT,
    ...(carriesSubnets ? {localSubnet: [a.subnet]} : {}),
    peers,
  }
}

/** How many tunnels the lab has: a pair each for IPsec and VXLAN, one interface per host for WireGuard. */
const tunnelCount = (types: LabType[], hosts: number) => types.reduce((n, t) => n + (t === 'wireguard' ? hosts : hosts * (hosts - 1)), 0)

/** The inputs for the tunnel of one type from host a to host b. */
function tunnelInput(type: LabType, carriesSubnets: boolean, a: LabHost, b: LabHost): TunnelInput {
  const subnets = carriesSubnets ? {localSubnet: [a.subnet], remoteSubnet: [b.subnet]} : {}
  const base = {name: `${NAME_PREFIX[type]}-h${b.index}`, type, netns: a.host, local: a.underlay, remote: b.underlay, ...subnets}
  const overlay = pairAddress(OVERLAY_BASE[type], a, b)
  if (type === 'vxlan') {
    const lo = Math.min(a.index, b.index)
    const hi = Math.max(a.index, b.index)
    return {...base, vni: lo * 100 + hi, address: overlay.address, peerAddress: overlay.peer}
  }
  if (type === 'wireguard') throw new Error('internal error: WireGuard in the lab is one interface per host (meshInput)')
  if (!carriesSubnets) throw new UsageError('in the lab, IPsec carries the container subnets: list it first', 'e.g. --type ipsec,wireguard')
  return base
}

/** What proves a tunnel of this type carries traffic: a ping from the container (subnets) or the host (overlay). */
function target(type: LabType, carriesSubnets: boolean, a: LabHost, b: LabHost): {from: string; to: string} {
  if (carriesSubnets) return {from: a.container, to: b.containerIp}
  return {from: a.host, to: type === 'wireguard' ? wgAddress(b) : pairAddress(OVERLAY_BASE[type], b, a).address.split('/')[0]}
}

async function pingUntil(runner: Runner, ns: string, target: string, deadline: number): Promise<boolean> {
  for (let i = 0; i < 60 && Date.now() < deadline; i++) {
    const r = await runner.probe({tool: 'ping', args: ['-c', '1', '-W', '1', target], netns: ns})
    if (r.exitCode === 0) return true
    await new Promise((res) => setTimeout(res, 250))
  }
  return false
}

export function parseLabTypes(value: string): LabType[] {
  const types = value
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
  for (const t of types) {
    if (!(LAB_TYPES as readonly string[]).includes(t))
      throw new UsageError(`--type ${t} is not a tunnel type`, `use one or more of ${LAB_TYPES.join(', ')}, comma-separated`)
  }
  if (types.length === 0 || new Set(types).size !== types.length)
    throw new UsageError(`--type "${value}" is not a list of distinct types`, 'e.g. --type ipsec,wireguard')
  return types as LabType[]
}

/** A dry run: the world's commands, then the tunnel commands that would follow (the hosts do not exist, so the tunnels cannot be planned against them). */
async function dryRun(opts: LabOptions, t0: number): Promise<LabReport> {
  const hosts = await buildWorld(opts.runner, opts.hosts)
  let n = 0
  const commands: string[] = []
  for (const [ti, type] of opts.types.entries()) {
    if (type === 'wireguard') {
      for (const a of hosts) {
        commands.push(...meshCommands(ti === 0, a, hosts))
        n++
      }
      continue
    }
    for (const a of hosts) {
      for (const b of hosts) {
        if (a === b) continue
        commands.push(pairCommand(type, ti === 0, a, b))
        n++
      }
    }
  }
  return {hosts, types: opts.types, tunnels: n, pairs: [], captures: [], doctor: [], seconds: (Date.now() - t0) / 1000, alreadyUp: false, commands}
}

/** The commands that make host a's WireGuard interface and add the other hosts as its peers (their keys as "tunnel pubkey" calls). */
function meshCommands(carries: boolean, a: LabHost, hosts: LabHost[]): string[] {
  const i = meshInput(carries, a, hosts, (b) => `$(netkit tunnel pubkey ${LAB_WG_TUNNEL} --netns ${b.host})`)
  const commands = [
    [
      'netkit',
      'tunnel',
      'add',
      LAB_WG_TUNNEL,
      '--type',
      'wireguard',
      '--netns',
      a.host,
      '--address',
      i.address!,
      '--listen-port',
      String(WG_PORT),
      ...(i.localSubnet ?? []).flatMap((x) => ['--local-subnet', x]),
    ].join(' '),
  ]
  for (const [peer, p] of Object.entries(i.peers!)) {
    commands.push(
      [
        'netkit',
        'tunnel',
        'peer',
        'add',
        LAB_WG_TUNNEL,
        peer,
        '--netns',
        a.host,
        '--public-key',
        `"${p.publicKey}"`,
        '--allowed-ips',
        p.allowedIps!.join(','),
        '--endpoint',
        p.endpoint!,
      ].join(' '),
    )
  }
  return commands
}

/** The "tunnel add" command for the tunnel of this type from host a to host b (the lower host's without waiting). */
function pairCommand(type: LabType, carries: boolean, a: LabHost, b: LabHost): string {
  const i = tunnelInput(type, carries, a, b)
  const args = [
    'netkit',
    'tunnel',
    'add',
    i.name,
    '--type',
    type,
    '--netns',
    a.host,
    '--local',
    i.local!,
    '--remote',
    i.remote,
    ...(i.localSubnet ?? []).flatMap((x) => ['--local-subnet', x]),
    ...(i.remoteSubnet ?? []).flatMap((x) => ['--remote-subnet', x]),
  ]
  if (i.address) args.push('--address', i.address)
  if (i.peerAddress) args.push('--peer-address', i.peerAddress)
  if (i.vni) args.push('--vni', String(i.vni))
  if (a.index < b.index) args.push('--no-wait')
  return args.join(' ')
}

/** Builds the lab (hosts, then each type's tunnels) and proves it; a lab that is up already is only proven again. */
export async function labUp(opts: LabOptions): Promise<LabReport> {
  const t0 = Date.now()
  checkLabOptions(opts)
  const {runner, log} = opts
  if (existingLab(opts)) return proveExisting(opts, t0)
  log(`building ${opts.hosts} hosts on an underlay, each with a container`)
  if (runner.dryRun) return dryRun(opts, t0)
  // Until every tunnel is added, a failure or a signal (Ctrl-C, a kill, a hangup) removes all of the lab again.
  const watch = new Interruption()
  let hosts: LabHost[]
  let tunnels = 0
  try {
    hosts = await buildWorld(runner, opts.hosts)
    watch.check()
    runner.writeFile(recordPath(opts.configDir), JSON.stringify({hosts: opts.hosts, types: opts.types}) + '\n')
    for (const [ti, type] of opts.types.entries()) {
      tunnels += type === 'wireguard' ? await addMesh(opts, hosts, ti === 0, watch) : await addPairs(opts, hosts, type, ti === 0, watch)
    }
  } catch (error) {
    log('removing the lab again (it was not finished)')
    await labDown(runner, opts.configDir).catch(() => {})
    throw error
  } finally {
    watch.dispose()
  }

  return {...(await prove(opts, hosts)), hosts, types: opts.types, tunnels, seconds: (Date.now() - t0) / 1000, alreadyUp: false}
}

/** --hosts in range, and the types in an order the lab can build (IPsec first). */
function checkLabOptions(opts: LabOptions): void {
  if (opts.hosts < 2 || opts.hosts > MAX_HOSTS) throw new UsageError(`--hosts ${opts.hosts} is out of range`, `give 2 to ${MAX_HOSTS}`)
  opts.types.forEach((t, i) => (t === 'wireguard' ? undefined : tunnelInput(t, i === 0, labHost(1), labHost(2))))
}

/** The lab is up already: nothing to build, it is proven again (in a dry run, nothing is). */
async function proveExisting(opts: LabOptions, t0: number): Promise<LabReport> {
  opts.log(`the lab is up already (${opts.hosts} hosts, ${opts.types.join(', ')}): nothing to build; proving it again`)
  const hosts = Array.from({length: opts.hosts}, (_, i) => labHost(i + 1))
  if (opts.runner.dryRun) return {hosts, types: opts.types, tunnels: 0, pairs: [], captures: [], doctor: [], seconds: 0, alreadyUp: true, commands: []}
  return {
    ...(await prove(opts, hosts)),
    hosts,
    types: opts.types,
    tunnels: tunnelCount(opts.types, hosts.length),
    seconds: (Date.now() - t0) / 1000,
    alreadyUp: true,
  }
}

/** WireGuard: one interface per host, every other host a peer: the keys first (each host makes its own), then each host's interface. */
async function addMesh(opts: LabOptions, hosts: LabHost[], carries: boolean, watch: Interruption): Promise<number> {
  const {runner} = opts
  let tunnels = 0
  const keys = new Map(hosts.map((h) => [h, tunnelPublicKey(runner, opts.configDir, LAB_WG_TUNNEL, h.host).publicKey]))
  for (const a of hosts) {
    const {def} = await defineTunnel(
      meshInput(carries, a, hosts, (b) => keys.get(b)!),
      runner.in(a.host),
    )
    await addTunnel(def, {runner, configDir: opts.configDir, timeoutMs: opts.timeoutMs, progress: 'none', wait: false})
    tunnels += 1
    watch.check()
  }
  opts.log(
    `added ${hosts.length} WireGuard interfaces, one per host with the ${hosts.length - 1} others as peers (a full mesh${carries ? ', carrying the container subnets' : ', an overlay between the hosts'})`,
  )
  return tunnels
}

/** IPsec or VXLAN: a tunnel each way for each pair, the lower host first without waiting, the higher one waiting until it is proven up. */
async function addPairs(opts: LabOptions, hosts: LabHost[], type: LabType, carries: boolean, watch: Interruption): Promise<number> {
  const {runner} = opts
  let tunnels = 0
  for (const a of hosts) {
    for (const b of hosts) {
      if (a.index >= b.index) continue
      const first = await defineTunnel(tunnelInput(type, carries, a, b), runner.in(a.host))
      await addTunnel(first.def, {runner, configDir: opts.configDir, timeoutMs: opts.timeoutMs, progress: 'none', psk: first.psk, wait: false})
      const second = await defineTunnel(tunnelInput(type, carries, b, a), runner.in(b.host))
      await addTunnel(second.def, {runner, configDir: opts.configDir, timeoutMs: opts.timeoutMs, progress: 'none', psk: first.psk, wait: true})
      tunnels += 2
      watch.check()
    }
  }
  opts.log(
    `added ${hosts.length * (hosts.length - 1)} ${type} tunnels (a full mesh${carries ? ', carrying the container subnets' : ', an overlay between the hosts'})`,
  )
  return tunnels
}

/** Every pair pings through each tunnel type; a capture on the underlay shows what crosses it; the doctor on each host. */
async function prove(opts: LabOptions, hosts: LabHost[]): Promise<Pick<LabReport, 'pairs' | 'captures' | 'doctor'>> {
  const {runner} = opts
  const pairs: PairResult[] = []
  for (const [ti, type] of opts.types.entries()) {
    for (const a of hosts) {
      for (const b of hosts) {
        if (a === b) continue
        const t = target(type, ti === 0, a, b)
        const start = Date.now()
        const ping = await pingUntil(runner, t.from, t.to, Date.now() + opts.timeoutMs)
        pairs.push({type, from: t.from, to: t.to, target: t.to, ping, seconds: (Date.now() - start) / 1000})
      }
    }
  }
  const captures: CaptureResult[] = []
  for (const [ti, type] of opts.types.entries()) captures.push(await captureProof(runner, type, ti === 0, hosts[0], hosts[1]))
  const doctor = []
  for (const h of hosts) {
    const r = await runDoctor({runner: runner.in(h.host), configDir: opts.configDir, versionCache: runner.dryRun ? undefined : versionCachePath()})
    doctor.push({host: h.host, fail: r.summary.fail, warn: r.summary.warn})
  }
  return {pairs, captures, doctor}
}

/** Pings a -> b through one tunnel type while capturing on a's underlay; says whether any inner address crossed in clear. */
async function captureProof(runner: Runner, type: LabType, carries: boolean, a: LabHost, b: LabHost): Promise<CaptureResult> {
  const t = target(type, carries, a, b)
  const src = carries ? a.containerIp : type === 'wireguard' ? wgAddress(a) : pairAddress(OVERLAY_BASE[type], a, b).address.split('/')[0]
  // Not the noise around the data: the underlay is IPv4, so no ARP and no IPv6 (neighbour discovery, MLD
  // reports behind a hop-by-hop header), and no IKE (port 500, and 4500 with the zero non-ESP marker).
  const filter = 'ip and not udp port 500 and not (udp port 4500 and udp[8:4] = 0)'
  const cap = runner.probe({tool: 'timeout', args: ['6', 'tcpdump', '-lnni', 'wan0', '-c', '8', filter], netns: a.host})
  await new Promise((res) => setTimeout(res, 800))
  await runner.probe({tool: 'ping', args: ['-c', '4', '-i', '0.2', '-W', '1', t.to], netns: t.from})
  const r = await cap
  const lines = r.stdout.split('\n').filter((l) => l.trim())
  const inner = [src, t.to]
  const clear = lines.some((l) => inner.some((p) => new RegExp(`\\b${p.replaceAll('.', '\\.')}\\b`).test(l)))
  return {type, host: a.host, packets: lines.length, clear, sample: lines.slice(0, 4)}
}

export async function labDown(runner: Runner, configDir: string): Promise<string[]> {
  // Without a record, whatever lab namespaces exist.
  const count = readRecord(configDir)?.hosts ?? MAX_HOSTS
  for (let i = 1; i <= count; i++) {
    const h = labHost(i)
    for (const def of listDefs(scopeDir(configDir, h.host))) {
      await delTunnel(def, {runner, configDir}).catch(() => {})
    }
  }
  const removed = await destroyWorld(runner, Math.max(count, MAX_HOSTS))
  runner.removeFiles([recordPath(configDir)])
  return removed
}
