/**
 * One `netkit apply` at a time on a host. Two at once would each plan against
 * a state the other is changing, and the one that fails would undo objects
 * the other just made (its undo deletes what it meant to add). The lock is a
 * file in the state directory naming its holder (pid, process start time,
 * what it applies); a holder whose process is gone (a crash, a kill -9) no
 * longer holds it, and a pid reused by another process is told apart by its
 * start time. A `--try` holds the lock until its change is kept or undone.
 */
import {closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync} from 'node:fs'
import {join} from 'node:path'

import {NetkitError} from '../errors.js'
import {stateDir} from '../ownership.js'

interface Holder {
  pid: number
  /** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
  started: string
  since: string
  what: string
}

const lockPath = () => join(stateDir(), 'apply.lock')

/** When process `pid` started (undefined: there is no such process). */
function startOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces and parentheses: count from the last ")".
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

function holderOf(path: string): Holder | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Holder
  } catch {
    return undefined
  }
}

const running = (h: Holder) => startOf(h.pid) === h.started

/** Takes the lock for `what` ("site.yaml in namespace x"); returns its release. Throws E_BUSY while another apply holds it. */
export function lockApply(what: string): () => void {
  const path = lockPath()
  mkdirSync(stateDir(), {recursive: true, mode: 0o700})
  const me: Holder = {pid: process.pid, started: startOf(process.pid) ?? '', since: new Date().toISOString(), what}
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number
    try {
      fd = openSync(path, 'wx', 0o600)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      const holder = holderOf(path)
      // A lock being written this instant has no holder yet: look again.
      if (holder && running(holder)) {
        throw new NetkitError('E_BUSY', `another netkit apply is running (pid ${holder.pid}, ${holder.what}, since ${holder.since.slice(11, 19)} UTC)`, {fix: 'wait for it to end (one with --try ends when its change is confirmed or undone), then apply again'})
      }
      if (holder) dropStale(path, holder)
      continue
    }
    try {
      writeSync(fd, JSON.stringify(me))
    } finally {
      closeSync(fd)
    }
    return () => {
      // Only our own lock (it is ours unless someone removed it by hand).
      if (holderOf(path)?.pid === process.pid) rmSync(path, {force: true})
    }
  }
  throw new NetkitError('E_BUSY', `the apply lock ${path} keeps changing hands`, {fix: 'another netkit apply is starting: wait for it to end, then apply again'})
}

/** Removes a lock whose holder is gone, unless another process took it meanwhile (then it is put back). */
function dropStale(path: string, holder: Holder): void {
  const aside = `${path}.${process.pid}.stale`
  try {
    renameSync(path, aside)
  } catch {
    return
  }
  const moved = holderOf(aside)
  if (moved && moved.pid !== holder.pid && running(moved)) {
    renameSync(aside, path)
    return
  }
  rmSync(aside, {force: true})
}
