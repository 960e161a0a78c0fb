/**
 * Daemons netkit starts and supervises (wireguard-go, charon). Each has a pid
 * file under the state directory, so netkit stops only processes it started,
 * and knows whether they still run: a pid counts only while /proc says it is
 * still that program, in that network namespace (pids are reused).
 */
import {existsSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync} from 'node:fs'
import {join} from 'node:path'

import {pruneEmptyDirs, writeFileAtomic} from './files.js'
import {NETNS_DIR} from './iproute2/netns.js'
import {scopeOf, stateDir} from './ownership.js'
import {signalled} from './plan.js'
import type {Invocation, Runner} from './runner.js'

export interface DaemonRef {
  /** The namespace the daemon runs in (undefined: the root namespace). */
  netns?: string
  /** A name unique within the namespace, e.g. "wireguard-go.wg-t1", "charon". */
  name: string
  /** A string the daemon's command line contains (the program's name). */
  match: string
}

function baseOf(ref: DaemonRef): string {
  return join(stateDir(), 'daemons', scopeOf(ref.netns), ref.name)
}

export function daemonLog(ref: DaemonRef): string {
  return `${baseOf(ref)}.log`
}

function pidFile(ref: DaemonRef): string {
  return `${baseOf(ref)}.pid`
}

/**
 * Whether the process is in the namespace NETNS, or without one in netkit's own (where its commands act
 * without --netns): the same as PID 1's on a host, not under "ip netns exec NS netkit ...", where a
 * daemon netkit started there is in NS (compared with PID 1's, it was never found: not listed, and
 * left running by "tunnel del").
 */
function sameNetns(pid: number, netns?: string): boolean {
  try {
    const link = readlinkSync(`/proc/${pid}/ns/net`)
    const inode = Number(/\[(\d+)\]/.exec(link)?.[1])
    const want = netns ? statSync(join(NETNS_DIR, netns)).ino : statSync('/proc/self/ns/net').ino
    return inode === want
  } catch {
    return false
  }
}

/** Whether a pid is (still) a live process whose command line contains `match`, in that network namespace. */
export function processIs(pid: number, match: string, netns?: string): boolean {
  if (!Number.isInteger(pid) || pid <= 1) return false
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
    if (!cmdline.includes(match) || state === 'Z') return false
  } catch {
    return false
  }
  return sameNetns(pid, netns)
}

/** The pid of a running daemon netkit started, or undefined. */
export function daemonPid(ref: DaemonRef): number | undefined {
  let pid: number
  try {
    pid = Number(readFileSync(pidFile(ref), 'utf8').trim())
  } catch {
    return undefined
  }
  return processIs(pid, ref.match, ref.netns) ? pid : undefined
}

/** The program a daemon name stands for ("wireguard-go.wg-t1": wireguard-go; "charon"). */
export function daemonMatch(name: string): string {
  return name.split('.')[0]
}

/** The daemons netkit recorded in a namespace (a pid file each), with the pid when it still runs. */
export function recordedDaemons(netns?: string): {ref: DaemonRef; pid?: number}[] {
  let files: string[] = []
  try {
    files = readdirSync(join(stateDir(), 'daemons', scopeOf(netns))).filter((f) => f.endsWith('.pid'))
  } catch {
    return []
  }
  return files.sort().map((f) => {
    const name = f.slice(0, -4)
    const ref = {netns, name, match: daemonMatch(name)}
    return {ref, pid: daemonPid(ref)}
  })
}

/** Removes a daemon's pid file and log (it is stopped), and the namespace's daemons directory once it is empty. */
export function forgetDaemon(ref: DaemonRef): void {
  rmSync(pidFile(ref), {force: true})
  rmSync(daemonLog(ref), {force: true})
  pruneDaemonDir(ref.netns)
}

/** Removes a namespace's daemons directory (and daemons/ itself) once nothing is left in it. */
export function pruneDaemonDir(netns?: string): void {
  pruneEmptyDirs(join(stateDir(), 'daemons', scopeOf(netns)), stateDir())
}

/**
 * Whether the process just started is still alive (not yet exited), whatever
 * it runs right now: in its first milliseconds it is still `ip netns exec` or
 * `unshare` on its way to exec the daemon, so daemonPid() does not know it yet.
 */
export function daemonAlive(ref: DaemonRef): boolean {
  try {
    const pid = Number(readFileSync(pidFile(ref), 'utf8').trim())
    const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
    return state !== undefined && state !== 'Z' && state !== 'X'
  } catch {
    return false
  }
}

/** Starts a daemon and records its pid. In a dry run it is only printed. */
export async function startDaemon(runner: Runner, ref: DaemonRef, inv: Invocation): Promise<number | undefined> {
  const pid = await runner.daemon({...inv, logFile: daemonLog(ref)})
  if (pid !== undefined) writeFileAtomic(pidFile(ref), `${pid}\n`, 0o600, 0o700)
  return pid
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Stops a daemon netkit started (TERM, then KILL after a grace period). False if it was not running. */
export async function stopDaemon(runner: Runner, ref: DaemonRef, graceMs = 5000): Promise<boolean> {
  const pid = daemonPid(ref)
  if (pid !== undefined) await stopProcess(runner, pid, ref.match, ref.netns, graceMs)
  if (!runner.dryRun) {
    rmSync(pidFile(ref), {force: true})
    pruneDaemonDir(ref.netns)
  }
  return pid !== undefined
}

/** Stops a process (TERM, then KILL after a grace period) while it is still `match` in that namespace. */
export async function stopProcess(runner: Runner, pid: number, match: string, netns: string | undefined, graceMs = 5000): Promise<void> {
  const alive = () => processIs(pid, match, netns)
  await runner.run({tool: 'kill', args: ['-TERM', String(pid)], netns: null, object: `${match} (pid ${pid})`})
  if (runner.dryRun) return
  const deadline = Date.now() + graceMs
  while (Date.now() < deadline && alive()) await sleep(50)
  if (alive()) await runner.run({tool: 'kill', args: ['-KILL', String(pid)], netns: null, object: `${match} (pid ${pid})`}).catch(() => {})
  for (let i = 0; i < 40 && existsSync(`/proc/${pid}`) && alive(); i++) await sleep(50)
}

/** Waits (bounded) until a condition holds. Resolves true when it did. */
export async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs: number, stepMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await cond()) return true
    // A signal (Ctrl-C, a kill, a hangup) ends the wait: the plan then undoes what it did.
    if (Date.now() >= deadline || signalled()) return false
    await sleep(stepMs)
  }
}

/** The wireguard-go processes of a namespace, whoever started them, with the device each serves (the last word of its command line). */
export function wireguardGoProcesses(netns?: string): {pid: number; ifname: string}[] {
  return processesNamed(['wireguard-go'], netns).flatMap((pid) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)
      return argv.length > 1 ? [{pid, ifname: argv.at(-1)!}] : []
    } catch {
      return []
    }
  })
}

/** Pids of processes named `comm` (any of them) in a network namespace, whoever started them. */
export function processesNamed(comms: string[], netns?: string): number[] {
  const out: number[] = []
  let entries: string[] = []
  try {
    entries = readdirSync('/proc')
  } catch {
    return out
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue
    try {
      const comm = readFileSync(`/proc/${e}/comm`, 'utf8').trim()
      if (comms.includes(comm) && sameNetns(Number(e), netns)) out.push(Number(e))
    } catch {
      // gone
    }
  }
  return out
}

/**
 * A daemon netkit started whose pid file was never written (netkit was killed
 * between starting it and recording it), found by the mark netkit put in its
 * environment, and recorded now, so that del, down and the doctor know it.
 */
export function adoptDaemon(ref: DaemonRef, comms: string[], envMark: string): number | undefined {
  for (const pid of processesNamed(comms, ref.netns)) {
    try {
      if (!readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(envMark)) continue
      writeFileAtomic(pidFile(ref), `${pid}\n`, 0o600, 0o700)
      return pid
    } catch {
      // gone meanwhile, or not readable
    }
  }
  return undefined
}
