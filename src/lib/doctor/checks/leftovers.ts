/**
 * Leftovers: what netkit made that no tunnel definition accounts for (after a
 * crash, a kill or a hand edit): daemons it started and lost track of, tunnel
 * links and routes, its files and connections in the host's own strongSwan;
 * and definitions whose objects are gone.
 */
import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {type DaemonRef, forgetDaemon, processIs, recordedDaemons, stopProcess, wireguardGoProcesses} from '../../daemons.js'
import {NETKIT_ALIAS, NETKIT_PROTO} from '../../ownership.js'
import type {Runner} from '../../runner.js'
import {charonPid, charonScope, stopCharon} from '../../tunnel/ipsec/charon.js'
import {ikeName} from '../../tunnel/ipsec/driver.js'
import {
  describeSystem,
  findSystemCharon,
  removeStray,
  shownVici,
  strayTunnels,
  SYSTEM_PREFIX,
  SYSTEM_SWANCTL_DIR,
  type SystemCharon,
  systemConns,
} from '../../tunnel/ipsec/system.js'
import {tidyScope} from '../../tunnel/service.js'
import {scopeDir} from '../../tunnel/store.js'
import {wgConfPath} from '../../tunnel/wireguard/driver.js'
import {type Check, type DoctorContext, type Finding, finding, nsFlag, perRun} from '../types.js'

const TUNNEL_DEV = /^(wg|vx)-/

async function linkNamed(runner: Runner, ifname: string): Promise<{ifname: string; ifalias?: string} | undefined> {
  const r = await runner.probe({tool: 'ip', args: ['-j', 'link', 'show', 'dev', ifname]})
  if (r.exitCode !== 0) return undefined
  return (JSON.parse(r.stdout || '[]') as {ifname: string; ifalias?: string}[])[0]
}

/** Deletes a link netkit made, if it is (still) there. */
async function delOwnLink(runner: Runner, ifname: string): Promise<void> {
  const l = await linkNamed(runner, ifname)
  if (l?.ifalias === NETKIT_ALIAS) await runner.run({tool: 'ip', args: ['link', 'del', ifname], object: `link ${ifname}`})
}

interface Orphan {
  /** What it is, for the finding's subject: "wireguard-go wg-t1", "charon". */
  subject: string
  /** The program (what its command line holds). */
  program: 'wireguard-go' | 'charon'
  pid: number
  /** The device it serves, which goes with it. */
  device?: string
  reason: string
  stop: (runner: Runner) => Promise<void>
}

/** The daemons netkit started here that no tunnel definition accounts for. */
async function orphans(ctx: DoctorContext): Promise<Orphan[]> {
  const netns = ctx.runner.netns ?? undefined
  const knownDevs = new Set(ctx.allTunnels.flatMap((t) => (t.wireguard ? [t.wireguard.ifname] : [])))
  const hasIpsec = ctx.allTunnels.some((t) => t.type === 'ipsec')
  const out: Orphan[] = []
  const recorded = recordedDaemons(netns)
  for (const {ref, pid} of recorded) {
    if (pid === undefined) continue
    if (ref.match === 'wireguard-go') {
      const ifname = ref.name.slice('wireguard-go.'.length)
      if (!knownDevs.has(ifname)) out.push(recordedWireguardGo(ctx, ref, pid, ifname))
    } else if (ref.match === 'charon' && !hasIpsec) {
      out.push(recordedCharon(ctx, ref, pid))
    }
  }
  const tracked = new Set(recorded.map((d) => d.pid).filter((p) => p !== undefined))
  out.push(...(await untrackedWireguardGo(ctx, tracked, knownDevs)))
  return out
}

/** A wireguard-go netkit started (its pid file) for a device no tunnel has: stopping it removes the device and its configuration too. */
function recordedWireguardGo(ctx: DoctorContext, ref: DaemonRef, pid: number, ifname: string): Orphan {
  const netns = ctx.runner.netns ?? undefined
  const dir = scopeDir(ctx.configDir, netns)
  return {
    subject: `wireguard-go ${ifname}`,
    program: 'wireguard-go',
    pid,
    device: ifname,
    reason: `wireguard-go (pid ${pid}) for ${ifname} runs, started by netkit, but no tunnel here has ${ifname} (its definition is gone)`,
    stop: async (runner) => {
      await stopProcess(runner, pid, ref.match, netns, 2000)
      await delOwnLink(runner, ifname)
      runner.removeFiles([wgConfPath(dir, ifname)])
      if (!runner.dryRun) {
        forgetDaemon(ref)
        tidyScope(ctx.configDir, netns)
      }
    },
  }
}

/** A charon netkit started where no IPsec tunnel is defined: stopping it removes what is left of its files. */
function recordedCharon(ctx: DoctorContext, ref: DaemonRef, pid: number): Orphan {
  const netns = ctx.runner.netns ?? undefined
  const dir = scopeDir(ctx.configDir, netns)
  return {
    subject: 'charon',
    program: 'charon',
    pid,
    reason: `charon (pid ${pid}), started by netkit, runs with no IPsec tunnel defined here (their definitions are gone): it may still hold SAs, routes and ipsec0`,
    stop: async (runner) => {
      const scope = charonScope(dir, netns)
      await stopCharon(runner, scope)
      // No IPsec tunnel is defined here: what is left of the charon's files belonged to the lost ones.
      if (existsSync(scope.dir)) runner.removeFiles([scope.dir], {recursive: true})
      if (!runner.dryRun) {
        forgetDaemon(ref)
        tidyScope(ctx.configDir, netns)
      }
    },
  }
}

/** A wireguard-go with a device netkit made, but no pid file (lost before it was written, or removed). */
async function untrackedWireguardGo(ctx: DoctorContext, tracked: Set<number | undefined>, knownDevs: Set<string>): Promise<Orphan[]> {
  const netns = ctx.runner.netns ?? undefined
  const links = await ctx.links()
  const out: Orphan[] = []
  for (const {pid, ifname} of wireguardGoProcesses(netns)) {
    if (tracked.has(pid) || knownDevs.has(ifname)) continue
    if (links.find((l) => l.ifname === ifname)?.ifalias !== NETKIT_ALIAS) continue
    out.push({
      subject: `wireguard-go ${ifname}`,
      program: 'wireguard-go',
      pid,
      device: ifname,
      reason: `wireguard-go (pid ${pid}) runs for ${ifname}, a device netkit made, but no tunnel here has ${ifname} and netkit has no record of the process`,
      stop: async (runner) => {
        await stopProcess(runner, pid, 'wireguard-go', netns, 2000)
        await delOwnLink(runner, ifname)
      },
    })
  }
  return out
}

/** Once per doctor run: both checks below need them. */
const orphansOf = perRun(orphans)

export const daemons: Check = {
  id: 'leftovers.daemons',
  title: 'No daemon netkit started and lost track of',
  group: 'leftovers',
  async run(ctx) {
    const found = await orphansOf(ctx)
    if (found.length === 0)
      return [finding(this, 'ok', {evidence: {daemons: recordedDaemons(ctx.runner.netns ?? undefined).map((d) => ({name: d.ref.name, pid: d.pid ?? null}))}})]
    return found.map((o) =>
      finding(this, 'fail', {
        subject: o.subject,
        reason: o.reason,
        fix: `netkit doctor --fix --check ${this.id}${nsFlag(ctx)}`,
        evidence: {pid: o.pid},
        remedy: {
          describe: `kill -TERM ${o.pid}${o.device ? ` && netkit link del ${o.device}${nsFlag(ctx)}` : ''}`,
          apply: async (runner: Runner) => {
            // Still that process? (pids are reused.)
            if (!processIs(o.pid, o.program, ctx.runner.netns ?? undefined)) return
            await o.stop(runner)
          },
        },
      }),
    )
  },
}

export const leftovers: Check = {
  id: 'leftovers.tunnel-objects',
  title: 'No leftover tunnel objects',
  group: 'leftovers',
  async run(ctx) {
    const links = await ctx.links()
    const known = new Set(ctx.allTunnels.flatMap((t) => [t.wireguard?.ifname, t.vxlan?.ifname].filter(Boolean) as string[]))
    // A device an orphaned daemon serves is leftovers.daemons's: stopping the daemon removes it.
    const served = new Set((await orphansOf(ctx)).map((o) => o.device).filter(Boolean))
    const ns = nsFlag(ctx)
    const out: Finding[] = []
    for (const l of links) {
      if (!TUNNEL_DEV.test(l.ifname) || l.ifalias !== NETKIT_ALIAS || known.has(l.ifname) || served.has(l.ifname)) continue
      out.push(
        finding(this, 'warn', {
          subject: l.ifname,
          reason: `link ${l.ifname} was made by a netkit tunnel that no longer exists`,
          fix: `netkit link del ${l.ifname}${ns}`,
          evidence: {ifname: l.ifname, alias: l.ifalias},
          remedy: {
            describe: `netkit link del ${l.ifname}${ns}`,
            apply: async (runner: Runner) => delOwnLink(runner, l.ifname),
          },
        }),
      )
    }
    // Routes with netkit's protocol through a tunnel device that is not known.
    const r = await ctx.runner.probe({tool: 'ip', args: ['-N', '-j', 'route', 'show', 'table', 'all', 'proto', String(NETKIT_PROTO)]})
    const routes = r.exitCode === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as {dst: string; dev?: string; table?: string | number}[]) : []
    for (const route of routes) {
      if (!route.dev || !TUNNEL_DEV.test(route.dev) || known.has(route.dev) || links.some((l) => l.ifname === route.dev)) continue
      const table = route.table !== undefined && String(route.table) !== '254' && String(route.table) !== 'main' ? ` --table ${route.table}` : ''
      out.push(
        finding(this, 'warn', {
          subject: `route ${route.dst}`,
          reason: `route ${route.dst} points to ${route.dev}, which is gone`,
          fix: `netkit route del ${route.dst}${table}${ns}`,
          evidence: route,
        }),
      )
    }
    for (const t of ctx.tunnels) {
      const dev = t.wireguard?.ifname ?? t.vxlan?.ifname
      if (dev && !links.some((l) => l.ifname === dev)) {
        out.push(
          finding(this, 'warn', {
            subject: t.name,
            reason: `tunnel ${t.name} is defined but its device ${dev} is missing (down, or lost after a reboot)`,
            fix: `netkit tunnel up ${t.name}${ns}`,
            evidence: {tunnel: t.name, dev},
          }),
        )
      }
    }
    if (out.length === 0) out.push(finding(this, 'ok', {evidence: {tunnels: ctx.tunnels.length}}))
    return out
  },
}

/**
 * netkit's part of the host's own strongSwan (tunnel/ipsec/system.ts) that no
 * tunnel defined here accounts for: its files in /etc/swanctl (which that
 * strongSwan loads again at its next reload), and its connections (netkit-*)
 * still loaded in the system charon. --fix unloads them by name and removes
 * the files; the operator's files and connections are never touched.
 */
export const systemStrongswan: Check = {
  id: 'leftovers.system-strongswan',
  title: "No netkit file or connection in the host's strongSwan without its tunnel",
  group: 'leftovers',
  async run(ctx) {
    if (ctx.runner.netns) return [finding(this, 'skip', {reason: "the host's own strongSwan is in the root namespace"})]
    const ipsec = ctx.allTunnels.filter((t) => t.type === 'ipsec')
    const defined = new Set(ipsec.map((t) => t.name))
    const kept = new Set(ipsec.map((t) => ikeName(t)))
    const files = {confD: join(SYSTEM_SWANCTL_DIR, 'conf.d'), swanctlDir: SYSTEM_SWANCTL_DIR}
    const stray = strayTunnels(files, defined)
    // The host's charon, unless netkit runs its own here (then the tunnels are in that one).
    const found = charonPid(charonScope(scopeDir(ctx.configDir, undefined), undefined)) === undefined ? findSystemCharon() : undefined
    const answer = found ? await systemConns(found) : undefined
    // One that does not answer on VICI holds nothing netkit can unload (ipsec.charon says so): only the files go.
    const sys: SystemCharon | undefined = answer ? found : undefined
    const loaded = answer ?? []
    const inFiles = new Set(stray.flatMap((t) => t.ikes))
    const conns = loaded.filter((c) => c.startsWith(SYSTEM_PREFIX) && !kept.has(c) && !inFiles.has(c))
    const fix = `netkit doctor --fix --check ${this.id}`
    const unloads = (ikes: string[]) =>
      sys ? ikes.filter((i) => loaded.includes(i)).map((i) => `${shownVici(sys, kept.has(i) ? 'load-conn' : 'unload-conn', i)}`) : []
    const out: Finding[] = []
    for (const t of stray) {
      const paths = [t.conf, t.key].filter(Boolean) as string[]
      const held = sys ? t.ikes.filter((i) => loaded.includes(i)) : []
      out.push(
        finding(this, 'warn', {
          subject: `netkit-${t.tunnel}`,
          reason: `${paths.join(' and ')} ${paths.length > 1 ? 'are' : 'is'} netkit's, for tunnel ${t.tunnel}, which is no longer defined${held.length ? `, and ${describeSystem(sys!)} still holds its connection ${held.join(', ')}` : ''}: strongSwan loads ${paths.length > 1 ? 'them' : 'it'} again at its next reload`,
          fix,
          evidence: {tunnel: t.tunnel, files: paths, connections: t.ikes, loaded: held},
          remedy: {
            describe: [`rm -f ${paths.join(' ')}`, ...unloads(t.ikes)].join(' && '),
            apply: async (runner: Runner) => removeStray(runner, sys, {tunnels: [t], conns: []}, loaded, kept),
          },
        }),
      )
    }
    for (const c of conns) {
      out.push(
        finding(this, 'warn', {
          subject: c,
          reason: `${describeSystem(sys!)} holds netkit's connection ${c}, which no tunnel defined here uses (its definition and file are gone)`,
          fix,
          evidence: {connection: c, charon: {program: sys!.program, pid: sys!.pid, socket: sys!.socket}},
          remedy: {
            describe: unloads([c]).join(' && '),
            apply: async (runner: Runner) => removeStray(runner, sys, {tunnels: [], conns: [c]}, loaded, kept),
          },
        }),
      )
    }
    if (out.length === 0)
      out.push(
        finding(this, 'ok', {evidence: {charon: sys ? {program: sys.program, pid: sys.pid} : null, loaded: loaded.filter((c) => c.startsWith(SYSTEM_PREFIX))}}),
      )
    return out
  },
}

export const leftoverChecks = [daemons, leftovers, systemStrongswan]
