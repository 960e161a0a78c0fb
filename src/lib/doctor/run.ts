/**
 * Runs the checks (in parallel; each state is read once and shared) and
 * sums up. `--fix` applies the remedies of failed and warned findings, then
 * the checks run again.
 */
import {join} from 'node:path'

import {UsageError} from '../errors.js'
import {stateDir} from '../ownership.js'
import type {Runner} from '../runner.js'
import {tunnelHostSettings} from '../tunnel/host.js'
import {listDefs, scopeDir} from '../tunnel/store.js'
import {LINKS_WITH_ADDRESSES} from '../iproute2/json.js'
import {routeGet, routesTo} from '../iproute2/route-get.js'
import {tunnelEnds} from '../tunnel/wireguard/peers.js'
import {firstHost} from '../validate.js'
import {CHECKS} from './registry.js'
import type {DoctorContext, Finding} from './types.js'
import {inNamespace} from '../wording.js'
import {readSysctls} from '../sysctl.js'
import {hostSysctls} from './checks/host.js'

export interface DoctorOptions {
  runner: Runner
  configDir: string
  tunnel?: string
  check?: string
  probe?: boolean
  /** Keep the tools' versions between runs in this file (versionCachePath()); none: ask every tool each run. */
  versionCache?: string
}

/** Where netkit keeps the versions of the tools it wraps (doctor/tool-versions.ts): the state directory (a tmpfs: gone at reboot). */
export const versionCachePath = () => join(stateDir(), 'tool-versions.json')

export interface DoctorReport {
  findings: Finding[]
  summary: {ok: number; warn: number; fail: number; skip: number}
}

function memo<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined
  return () => (p ??= fn())
}

export function makeContext(opts: DoctorOptions): DoctorContext {
  const netns = opts.runner.netns
  const allTunnels = listDefs(scopeDir(opts.configDir, netns))
  let tunnels = allTunnels
  if (opts.tunnel) {
    tunnels = tunnels.filter((t) => t.name === opts.tunnel)
    if (tunnels.length === 0) throw new UsageError(`there is no tunnel ${opts.tunnel}${inNamespace(netns)}`, 'see "netkit tunnel list"', 'E_NO_TUNNEL')
  }
  // Every destination the checks route: the peers and the first host of each remote subnet.
  const routes = memo(async () =>
    routesTo(opts.runner, [...new Set(tunnels.flatMap((t) => [...tunnelEnds(t).map((e) => e.remote), ...t.remoteSubnets.map((s) => firstHost(s))]))]),
  )
  const hostSettings = memo(async () =>
    Promise.all(tunnels.map(async (t) => ({tunnel: t.name, settings: await tunnelHostSettings(t, opts.runner, scopeDir(opts.configDir, netns))}))),
  )
  return {
    runner: opts.runner,
    routeTo: async (dst) => {
      const known = await routes()
      if (known.has(dst)) return known.get(dst)
      return routeGet(opts.runner, dst)
    },
    configDir: opts.configDir,
    tunnels,
    allTunnels,
    probe: Boolean(opts.probe),
    // Only the keys the host checks look at, in one read.
    sysctls: memo(async () => readSysctls(opts.runner, hostSysctls(tunnels, await hostSettings()))),
    hostSettings,
    links: memo(async () => JSON.parse(await opts.runner.read({tool: 'ip', args: LINKS_WITH_ADDRESSES}))),
    versionCache: opts.versionCache,
  }
}

export async function runDoctor(opts: DoctorOptions): Promise<DoctorReport> {
  if (opts.check && !CHECKS.some((c) => c.id === opts.check)) {
    throw new UsageError(`there is no check ${opts.check}`, `the checks are: ${CHECKS.map((c) => c.id).join(', ')}`)
  }
  // Each state (a daemon's, the kernel's) is read once per run and shared by every check; --fix runs the doctor again, with a fresh read.
  const ctx = makeContext({...opts, runner: opts.runner.withReadCache()})
  const checks = CHECKS.filter((c) => !opts.check || c.id === opts.check)
  const results = await Promise.all(
    checks.map(async (c) => {
      try {
        return await c.run(ctx)
      } catch (error) {
        return [
          {
            id: c.id,
            title: c.title,
            group: c.group,
            result: 'fail' as const,
            reason: `the check itself failed: ${error instanceof Error ? error.message : String(error)}`,
            fix: 'run with --verbose',
            evidence: {},
          },
        ]
      }
    }),
  )
  const findings = results.flat()
  const summary = {ok: 0, warn: 0, fail: 0, skip: 0}
  for (const f of findings) summary[f.result]++
  return {findings, summary}
}

/** The remedies a --fix would apply (failures and warnings that have one), each command once. */
export function remedies(report: DoctorReport): Finding[] {
  const seen = new Set<string>()
  return report.findings.filter((f) => {
    if ((f.result !== 'fail' && f.result !== 'warn') || !f.remedy || seen.has(f.remedy.describe)) return false
    seen.add(f.remedy.describe)
    return true
  })
}
