/**
 * What every netkit command shares: the global flags (--netns, --verbose,
 * --json), the runner built from them, the JSON envelope, and the error and
 * exit-code policy (0 done, 1 failed, 2 bad input or usage).
 *
 * JSON envelope (stable):
 *   success: {"ok": true, "result": ..., "warnings": [...]}
 *   failure: {"ok": false, "error": {"code", "message", "fix"?, "exitCode", "command"?, "detail"?}, "warnings": [...]}
 * `warnings` is always there (empty when none): what a person sees as
 * "warning: ..." lines on stderr, a script reads there.
 */
import {Command, Interfaces} from '@oclif/core'

import {ExitCode, NetkitError, quoteControl, UsageError} from './errors.js'
import * as f from './flags.js'
import {netnsExists} from './iproute2/netns.js'
import {lockHost} from './lock.js'
import {type ChangeOutcome, type Column, renderTable} from './output.js'
import {Runner, type RunnerOptions} from './runner.js'
import {phase} from './timing.js'

export interface CommonFlags {
  netns?: string
  verbose?: boolean
  'dry-run'?: boolean
  json?: boolean
}

export abstract class NetkitCommand extends Command {
  static override enableJsonFlag = true
  static override baseFlags = {
    netns: f.netns(),
    verbose: f.verbose,
  }

  private runnerMade?: Runner
  private readonly warnings: string[] = []
  private releaseLock?: () => void

  /**
   * oclif reads a missing argument from piped standard input: "echo x | netkit
   * ns del" would delete namespace x, and a "while read" loop would lose its
   * lines. netkit takes arguments only from the command line.
   */
  protected override async init(): Promise<void> {
    for (const arg of Object.values(this.ctor.args ?? {})) (arg as {ignoreStdin?: boolean}).ignoreStdin = true
    await super.init()
    await this.lockIfChanging()
  }

  /**
   * A command that changes the host holds the host's lock (lock.ts) from
   * before its first read to its end: one discipline for every mutating
   * command, so two at once never plan against each other. Dry runs and reads
   * take no lock. apply refuses at once while another change runs (it may be
   * an apply --try waiting minutes for its answer); the others wait a while.
   */
  private async lockIfChanging(): Promise<void> {
    const rule = this.id ? CHANGES_HOST[this.id] : undefined
    if (!rule) return
    let flags: Record<string, unknown>
    let args: Record<string, unknown>
    try {
      ;({flags, args} = await this.parse(this.ctor))
    } catch {
      return // bad input: run() reports it, and changes nothing
    }
    if (flags['dry-run'] || (typeof rule === 'function' && !rule(flags))) return
    const what = [
      'netkit',
      ...this.id!.split(':'),
      ...Object.values(args).filter((a) => typeof a === 'string'),
      ...(typeof flags.file === 'string' ? [`-f ${flags.file}`] : []),
      ...(flags.netns ? [`--netns ${flags.netns}`] : []),
    ].join(' ')
    const json = this.jsonEnabled()
    this.releaseLock = await lockHost(what, {
      waitMs: this.id === 'apply' ? 0 : LOCK_WAIT_MS,
      onWait: (holder) => json || process.stderr.write(`waiting for another netkit command to finish (${holder})\n`),
    })
    process.once('exit', () => this.releaseLock?.())
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    this.releaseLock?.()
    return super.finally(err)
  }

  /**
   * The runner for this invocation. Refuses an unknown --netns before anything runs.
   * `global`: the command acts on machine-wide objects (namespaces), so --netns does not apply.
   */
  protected makeRunner(flags: CommonFlags, opts: {global?: boolean} = {}): Runner {
    if (flags.netns && !netnsExists(flags.netns)) {
      throw new UsageError(
        `network namespace ${flags.netns} does not exist`,
        `create it with "netkit ns add ${flags.netns}" or check "netkit ns list"`,
        'E_NO_NETNS',
      )
    }
    const json = this.jsonEnabled()
    const dryRun = Boolean(flags['dry-run'])
    // A dry run's commands are its output (stdout); a run's echo goes with the diagnostics (stderr).
    const echoTo = dryRun ? process.stdout : process.stderr
    this.runnerMade = new Runner({
      // Global objects (namespaces themselves) are handled from the caller's namespace.
      netns: opts.global ? undefined : flags.netns,
      dryRun,
      verbose: Boolean(flags.verbose),
      sink: json ? undefined : (l) => echoTo.write(`${l}\n`),
      // A batch's thousands of lines in one write (one each took about 0.1 s for 20,000 routes).
      sinkLines: json ? undefined : (ls) => echoTo.write(`${ls.join('\n')}\n`),
      warn: (message) => this.warning(message),
      ...commandTools,
    })
    return this.runnerMade
  }

  /**
   * Whether the runner runs the host's own tools (not the stand-ins of the build's warm-up, which
   * must write nothing): only then may a command keep what they answered in the state directory.
   */
  protected get hostTools(): boolean {
    return Object.keys(commandTools).length === 0
  }

  /**
   * Prints the outcome of a change for people and returns it for --json.
   * `what` is the change as a verb and its object ("add", "route 10.0.0.0/24");
   * `noop` says why nothing was needed.
   */
  protected outcome(changed: boolean, what: {verb: string; object: string; noop: string}, runner: Runner): ChangeOutcome {
    const did = `${pastTense(what.verb)} ${what.object}`
    const summary = !changed ? what.noop : runner.dryRun ? `would ${what.verb} ${what.object}` : did
    const out: ChangeOutcome = {changed, summary, dryRun: runner.dryRun, commands: [...runner.journal]}
    if (!this.jsonEnabled()) {
      // In a dry run stdout carries only the commands; the note goes to stderr.
      if (runner.dryRun) process.stderr.write(changed ? `dry run: ${summary}; nothing was changed\n` : `${summary}; nothing to do\n`)
      else this.log(changed ? summary : `${summary}; nothing to do`)
    }
    return out
  }

  /**
   * A warning: one line on stderr for people ("warning: ..."), and an entry of
   * the envelope's `warnings` for scripts. Library code warns through its
   * runner (`runner.warn`), which lands here.
   */
  protected warning(message: string): void {
    const line = quoteControl(message)
    this.warnings.push(line)
    if (!this.jsonEnabled()) process.stderr.write(`warning: ${line}\n`)
  }

  /** Prints rows as a table for people; the rows themselves are the --json result. */
  protected async printTable<T>(rows: T[], columns: Column<T>[], empty: string): Promise<void> {
    if (this.jsonEnabled()) return
    this.log(rows.length === 0 ? empty : await renderTable(rows, columns))
  }

  /** Plain JSON, never colorized: it is for scripts, and tokenizing a big result for colors is slow. */
  override logJson(json: unknown): void {
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`)
    phase('printed')
  }

  override toSuccessJson(result: unknown): unknown {
    return {ok: true, result, warnings: this.warnings}
  }

  override async catch(err: Error & {oclif?: {exit?: number}; code?: string}): Promise<never | void> {
    const e = asNetkitError(err)
    process.exitCode = e.exit
    if (this.jsonEnabled()) {
      this.logJson({ok: false, error: e.toJSON(), warnings: this.warnings})
      return
    }
    // One line, whatever the message holds (NetkitError quotes control characters); the rest only with --verbose.
    process.stderr.write(`error: ${e.line}\n`)
    const verbose = this.argv.includes('--verbose') || this.runnerMade?.verbose
    if (verbose) {
      if (e.command) process.stderr.write(`  command: ${e.command}\n`)
      if (e.detail) process.stderr.write(`  ${e.command?.split(' ')[0] ?? 'tool'} said: ${e.detail.replaceAll('\n', '\n    ')}\n`)
      if (e.code === 'E_INTERNAL' && err.stack) process.stderr.write(`${err.stack}\n`)
    }
  }
}

/**
 * What the runners of commands run their tools with: the real ones, except in the build's warm-up
 * (warm-up.ts), which runs a read-only command through oclif against an empty host that runs nothing.
 */
let commandTools: Pick<RunnerOptions, 'exec' | 'readExec' | 'spawn'> = {}

/** Runs `fn` with every command's runner using `tools` (the build's warm-up only); then the real tools again. */
export async function withCommandTools<T>(tools: Pick<RunnerOptions, 'exec' | 'readExec' | 'spawn'>, fn: () => Promise<T>): Promise<T> {
  commandTools = tools
  try {
    return await fn()
  } finally {
    commandTools = {}
  }
}

/** How long a changing command waits for another to finish before it is refused (E_BUSY, naming the holder). */
const LOCK_WAIT_MS = 60_000

/**
 * The commands that change the host (and take its lock), by oclif id; a function says when, from the flags.
 * Not here, as reads: every list/show, diff, export, doctor without --fix, and metrics (its -o file is its
 * output, written atomically, not host state).
 */
export const CHANGES_HOST: Record<string, true | ((flags: Record<string, unknown>) => boolean)> = Object.fromEntries([
  ...['addr', 'bridge', 'link', 'ns', 'proxyarp', 'route', 'rule', 'table', 'xfrm:policy', 'xfrm:state', 'tunnel'].flatMap((topic) =>
    ['add', 'del'].map((verb) => [`${topic}:${verb}`, true]),
  ),
  ...[
    'bridge:attach',
    'bridge:detach',
    'link:set',
    'proxyarp:enable',
    'proxyarp:disable',
    'sysctl:set',
    'sysctl:restore',
    'tunnel:peer:add',
    'tunnel:peer:del',
  ].map((id) => [id, true]),
  ...['tunnel:up', 'tunnel:down', 'tunnel:pubkey', 'wizard', 'lab:up', 'lab:down'].map((id) => [id, true]),
  // apply --confirm/--rollback answer the waiter that holds the lock; apply --try --detach leaves the lock to that waiter.
  ['apply', (flags: Record<string, unknown>) => !flags.confirm && !flags.rollback && !(flags.detach && !flags.waiter)],
  ['doctor', (flags: Record<string, unknown>) => Boolean(flags.fix)],
  ...['service:boot', 'service:install', 'service:uninstall'].map((id) => [id, true]),
])

const IRREGULAR: Record<string, string> = {set: 'set', put: 'put', run: 'ran', make: 'made', bring: 'brought', take: 'took'}

/** "add" -> "added", "set up" -> "set up", "bring up" -> "brought up". */
export function pastTense(verb: string): string {
  const [head, ...rest] = verb.split(' ')
  const past = IRREGULAR[head] ?? (head.endsWith('e') ? `${head}d` : `${head}ed`)
  return [past, ...rest].join(' ')
}

/** Turns anything thrown into a NetkitError with one line and the right exit code. */
export function asNetkitError(err: Error & {oclif?: {exit?: number}; code?: string}): NetkitError {
  if (err instanceof NetkitError) return err
  const raw = String(err.message ?? err)
  if (
    err.oclif?.exit === ExitCode.usage ||
    err.oclif?.exit === 2 ||
    /^(Missing|Unexpected|Nonexistent|Expected|Parsing|The following|Flag --|Only one|--\S+=)/.test(raw)
  ) {
    const line = raw
      .replace(/\nSee more help with --help/g, '')
      .replace(/^The following errors? occurred:\s*/, '')
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean)
      .join(' ')
      .replace(/\u001b\[[0-9;]*m/g, '')
    return new UsageError(line, 'see --help for the usage')
  }
  return new NetkitError('E_INTERNAL', raw.split('\n')[0], {fix: 'run with --verbose for the stack trace, and report it', exit: ExitCode.failed, cause: err})
}

export type FlagsOf<T extends typeof Command> = Interfaces.InferredFlags<(typeof NetkitCommand)['baseFlags'] & T['flags']>
