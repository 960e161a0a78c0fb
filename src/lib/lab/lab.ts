/**
 * `netkit lab`: the built-in demo. Builds the world (world.ts), joins every
 * pair of hosts with netkit's own tunnels, proves that traffic flows and that
 * nothing crosses the underlay in clear, runs the doctor on each host, and
 * says what it built. `lab down` removes all of it.
 */
import {readFileSync, rmSync} from 'node:fs'
import {join} from 'node:path'

import {runDoctor} from '../doctor/run.js'
import {UsageError} from '../errors.js'
import {writeFileAtomic} from '../files.js'
import type {Runner} from '../runner.js'
import {defineTunnel, type TunnelInput} from '../tunnel/define.js'
import {addTunnel, delTunnel} from '../tunnel/service.js'
import {listDefs, scopeDir} from '../tunnel/store.js'
import type {TunnelType} from '../tunnel/types.js'
import {buildWorld, destroyWorld, labHost, type LabHost, MAX_HOSTS} from './world.js'

export const LAB_TYPES = ['vxlan'] as const
export type LabType = (typeof LAB_TYPES)[number]

export interface LabOptions {
  runner: Runner
  configDir: string
  hosts: number
  type: LabType
  timeoutMs: number
  log: (line: string) => void
}

export interface PairResult {
  from: string
  to: string
  ping: boolean
  seconds: number
}

export interface LabReport {
  hosts: LabHost[]
  type: LabType
  tunnels: number
  pairs: PairResult[]
  capture: {host: string; packets: number; clear: boolean; sample: string[]}
  doctor: {host: string; fail: number; warn: number}[]
  seconds: number
}

function recordPath(configDir: string): string {
  return join(configDir, 'lab.json')
}

/** The inputs for the tunnel from host a to host b. */
function tunnelInput(type: TunnelType, a: LabHost, b: LabHost): TunnelInput {
  const base = {name: `h${b.index}`, type, netns: a.host, local: a.underlay, remote: b.underlay, localSubnet: [a.subnet], remoteSubnet: [b.subnet]}
  if (type === 'vxlan') {
    // One VXLAN segment per pair: VNI and a /30 from the pair's indices.
    const lo = Math.min(a.index, b.index)
    const hi = Math.max(a.index, b.index)
    const vni = lo * 100 + hi
    const mine = a.index === lo ? 1 : 2
    // The pair's /30: 100.64.<lo>.<hi*4>.
    return {...base, vni, address: `100.64.${lo}.${hi * 4 + mine}/30`, peerAddress: `100.64.${lo}.${hi * 4 + 3 - mine}`}
  }
  throw new UsageError(`the lab cannot use --type ${type} yet`, `use --type ${LAB_TYPES.join(' or ')}`)
}

async function pingUntil(runner: Runner, ns: string, target: string, deadline: number): Promise<boolean> {
  for (let i = 0; i < 60 && Date.now() < deadline; i++) {
    const r = await runner.probe({tool: 'ping', args: ['-c', '1', '-W', '1', target], netns: ns})
    if (r.exitCode === 0) return true
    await new Promise((res) => setTimeout(res, 250))
  }
  return false
}

export async function labUp(opts: LabOptions): Promise<LabReport> {
  const t0 = Date.now()
  if (opts.hosts < 2 || opts.hosts > MAX_HOSTS) throw new UsageError(`--hosts ${opts.hosts} is out of range`, `give 2 to ${MAX_HOSTS}`)
  const {runner, log} = opts
  log(`building ${opts.hosts} hosts on an underlay, each with a container`)
  let hosts: LabHost[]
  try {
    hosts = await buildWorld(runner, opts.hosts)
  } catch (error) {
    await destroyWorld(runner).catch(() => {})
    throw error
  }
  if (!runner.dryRun) writeFileAtomic(recordPath(opts.configDir), JSON.stringify({hosts: opts.hosts, type: opts.type}) + '\n')

  let tunnels = 0
  for (const a of hosts) {
    for (const b of hosts) {
      if (a === b) continue
      const {def, psk} = await defineTunnel(tunnelInput(opts.type, a, b), runner.in(a.host))
      await addTunnel(def, {runner, configDir: opts.configDir, timeoutMs: opts.timeoutMs, progress: 'none', psk})
      tunnels++
    }
  }
  log(`added ${tunnels} ${opts.type} tunnels (a full mesh)`)

  const pairs: PairResult[] = []
  for (const a of hosts) {
    for (const b of hosts) {
      if (a === b) continue
      const start = Date.now()
      const ping = runner.dryRun || (await pingUntil(runner, a.container, b.containerIp, Date.now() + opts.timeoutMs))
      pairs.push({from: a.container, to: b.container, ping, seconds: (Date.now() - start) / 1000})
    }
  }
  const capture = runner.dryRun ? {host: hosts[0].host, packets: 0, clear: false, sample: []} : await captureProof(runner, hosts[0], hosts[1])
  const doctor = []
  for (const h of hosts) {
    const r = await runDoctor({runner: runner.in(h.host), configDir: opts.configDir})
    doctor.push({host: h.host, fail: r.summary.fail, warn: r.summary.warn})
  }
  return {hosts, type: opts.type, tunnels, pairs, capture, doctor, seconds: (Date.now() - t0) / 1000}
}

/** Pings container a -> b while capturing on a's underlay; says whether any inner address crossed in clear. */
async function captureProof(runner: Runner, a: LabHost, b: LabHost): Promise<LabReport['capture']> {
  const cap = runner.probe({tool: 'timeout', args: ['6', 'tcpdump', '-lni', 'wan0', '-c', '8', 'not', 'arp'], netns: a.host})
  await new Promise((res) => setTimeout(res, 800))
  await runner.probe({tool: 'ping', args: ['-c', '4', '-i', '0.2', '-W', '1', b.containerIp], netns: a.container})
  const r = await cap
  const lines = r.stdout.split('\n').filter((l) => l.trim())
  const inner = [a.subnet, b.subnet].map((s) => s.split('.').slice(0, 2).join('.') + '.')
  const clear = lines.some((l) => inner.some((p) => l.includes(` ${p}`)))
  return {host: a.host, packets: lines.length, clear, sample: lines.slice(0, 4)}
}

export async function labDown(runner: Runner, configDir: string): Promise<string[]> {
  let count = MAX_HOSTS
  try {
    count = (JSON.parse(readFileSync(recordPath(configDir), 'utf8')) as {hosts: number}).hosts
  } catch {
    // no record: remove whatever lab namespaces exist
  }
  for (let i = 1; i <= count; i++) {
    const h = labHost(i)
    for (const def of listDefs(scopeDir(configDir, h.host))) {
      await delTunnel(def, {runner, configDir}).catch(() => {})
    }
  }
  const removed = await destroyWorld(runner, Math.max(count, MAX_HOSTS))
  if (!runner.dryRun) rmSync(recordPath(configDir), {force: true})
  return removed
}
