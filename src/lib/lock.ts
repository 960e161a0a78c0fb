/**
 * One netkit change at a time on a host. Every command that changes the host
 * (apply, tunnel add/up/down/del, the wizard, lab, doctor --fix) holds this
 * lock from its first read to its last change. Two at once would each plan
 * against a state the other is changing: two IPsec adds started two charons
 * in one namespace, and an apply that failed undid what another had just made.
 *
 * The lock is a file in the state directory naming its holder (pid, process
 * start time, what it does). It is made atomically with its content (written
 * aside, then hard-linked into place), so a kill at any moment leaves either no
 * lock or a whole one. A holder whose process is gone (a crash, kill -9) no
 * longer holds it, a pid reused by another process is told apart by its start
 * time, and a lock with no readable holder (left by an older netkit) counts as
 * stale once it is a few seconds old.
 *
 * The lock is re-entrant within a process: lab and apply add tunnels through
 * the same service that `tunnel add` uses, under the lock they already hold.
 */
import {linkSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {NetkitError} from './errors.js'
import {stateDir} from './ownership.js'

interface Holder {
  pid: number
  /** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
  started: string
  since: string
  what: string
}

export const lockPath = (): string => join(stateDir(), 'netkit.lock')

/** A lock file with no readable holder younger than this may be one being written (by an older netkit): wait for it. */
const UNREADABLE_GRACE_MS = 3000

/** When process `pid` started (undefined: there is no such process, or it has ended and is a zombie). */
export function startOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces and parentheses: count from the last ")".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // A zombie has ended: it only waits for its parent (or an init that does not reap) to collect it.
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined
    return fields[19]
  } catch {
    return undefined
  }
}

function holderOf(path: string): Holder | undefined {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as Holder
    return Number.isInteger(h?.pid) ? h : undefined
  } catch {
    return undefined
  }
}

const running = (h: Holder) => startOf(h.pid) === h.started

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs
  } catch {
    return 0
  }
}

let held: {path: string; depth: number} | undefined

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export interface LockOptions {
  /** How long to wait for another command to finish before refusing (0: refuse at once). */
  waitMs?: number
  /** Told once when the lock is busy and we wait. */
  onWait?: (holder: string) => void
}

const describeHolder = (h: Holder) => `pid ${h.pid}: ${h.what}, since ${h.since.slice(11, 19)} UTC`

/**
 * Takes the host's lock for `what` ("tunnel add site in namespace x");
 * returns its release. Throws E_BUSY (naming the holder) when another netkit
 * still holds it after `waitMs`.
 */
export async function lockHost(what: string, opts: LockOptions = {}): Promise<() => void> {
  const path = lockPath()
  if (held?.path === path) {
    held.depth += 1
    return releaseOnce(path)
  }
  mkdirSync(stateDir(), {recursive: true, mode: 0o700})
  const me: Holder = {pid: process.pid, started: startOf(process.pid) ?? '', since: new Date().toISOString(), what}
  const deadline = Date.now() + (opts.waitMs ?? 0)
  let told = false
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const r = tryTake(path, me)
    if (r.kind === 'taken') {
      held = {path, depth: 1}
      return releaseOnce(path)
    }
    if (r.kind === 'stale') continue // cleared a dead holder's lock: try again at once
    // A lock with no readable holder yet is being written, or is an old one that turns stale after its grace.
    if (r.kind === 'busy' && Date.now() >= deadline) {
      throw new NetkitError('E_BUSY', `another netkit command is changing this host (${describeHolder(r.holder)})`, {
        fix: 'wait for it to end (an apply --try ends when its change is confirmed or undone), then run this again',
      })
    }
    if (r.kind === 'busy' && !told) {
      opts.onWait?.(describeHolder(r.holder))
      told = true
    }
    await sleep(100)
  }
  throw new NetkitError('E_BUSY', `the lock ${path} keeps changing hands`, {fix: 'another netkit command is starting: run this again'})
}

function releaseOnce(path: string): () => void {
  let done = false
  return () => {
    if (done || held?.path !== path) return
    done = true
    held.depth -= 1
    if (held.depth > 0) return
    held = undefined
    // Only our own lock (it is ours unless someone removed it by hand).
    if (holderOf(path)?.pid === process.pid) rmSync(path, {force: true})
  }
}

type Attempt = {kind: 'taken'} | {kind: 'busy'; holder: Holder} | {kind: 'stale'} | {kind: 'unreadable'}

/** Tries once to take the lock. */
function tryTake(path: string, me: Holder): Attempt {
  const aside = `${path}.${process.pid}.new`
  writeFileSync(aside, JSON.stringify(me), {mode: 0o600})
  try {
    linkSync(aside, path)
    return {kind: 'taken'}
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
  } finally {
    rmSync(aside, {force: true})
  }
  const holder = holderOf(path)
  if (holder && running(holder)) return {kind: 'busy', holder}
  if (!holder && ageMs(path) < UNREADABLE_GRACE_MS) return {kind: 'unreadable'}
  dropStale(path, holder)
  return {kind: 'stale'}
}

/** Removes a lock whose holder is gone, unless another process took it meanwhile (then it is put back). */
function dropStale(path: string, holder: Holder | undefined): void {
  const aside = `${path}.${process.pid}.stale`
  try {
    renameSync(path, aside)
  } catch {
    return
  }
  const moved = holderOf(aside)
  if (moved && moved.pid !== holder?.pid && running(moved)) {
    try {
      linkSync(aside, path)
    } catch {
      // someone took the lock meanwhile: theirs stands
    }
  }
  rmSync(aside, {force: true})
}
