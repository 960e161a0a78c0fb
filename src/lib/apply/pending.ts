/**
 * Commit-confirm for automation: `apply -f FILE --try SECONDS --detach`,
 * `apply --confirm`, `apply --rollback` (as `netplan try` and Junos `commit
 * confirmed`; docs/apply-confirm.md).
 *
 * The waiter is the process that applied. `--detach` starts netkit again as
 * a child in a session of its own (setsid: the SSH session closing sends it
 * no hangup), its output to a log in the state directory; the child takes the
 * host lock, applies, verifies, and then waits for the answer exactly as the
 * interactive --try does, with its undo in memory: the same undo as every
 * failed apply, not a second one rebuilt from a journal (an undo replayed from
 * disk would have to store what the kernel deleted along with a change, the
 * tunnels' keys as they were, the sysctls' values before, and would be a
 * second code path to keep right). Once the change is verified the child
 * tells the starting process (a pipe on its fd 3), which prints and exits 0.
 *
 * The answer reaches the waiter as a file in the state directory
 * (apply-answer: "confirm", "confirm doctor" or "rollback"), which it polls; no
 * answer within SECONDS, or SIGTERM/SIGINT/SIGHUP sent to it, and it undoes the
 * change. The waiter records what became of the change (apply-outcome.json)
 * before it lets go of the lock, so `--confirm` can say "confirmed" or "too
 * late: undone". Asked "confirm doctor" (`--confirm --doctor`), it keeps the
 * change and records the outcome, then checks the host as `netkit doctor` does
 * and writes the report (apply-doctor.json) before it lets go of the lock,
 * which the confirming process waits for: that process does not load and run
 * the doctor again (automation confirms every host of a fleet).
 *
 * The Ansible role (ansible/roles/netkit_mesh/files/mesh-checks.sh) speaks this
 * protocol from the shell to confirm without starting netkit: it reads the
 * "pid" of the pending record, of the outcome and of the host lock
 * (JSON.stringify's compact form, "pid" first), writes the answer file by
 * rename, and reads the doctor's report; a change here is a change there (the
 * role and the binary ship together).
 *
 * What this does not survive: the waiter killed with SIGKILL, or the machine
 * rebooting, while the change is pending (then nothing undoes the change; at
 * a reboot the kernel state is gone anyway). `--confirm` and `--rollback` then
 * say that the waiter is gone.
 */
import {spawn} from 'node:child_process'
import {closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync} from 'node:fs'
import {createRequire} from 'node:module'
import {join, resolve} from 'node:path'

import {NetkitError} from '../errors.js'
import {writeFileAtomic} from '../files.js'
import {lockHost, lockPath, startOf} from '../lock.js'
import {scopeOf, stateDir} from '../ownership.js'
import type {DoctorResult} from '../doctor/report.js'
import type {Runner} from '../runner.js'
import type {HostInput} from './input.js'
import {fileDigest, lastApplied} from './memo.js'

export interface PendingRecord {
  pid: number
  started: string
  file: string
  since: string
  deadline: string
  seconds: number
  changes: number
  log: string
}

export type OutcomeKind = 'confirmed' | 'rolled back' | 'expired' | 'interrupted' | 'failed'

export interface OutcomeRecord {
  pid: number
  file: string
  outcome: OutcomeKind
  at: string
  changes: number
  /** What went wrong (outcome "failed"), or the signal (outcome "interrupted"). */
  detail?: string
}

export const pendingPath = () => join(stateDir(), 'apply-pending.json')
export const answerPath = () => join(stateDir(), 'apply-answer')
export const outcomePath = () => join(stateDir(), 'apply-outcome.json')
export const detachedLog = () => join(stateDir(), 'apply-detached.log')
export const doctorPath = () => join(stateDir(), 'apply-doctor.json')

/** The doctor's report a waiter wrote after keeping its change ("confirm doctor"): its pid first, then the report or why there is none. */
export interface WaiterDoctor {
  pid: number
  at: string
  result?: DoctorResult
  error?: string
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T
  } catch {
    return undefined
  }
}

export const readPending = () => readJson<PendingRecord>(pendingPath())
export const readOutcome = () => readJson<OutcomeRecord>(outcomePath())

/** Whether the process is the one recorded (same start time) and still runs (not a zombie waiting to be reaped). */
export function running(pid: number, started: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return state !== 'Z' && state !== 'X' && startOf(pid) === started
  } catch {
    return false
  }
}

/* ---------- the waiter (the detached child) ---------- */

/** The waiter's warnings (its plan's, its change's): told along with its report, and given by the starter as its own. */
let warnings: string[] = []
export function relayWarnings(list: string[]): void {
  warnings = list
}

/** Tells the starting process (fd 3, a pipe) once, then closes it. Nothing to tell it to when there is no pipe. */
let told = false
export function tellStarter(message: Record<string, unknown>): void {
  if (told) return
  told = true
  try {
    writeSync(3, `${JSON.stringify(warnings.length ? {...message, warnings} : message)}\n`)
    closeSync(3)
  } catch {
    // started by hand, without the pipe
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * The waiter's confirmation: records the pending change, tells the starter,
 * then waits for an answer file, the deadline or a signal. `why` is told what
 * decided, and whether the doctor's report was asked for ("confirm doctor").
 */
export function waitForAnswer(info: {file: string; changes: number; report: Record<string, unknown>}, why: (w: OutcomeKind, doctor: boolean) => void) {
  return async (seconds: number, interrupted: Promise<unknown>): Promise<boolean> => {
    rmSync(answerPath(), {force: true})
    const since = new Date()
    const record: PendingRecord = {
      pid: process.pid,
      started: startOf(process.pid) ?? '',
      file: info.file,
      since: since.toISOString(),
      deadline: new Date(since.getTime() + seconds * 1000).toISOString(),
      seconds,
      changes: info.changes,
      log: detachedLog(),
    }
    writeFileAtomic(pendingPath(), `${JSON.stringify(record)}\n`, 0o600, 0o700)
    process.stderr.write(`pending: waiting up to ${seconds} s for "netkit apply --confirm" or "--rollback"\n`)
    tellStarter({pending: true, ...info.report, pid: record.pid, deadline: record.deadline, seconds, log: record.log})
    let signalled = false
    void interrupted.then(() => (signalled = true))
    const end = since.getTime() + seconds * 1000
    while (Date.now() < end && !signalled) {
      let words: string[] = []
      try {
        words = readFileSync(answerPath(), 'utf8').trim().split(/\s+/)
      } catch {
        words = []
      }
      const answer = words[0]
      if (answer === 'confirm' || answer === 'rollback') {
        why(answer === 'confirm' ? 'confirmed' : 'rolled back', answer === 'confirm' && words.includes('doctor'))
        process.stderr.write(`${answer === 'confirm' ? 'confirmed: keeping the change' : 'rollback asked for: undoing the change'}\n`)
        return answer === 'confirm'
      }
      await Promise.race([sleep(Math.min(100, Math.max(0, end - Date.now()))), interrupted])
    }
    why(signalled ? 'interrupted' : 'expired', false)
    process.stderr.write(`${signalled ? 'interrupted' : `not confirmed within ${seconds} s`}: undoing the change\n`)
    return false
  }
}

/** The doctor's report for the process that confirmed, written after the outcome, before the host lock is let go (which it waits for). */
export function writeDoctor(report: {result?: DoctorResult; error?: string}): void {
  const record: WaiterDoctor = {pid: process.pid, at: new Date().toISOString(), ...report}
  writeFileAtomic(doctorPath(), `${JSON.stringify(record)}\n`, 0o600, 0o700)
}

/** The report the waiter `pid` wrote, if it did. */
export function readDoctor(pid: number): WaiterDoctor | undefined {
  const d = readJson<WaiterDoctor>(doctorPath())
  return d?.pid === pid ? d : undefined
}

/** The waiter's last word: what became of the change; the pending record and any answer are removed. */
export function finish(outcome: Omit<OutcomeRecord, 'pid' | 'at'>): void {
  writeFileAtomic(outcomePath(), `${JSON.stringify({pid: process.pid, at: new Date().toISOString(), ...outcome})}\n`, 0o600, 0o700)
  const p = readPending()
  if (p?.pid === process.pid) rmSync(pendingPath(), {force: true})
  rmSync(answerPath(), {force: true})
}

/* ---------- confirm and rollback (any later netkit) ---------- */

export interface AnswerResult {
  pending: false
  /** What was asked: confirm or rollback. */
  asked: 'confirm' | 'rollback'
  /** What became of the change: confirmed, rolled back, expired (undone: not confirmed in time), interrupted, failed; none: nothing was pending. */
  outcome: OutcomeKind | 'none'
  file?: string
  changes?: number
  at?: string
  detail?: string
  /** The change the last detached apply made, when nothing was pending (for "nothing to confirm"). */
  last?: OutcomeRecord
}

/** An answer given, and the doctor's report its waiter wrote when asked (`doctor`; absent: nothing pending, or the waiter wrote none). */
export interface Answered {
  result: AnswerResult
  doctor?: WaiterDoctor
}

/**
 * Gives the pending change its answer and waits (bounded) until the waiter
 * has acted on it and let go of the host lock. Nothing pending: says what
 * became of the last one. `doctor` (with confirm): the waiter checks the host
 * once it has kept the change, and its report comes back with the answer.
 */
export async function answerPending(asked: 'confirm' | 'rollback', opts: {timeoutMs?: number; doctor?: boolean} = {}): Promise<Answered> {
  const p = readPending()
  if (!p) {
    const last = readOutcome()
    return {result: {pending: false, asked, outcome: 'none', ...(last ? {last} : {})}}
  }
  if (!running(p.pid, p.started)) {
    // The waiter died without a word (SIGKILL, OOM): nobody holds the undo any more.
    const last = readOutcome()
    if (last?.pid === p.pid) return {result: {pending: false, asked, outcome: 'none', last}}
    rmSync(pendingPath(), {force: true})
    throw new NetkitError(
      'E_WAITER_GONE',
      `the waiter of the change from ${p.file} (pid ${p.pid}) is gone without confirming or undoing it: the change is still in place`,
      {
        fix:
          asked === 'rollback'
            ? `nothing can undo it now: apply the earlier file ("netkit apply -f OLD_FILE"); see ${p.log}`
            : `it stays as it is (check it with "netkit diff -f ${p.file}"); see ${p.log}`,
      },
    )
  }
  writeFileAtomic(answerPath(), `${asked}${asked === 'confirm' && opts.doctor ? ' doctor' : ''}\n`, 0o600, 0o700)
  const deadline = Date.now() + (opts.timeoutMs ?? 180_000)
  // Done when the waiter has ended, or has said what became of the change and let go of the host lock.
  const done = () => !running(p.pid, p.started) || (readOutcome()?.pid === p.pid && readJson<{pid?: number}>(lockPath())?.pid !== p.pid)
  while (Date.now() < deadline && !done()) await sleep(100)
  const out = readOutcome()
  if (!out || out.pid !== p.pid) {
    if (!done())
      throw new NetkitError('E_TIMEOUT', `the waiter (pid ${p.pid}) has not finished acting on the ${asked} yet`, {
        fix: `see ${p.log}, and run "netkit apply --${asked}" again to see what became of it`,
      })
    throw new NetkitError('E_WAITER_GONE', `the waiter (pid ${p.pid}) ended without saying what became of the change from ${p.file}`, {
      fix: `see ${p.log} and check with "netkit diff -f ${p.file}"`,
    })
  }
  const doctor = asked === 'confirm' && opts.doctor && out.outcome === 'confirmed' ? readDoctor(p.pid) : undefined
  return {
    result: {pending: false, asked, outcome: out.outcome, file: out.file, changes: out.changes, at: out.at, ...(out.detail ? {detail: out.detail} : {})},
    ...(doctor ? {doctor} : {}),
  }
}

/**
 * Whether the starter of --try --detach plans itself: only when the file is the one last applied and
 * verified (or found matching) in this scope (memo.ts `lastApplied`), when a no-change run is likely. A
 * different file (or none recorded) is a change most likely: the waiter is started at once, and its plan
 * (made under the host lock, as always) is the only one. This only chooses who plans; it decides nothing.
 */
export function plansFirst(runner: Runner, input: HostInput): boolean {
  return lastApplied(scopeOf(runner.netns)) === fileDigest(input.text, input.source, input.version)
}

/**
 * --try --detach with a file the host already matches: known before any waiter is started (compared
 * with the host lock held, as the waiter would), so a no-change run starts no second netkit process.
 * The report the waiter would have given; undefined when something is to change or a change is pending,
 * and at once, without planning, when the file is not the one last applied here (plansFirst): the waiter
 * plans it, and tells the same report when it finds nothing to do.
 */
export async function unchangedReport(runner: Runner, input: HostInput, file: string): Promise<({unchanged: number} & Record<string, unknown>) | undefined> {
  if (!plansFirst(runner, input)) return undefined
  const pending = readPending()
  if (pending && running(pending.pid, pending.started)) return undefined
  const {planHost} = await import('./plan.js')
  const release = await lockHost(`apply -f ${file} --detach (comparing)`)
  let plan
  try {
    plan = await planHost(runner, input, {remember: true})
  } finally {
    release()
  }
  if (plan.changes.length > 0) return undefined
  clearOutcome()
  const {foreign, unchanged, memo} = plan
  return {
    pending: false,
    changes: [],
    unchanged,
    foreign,
    changed: false,
    verified: true,
    rolledBack: false,
    kept: true,
    ...(memo ? {memo} : {}),
    file: resolve(file),
  }
}

/** Forgets the last outcome and its doctor's report (a new detached apply starts). */
export function clearOutcome(): void {
  rmSync(outcomePath(), {force: true})
  rmSync(doctorPath(), {force: true})
}

/* ---------- the starting process ---------- */

/** How to run this same netkit again: the single binary runs itself; under node, node runs the same script. */
function self(): {file: string; args: string[]} {
  let sea = false
  try {
    sea = (createRequire(import.meta.url)('node:sea') as {isSea: () => boolean}).isSea()
  } catch {
    sea = false
  }
  return sea ? {file: process.execPath, args: []} : {file: process.execPath, args: [...process.execArgv, process.argv[1]]}
}

/**
 * Starts the waiter: this netkit again with `args` (the same command line and
 * `--waiter`), in a session of its own, stdin from /dev/null, stdout and
 * stderr to the log. Resolves with what it tells on fd 3 (the change pending,
 * nothing to do, or its error); rejects if it ends without a word.
 */
export async function startWaiter(args: string[], timeoutMs = 600_000): Promise<Record<string, unknown>> {
  mkdirSync(stateDir(), {recursive: true, mode: 0o700})
  const log = openSync(detachedLog(), 'w', 0o600)
  const {file, args: pre} = self()
  const child = spawn(file, [...pre, ...args, '--waiter'], {detached: true, stdio: ['ignore', log, log, 'pipe'], env: process.env})
  closeSync(log)
  const pipe = child.stdio[3] as NodeJS.ReadableStream
  let text = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        done(new NetkitError('E_TIMEOUT', `the detached apply (pid ${child.pid}) said nothing within ${timeoutMs / 1000} s`, {fix: `see ${detachedLog()}`})),
      timeoutMs,
    )
    let settled = false
    const done = (r: Error | Record<string, unknown>) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      pipe.removeAllListeners()
      // The waiter lives on: this process must not wait for it.
      child.unref()
      ;(pipe as unknown as {destroy?: () => void}).destroy?.()
      if (r instanceof Error) reject(r)
      else resolve(r)
    }
    pipe.setEncoding('utf8')
    pipe.on('data', (d: string) => {
      text += d
      const nl = text.indexOf('\n')
      if (nl < 0) return
      try {
        done(JSON.parse(text.slice(0, nl)) as Record<string, unknown>)
      } catch {
        done(new NetkitError('E_INTERNAL', 'the detached apply sent an unreadable report', {fix: `see ${detachedLog()}`}))
      }
    })
    pipe.on('end', () => done(new NetkitError('E_WAITER_GONE', `the detached apply (pid ${child.pid}) ended without a report`, {fix: `see ${detachedLog()}`})))
    child.on('error', (e) => done(new NetkitError('E_INTERNAL', `cannot start the detached apply: ${e.message}`)))
  })
}
