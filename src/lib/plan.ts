/**
 * A plan: steps that each know how to undo themselves, run in order with
 * listr2 showing progress. If a step fails, or Ctrl-C, a kill or a hangup
 * (a closed SSH session) comes, the steps already done are undone in reverse order, so the host is left as it
 * was (the CNI plugins' "rollback registered right after each resource", and
 * wg-quick's trap).
 */
import {NetkitError} from './errors.js'
import type {Runner} from './runner.js'

export interface Step {
  title: string
  /** Does the work. Returns false when nothing needed doing (then there is nothing to undo). */
  apply: () => Promise<boolean | void>
  /** Undoes what apply did. Must tolerate the object being already gone. */
  undo?: () => Promise<void>
  /** apply may fail half way (several changes): its undo then runs too, and copes with any point it stopped at. */
  undoIfFailed?: boolean
}

export interface PlanOptions {
  runner: Runner
  /** Show listr2 progress: 'tty' (live, redraws), 'simple' (a line a step), or 'none'. */
  progress?: 'tty' | 'simple' | 'none'
  /** The caller's watch when the change goes on after the plan (apply's verify and --try); else the plan's own. */
  interruption?: Interruption
}

export interface PlanResult {
  /** Titles of the steps that changed something. */
  changed: string[]
  /** Titles of the steps that found nothing to do. */
  unchanged: string[]
}

export class Interrupted extends NetkitError {
  constructor(signal?: NodeJS.Signals) {
    super(
      'E_INTERRUPTED',
      signal === 'SIGHUP' ? 'interrupted (SIGHUP: the terminal or SSH session closed)' : `interrupted${signal && signal !== 'SIGINT' ? ` (${signal})` : ''}`,
      {fix: 'what was already done has been undone; run the command again when ready'},
    )
  }
}

/** Ctrl-C, a kill, and a closed terminal or SSH session (the lock-out that `apply --try` guards against). */
const active = new Set<Interruption>()

/** How many undos run now: their own waits (a daemon brought back) are not cut short by the signal that started them. */
let undoing = 0

/** Whether a signal came while the host is being changed: long waits (a handshake, a daemon) stop early and let the undo run. */
export function signalled(): boolean {
  if (undoing > 0) return false
  for (const w of active) if (w.signal) return true
  return false
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

/**
 * While the host is being changed, these signals are noted instead of ending
 * the process half way, so what was done can be undone (wg-quick's trap). The
 * terminal may be gone already (SIGHUP): from then on a failed write to it is
 * ignored rather than fatal, so the undoing runs to its end.
 */
export class Interruption {
  signal?: NodeJS.Signals
  /** Settles with the first signal. */
  readonly fired: Promise<NodeJS.Signals>
  private settle!: (s: NodeJS.Signals) => void
  private readonly onSignal = (s: NodeJS.Signals) => {
    if (s === 'SIGHUP') for (const out of [process.stdout, process.stderr]) out.on('error', ignore)
    this.signal ??= s
    this.settle(this.signal)
  }

  constructor() {
    this.fired = new Promise((resolve) => (this.settle = resolve))
    for (const s of SIGNALS) process.on(s, this.onSignal)
    active.add(this)
  }

  /** Throws Interrupted once a signal came. */
  check(): void {
    if (this.signal) throw new Interrupted(this.signal)
  }

  dispose(): void {
    for (const s of SIGNALS) process.off(s, this.onSignal)
    active.delete(this)
  }
}

const ignore = () => {}

export function progressMode(json: boolean): 'tty' | 'simple' | 'none' {
  if (json || !process.stderr.isTTY || process.env.CI) return 'none'
  // A terminal that reports no size (a pty made by script(1) or some exec tools): the live
  // renderer would wrap at width 0, a character a line; plain lines instead.
  return (process.stdout.columns || 0) > 0 ? 'tty' : 'simple'
}

export async function runPlan(steps: Step[], opts: PlanOptions): Promise<PlanResult> {
  const done: Step[] = []
  const result: PlanResult = {changed: [], unchanged: []}
  const watch = opts.interruption ?? new Interruption()

  const runStep = async (step: Step) => {
    watch.check()
    let changed
    try {
      changed = await step.apply()
    } catch (error) {
      if (step.undoIfFailed) done.push(step)
      throw error
    }
    if (changed === false) {
      result.unchanged.push(step.title)
    } else {
      done.push(step)
      result.changed.push(step.title)
    }
    watch.check()
  }

  try {
    const mode = opts.progress ?? 'none'
    if (mode === 'none' || opts.runner.dryRun) {
      for (const step of steps) await runStep(step)
    } else {
      const {Listr} = await import('listr2')
      const list = new Listr(
        steps.map((step) => ({title: step.title, task: () => runStep(step)})),
        {
          renderer: mode === 'tty' ? 'default' : 'simple',
          rendererOptions: {},
          exitOnError: true,
          registerSignalListeners: false,
        } as never,
      )
      await list.run()
    }
    return result
  } catch (caught) {
    // A step cut short by a signal (a wait that stopped early) fails in its own words; what happened is the signal.
    const error = watch.signal && !(caught instanceof Interrupted) ? new Interrupted(watch.signal) : caught
    const undoErrors = await rollback(done)
    if (error instanceof NetkitError && undoErrors.length > 0) {
      throw new NetkitError(error.code, `${error.what}; undoing the steps already done also failed (${undoErrors.join('; ')})`, {
        fix: 'check with the list commands (or netkit doctor) and remove the leftovers netkit reports',
        detail: error.detail,
        command: error.command,
        exit: error.exit,
      })
    }
    throw error
  } finally {
    if (!opts.interruption) watch.dispose()
  }
}

/** Undoes the given steps in reverse order; returns the messages of undo steps that failed. */
export async function rollback(done: Step[]): Promise<string[]> {
  const errors: string[] = []
  undoing++
  try {
    for (const step of [...done].reverse()) {
      if (!step.undo) continue
      try {
        await step.undo()
      } catch (error) {
        errors.push(`${step.title}: ${error instanceof NetkitError ? error.what : error instanceof Error ? error.message : String(error)}`)
      }
    }
  } finally {
    undoing--
  }
  return errors
}
