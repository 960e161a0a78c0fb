/**
 * `netkit diff` and `netkit apply`: the plan from the host file against the
 * live state, executed as steps with listr2 progress (each namespace's
 * iproute2 changes in one `ip -batch -`; namespaces and tunnels through
 * netkit's own services), then read back and verified (as nmstate verifies).
 * Any failure, or a failed verification, undoes everything already done, so
 * the host is as before. `--try SECONDS` keeps the change only if it is
 * confirmed in time (as `netplan try` does), so a change made over SSH cannot
 * lock anyone out.
 */
import {NetkitError} from '../errors.js'
import {ensureProtoName} from '../iproute2/tables.js'
import {lockHost} from '../lock.js'
import {ledgerStamp, scopeOf} from '../ownership.js'
import {Interruption, rollback, runPlan, type Step} from '../plan.js'
import type {Runner} from '../runner.js'
import {phase} from '../timing.js'
import {inNamespace} from '../wording.js'
import type {Foreign} from './compare.js'
import type {HostInput} from './input.js'
import {appliedKey, record} from './ledger.js'
import {fileDigest} from './memo.js'
import type {UndoFailures} from './ops.js'
import {type Change, describePlan, type Plan, type PlannedChange, planHost, remember, type Scope} from './plan.js'
import {planSteps} from './steps.js'
import {sayWhatStayedGone, UndoIncomplete, verify} from './verify.js'

const where = (netns?: string) => inNamespace(netns)

export interface ApplyResult {
  changes: PlannedChange[]
  unchanged: number
  changed: boolean
  verified: boolean
  rolledBack: boolean
  kept: boolean
  /** Nothing to do, known from the digests of the file and of the state a verified apply left (the file was not even parsed). */
  memo?: boolean
  /** Objects here that are neither netkit's nor in the file: left alone. */
  foreign: Foreign[]
}

export interface ApplyOptions {
  trySeconds?: number
  /** Asks whether to keep the change (--try); `interrupted` settles when a signal comes first; `result`: the change, applied and verified. */
  confirm?: (seconds: number, interrupted: Promise<unknown>, result: ApplyResult) => Promise<boolean>
  log?: (l: string) => void
  /** Told once the plan is made (under the host lock), before anything changes. */
  planned?: () => void
  progress?: 'tty' | 'simple' | 'none'
  timeoutMs?: number
}

/**
 * Plans and applies a host file, with the host's lock held from the plan to the end (../lock.ts: the
 * command holds it already; lab and tests that call this directly take it here); a dry run takes no lock.
 */
export async function applyHost(runner: Runner, input: HostInput, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const release = runner.dryRun
    ? undefined
    : await lockHost(`netkit apply ${input.source === 'stdin' ? 'of a file on standard input' : input.source}${where(runner.netns ?? undefined)}`)
  try {
    return await applyLocked(runner, input, opts)
  } finally {
    release?.()
  }
}

/** The run: plan, change (steps), verify (undo if the host does not match), confirm (--try), remember. */
async function applyLocked(runner: Runner, input: HostInput, opts: ApplyOptions): Promise<ApplyResult> {
  phase('file read')
  const plan = await planHost(runner, input, {remember: !runner.dryRun})
  phase('planned')
  opts.planned?.()
  const result = resultOf(plan)
  if (plan.changes.length === 0) return result
  const run = prepare(runner, plan, result, opts)
  try {
    await runPlan(run.steps, {runner, progress: opts.progress ?? 'none', interruption: run.watch})
    phase('changed')
    if (runner.dryRun) return result
    const {reads, foreign} = await verifyOrUndo(run)
    if (opts.trySeconds !== undefined && !(await confirmed(run, opts.trySeconds, opts))) return result
    result.foreign = foreign
    remember(scopeOf(runner.netns), fileDigest(input.text, input.source, input.version), plan, reads, foreign)
    return result
  } catch (error) {
    await afterFailure(run, error)
    throw error
  } finally {
    run.watch.dispose()
  }
}

/** One apply's change in progress: its steps, what is done, what undoing failed at. */
interface Execution {
  runner: Runner
  plan: Plan
  result: ApplyResult
  /** The plan's steps, each recorded in `done` once it has run. */
  steps: Step[]
  done: Step[]
  /** What failed while undoing (said if the host is not back as it was). */
  failed: UndoFailures
  /** The changes whose object was apply's before (undoing one of those leaves it apply's). */
  prior: Set<Change>
  /** What the change makes, recorded in the ledger ahead. */
  making: Change[]
  /** The ledger file as the record ahead left it (ledgerStamp). */
  stamp?: string
  /** From the first change to the end of a --try, a signal (Ctrl-C, a kill, the SSH session closing) undoes everything. */
  watch: Interruption
}

/** The result before anything changed: what the plan says (verified already when there is nothing to do). */
function resultOf(plan: Plan): ApplyResult {
  const nothing = plan.changes.length === 0
  return {
    changes: describePlan(plan),
    unchanged: plan.unchanged,
    foreign: plan.foreign,
    changed: !nothing,
    verified: nothing,
    rolledBack: false,
    kept: true,
    ...(nothing && plan.memo ? {memo: true} : {}),
  }
}

/** The steps, tracked, and the ledger written ahead: ready to run. */
function prepare(runner: Runner, plan: Plan, result: ApplyResult, opts: ApplyOptions): Execution {
  // Name netkit's protocol for iproute2, so `ip route` says "proto netkit" for what apply makes.
  ensureProtoName(runner)
  // The value a sysctl had before apply first set it, in that namespace.
  const originalIn = (s: Scope) => (path: string) => s.applied[`sysctl:${path}`]?.meta?.original as string | undefined
  const failed: UndoFailures = []
  const done: Step[] = []
  // A dry run has nothing to undo (and undoing would only print more commands).
  const steps = planSteps(plan, originalIn, opts.timeoutMs ?? 30_000, failed).map((s) => ({
    ...s,
    ...(runner.dryRun ? {undo: undefined} : {}),
    apply: async () => {
      const r = await s.apply()
      done.push(s)
      return r
    },
  }))
  // Read before anything is recorded (the ledger's cache is updated in place).
  const prior = new Set(plan.changes.filter((c) => c.action === 'change' && plan.scopes.find((s) => s.netns === c.netns)?.applied[appliedKey(c.desired!)]))
  const run: Execution = {runner, plan, result, steps, done, failed, prior, making: [], watch: new Interruption()}
  // Written ahead: what the change will make is apply's in the ledger before the kernel has it, so that
  // after a kill -9 half way the next apply knows it for its own (and removes it when the file drops it).
  // (Not sysctls: their claim keeps the value from before, read just before apply sets it.)
  run.making = plan.changes.filter((c) => c.action !== 'remove' && c.kind !== 'sysctl')
  if (!runner.dryRun) {
    record(plan.scopes, run.making)
    run.stamp = ledgerStamp()
  }
  return run
}

/**
 * The ledger after the changes. What was recorded ahead is recorded again only if the ledger was written
 * since (a tunnel's or a namespace's service writes it): otherwise it is all there, and only the rest
 * (removals, sysctls) is recorded; a big apply's records are not walked twice, while ip waits to be read.
 */
function recordAfter(run: Execution): void {
  const {plan} = run
  if (run.stamp === undefined || ledgerStamp() !== run.stamp) return record(plan.scopes, plan.changes)
  const ahead = new Set(run.making)
  record(
    plan.scopes,
    plan.changes.filter((c) => !ahead.has(c)),
  )
}

/** Everything done undone, and the ledger as before. */
async function undoAll(run: Execution): Promise<void> {
  await rollback(run.done)
  record(run.plan.scopes, run.plan.changes, {prior: run.prior})
  run.result.rolledBack = true
}

/** `p`, and a signal checked after it; failing, everything is undone first. */
async function undoing<T>(run: Execution, p: Promise<T>): Promise<T> {
  try {
    const r = await p
    run.watch.check()
    return r
  } catch (error) {
    await undoAll(run)
    throw error
  }
}

/** The host read back and compared: what still differs undoes the change (E_VERIFY). */
async function verifyOrUndo(run: Execution): ReturnType<typeof verify> {
  const {plan} = run
  const verified = await undoing(
    run,
    verify(plan, () => recordAfter(run)),
  )
  phase('verified')
  const {left} = verified
  if (left.length > 0) {
    await undoAll(run)
    throw new NetkitError(
      'E_VERIFY',
      `the host does not match the file after applying: ${left
        .slice(0, 3)
        .map((c) => `${c.action} ${c.desc}${where(c.netns)}`)
        .join('; ')}`,
      {fix: 'the change was undone; run "netkit diff -f FILE" and check what else manages these objects'},
    )
  }
  run.result.verified = true
  return verified
}

/** --try: the change kept only if confirmed in time; else undone (result.kept false). */
async function confirmed(run: Execution, seconds: number, opts: ApplyOptions): Promise<boolean> {
  opts.log?.(`applied; keeping it only if you confirm within ${seconds} s`)
  const ok = await undoing(run, opts.confirm ? opts.confirm(seconds, run.watch.fired, run.result) : Promise.resolve(false))
  if (ok) return true
  await undoAll(run)
  await sayWhatStayedGone(run.plan, run.failed)
  run.result.kept = false
  return false
}

/** After a failure (undone by the plan's steps, or by undoAll): the ledger as before, and said so only if the host is back as it was. */
async function afterFailure(run: Execution, error: unknown): Promise<void> {
  if (run.runner.dryRun) return
  // The plan undid its steps: what was claimed ahead is not apply's after all.
  if (!run.result.rolledBack) record(run.plan.scopes, run.making, {prior: run.prior})
  if (!(error instanceof UndoIncomplete)) await sayWhatStayedGone(run.plan, run.failed, error)
}
