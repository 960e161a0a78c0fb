/**
 * The one way netkit runs an external tool.
 *
 * Every `ip`, `sysctl`, `swanctl`, `wg`, ... goes through here, as an argv
 * array and never through a shell. This is the one place for:
 *  - network namespaces (`ip -n NS` for ip, `ip netns exec NS` for the rest),
 *  - dry-run (mutations are printed, not run; reads still run),
 *  - the audit echo of every mutation (like wg-quick's `cmd()`),
 *  - batching many `ip` changes into one `ip -batch -` over stdin,
 *  - secrets: a Secret may never reach an argv; it travels on stdin and is
 *    shown as <redacted> everywhere,
 *  - translating a tool's failure into a NetkitError (see tool-errors.ts).
 */
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {chmodSync, closeSync, lstatSync, mkdirSync, openSync, rmSync, symlinkSync} from 'node:fs'
import {dirname, join} from 'node:path'

import {NetkitError} from './errors.js'
import {pruneEmptyDirs, removeFile, writeFileAtomic, writeSecretFile} from './files.js'
import {stateDir} from './ownership.js'
import {translateFailure} from './tool-errors.js'

export const REDACTED = '<redacted>'

/** A value that must never appear on an argv, in a log, in --dry-run or --json output. */
export class Secret {
  constructor(readonly value: string) {}
  toString(): string {
    return REDACTED
  }
  toJSON(): string {
    return REDACTED
  }
}

export type Arg = string | Secret

export interface Invocation {
  /** The program: 'ip', 'sysctl', 'swanctl', 'wg', ... */
  tool: string
  args: Arg[]
  /** Standard input. */
  input?: string | Secret
  /** undefined: the runner's namespace; null: the caller's own (root) namespace. */
  netns?: string | null
  /** What is being acted on, for error messages: "route 10.0.0.0/24 (table main)". */
  object?: string
  env?: Record<string, string>
  timeoutMs?: number
  /** Extra environment or options that make the tool run detached (daemons). */
  detached?: boolean
}

export interface ExecResult {
  exitCode: number
  stdout: string
  stderr: string
  timedOut?: boolean
}

export type Executor = (
  file: string,
  args: string[],
  opts: {input?: string; env?: Record<string, string>; timeoutMs?: number; detached?: boolean},
) => Promise<ExecResult>

/** One line of an `ip -batch` script: the arguments after `ip`. */
export interface BatchLine {
  args: Arg[]
  object?: string
  /** 6: the line needs `ip -6` (an IPv6 rule: `ip rule` takes every rule for IPv4 without it); such lines run in their own `ip -6 -batch -`. */
  family?: 6
}

/** Starts a daemon that outlives netkit: detached, output to a log file. Resolves with its pid. */
export type Spawner = (file: string, args: string[], opts: {env?: Record<string, string>; logFile?: string}) => Promise<number>

export interface RunnerOptions {
  netns?: string
  dryRun?: boolean
  verbose?: boolean
  /** Where the audit echo ("[#] ip ...") and dry-run lines go. */
  sink?: (line: string) => void
  /** Where many such lines at once go (a batch's thousands: one write, not one each); default: `sink` for each. */
  sinkLines?: (lines: string[]) => void
  /** Where warnings go (the command prints them and puts them in the --json envelope). */
  warn?: (message: string) => void
  exec?: Executor
  /** For read-only queries (default: a lean child_process executor). */
  readExec?: Executor
  spawn?: Spawner
}

const SHELL_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/

export function shellQuote(arg: string): string {
  if (arg !== '' && SHELL_SAFE.test(arg)) return arg
  return `'${arg.replaceAll("'", `'\\''`)}'`
}

/** Starts a daemon for real: its own session, stdin closed, stdout and stderr to the log file. */
export const realSpawner: Spawner = async (file, args, opts) => {
  let fd: number | 'ignore' = 'ignore'
  if (opts.logFile) {
    mkdirSync(dirname(opts.logFile), {recursive: true, mode: 0o700})
    fd = openSync(opts.logFile, 'a', 0o600)
  }
  try {
    const child = spawn(file, args, {detached: true, stdio: ['ignore', fd, fd], env: {...process.env, LC_ALL: 'C', ...opts.env}})
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve())
      child.once('error', reject)
    })
    child.unref()
    return child.pid!
  } finally {
    if (typeof fd === 'number') closeSync(fd)
  }
}

/**
 * Runs a read-only query (ip -j ..., swanctl --list-sas, wg show) with
 * node:child_process directly. Reads are the hot path of every list command,
 * and loading execa costs more than the query itself (about 80 ms of a
 * 250 ms `route list`); changes go through execa (realExecutor).
 */
export const realReadExecutor: Executor = (file, args, opts) =>
  new Promise((resolve) => {
    const child = spawn(file, args, {env: {...process.env, LC_ALL: 'C', ...opts.env}, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    let timedOut = false
    const timer = opts.timeoutMs ? setTimeout(() => ((timedOut = true), child.kill('SIGTERM')), opts.timeoutMs) : undefined
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    if (opts.input !== undefined) {
      // A tool that exits before reading its input (ip -n GONE -batch -): its exit status tells, not EPIPE.
      child.stdin!.on('error', () => {})
      child.stdin!.end(opts.input)
    }
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer)
      resolve({exitCode: error.code === 'ENOENT' ? 127 : 1, stdout, stderr: error.code === 'ENOENT' ? `${file}: command not found` : String(error.message)})
    })
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer)
      resolve({exitCode: code ?? (timedOut ? 124 : signal ? 128 : 1), stdout, stderr, ...(timedOut ? {timedOut} : {})})
    })
  })

/** Runs tools for real, through execa (loaded on first use to keep start-up fast). */
export const realExecutor: Executor = async (file, args, opts) => {
  const {execa} = await import('execa')
  const r = await execa(file, args, {
    input: opts.input,
    reject: false,
    stripFinalNewline: false,
    env: {LC_ALL: 'C', ...opts.env},
    timeout: opts.timeoutMs,
    detached: opts.detached,
    stdin: opts.input === undefined ? 'ignore' : 'pipe',
  })
  if (r.failed && r.exitCode === undefined && r.code === 'ENOENT') {
    return {exitCode: 127, stdout: '', stderr: `${file}: command not found`}
  }
  return {
    exitCode: r.exitCode ?? (r.timedOut ? 124 : 1),
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
    timedOut: r.timedOut,
  }
}

/** Whether a path exists (a dangling symlink does). */
function lexists(path: string): boolean {
  try {
    lstatSync(path)
    return true
  } catch {
    return false
  }
}

export class Runner {
  readonly netns?: string
  readonly dryRun: boolean
  readonly verbose: boolean
  /** Every mutation, as displayed (redacted), in order: the audit log and the --json "commands". */
  readonly journal: string[] = []
  /** Every warning library code gave through warn(), redacted, in order. */
  readonly warnings: string[] = []
  private readonly exec: Executor
  private readonly readExec: Executor
  private readonly spawner: Spawner
  private readonly sink: (line: string) => void
  private readonly sinkLines: (lines: string[]) => void
  private readonly onWarn: (message: string) => void
  private readonly secrets = new Set<string>()
  /** withReadCache(): values read once per run (memo()), shared with the runners of other namespaces made by in(). */
  private shared?: Map<string, Promise<unknown>>
  /** Whether reads reach the machine (also through the read cache of withReadCache()), not a test's recorder. */
  private realReads: boolean

  constructor(opts: RunnerOptions = {}) {
    this.netns = opts.netns
    this.dryRun = Boolean(opts.dryRun)
    this.verbose = Boolean(opts.verbose)
    this.exec = opts.exec ?? realExecutor
    // An injected executor (tests) sees the reads too.
    this.readExec = opts.readExec ?? (opts.exec ? opts.exec : realReadExecutor)
    this.realReads = this.readExec === realReadExecutor
    this.spawner = opts.spawn ?? realSpawner
    this.sink = opts.sink ?? (() => {})
    this.sinkLines = opts.sinkLines ?? ((lines) => lines.forEach((l) => this.sink(l)))
    this.onWarn = opts.warn ?? (() => {})
  }

  /** A runner for the same settings in another namespace (null: the root namespace). */
  in(netns: string | null): Runner {
    return this.sibling(netns ?? undefined, this.readExec, this.shared)
  }

  /**
   * A runner of this command with another namespace or read executor: it
   * shares the journal, the warnings and the secrets, so one command has one
   * audit log and redacts everywhere what any of its runners learned.
   */
  private sibling(netns: string | undefined, readExec: Executor, shared: Map<string, Promise<unknown>> | undefined): Runner {
    const r = new Runner({
      netns,
      dryRun: this.dryRun,
      verbose: this.verbose,
      exec: this.exec,
      readExec,
      spawn: this.spawner,
      sink: this.sink,
      sinkLines: this.sinkLines,
      warn: this.onWarn,
    })
    ;(r as {journal: string[]}).journal = this.journal
    ;(r as {warnings: string[]}).warnings = this.warnings
    for (const s of this.secrets) r.secrets.add(s)
    r.shared = shared
    r.realReads = this.realReads
    return r
  }

  /**
   * With the read cache (withReadCache()): `fn`'s result once per run for each
   * key (a state read by other means than a tool: a VICI socket, a parsed
   * dump every tunnel filters). Without it: `fn` every time.
   */
  memo<T>(key: string, fn: () => Promise<T>): Promise<T> {
    if (!this.shared) return fn()
    let p = this.shared.get(key) as Promise<T> | undefined
    if (!p) this.shared.set(key, (p = fn()))
    return p
  }

  /** Whether reads are cached (withReadCache()): a caller can then read everything once and filter. */
  get cachesReads(): boolean {
    return this.shared !== undefined
  }

  /**
   * The same runner (and its namespaces, through in()) with each distinct read
   * run once: a second identical query gets the first one's result. For one
   * command that reads a consistent snapshot from several modules and changes
   * nothing (metrics); never for a command that reads again after a change.
   */
  withReadCache(): Runner {
    const inner = this.readExec
    const cache = new Map<string, Promise<ExecResult>>()
    const cached: Executor = (file, args, opts) => {
      if (opts.input !== undefined) return inner(file, args, opts)
      const key = JSON.stringify([file, args, opts.env ?? null])
      let p = cache.get(key)
      if (!p) cache.set(key, (p = inner(file, args, opts)))
      return p
    }
    return this.sibling(this.netns, cached, new Map())
  }

  /** A warning for the user (one line): shown on stderr and in the --json envelope's warnings, secrets redacted. */
  warn(message: string): void {
    const line = this.redact(message)
    this.warnings.push(line)
    this.onWarn(line)
  }

  /** Reads go to the real tools (not a test's recorder): what they say of the machine may be kept for the process. */
  get real(): boolean {
    return this.realReads
  }

  /** Registers a string that must be redacted from anything shown. */
  addSecret(value: string): void {
    if (value.length >= 4) this.secrets.add(value)
  }

  redact(text: string): string {
    let out = text
    for (const s of this.secrets) out = out.split(s).join(REDACTED)
    return out
  }

  /** The argv that is really executed. Refuses to put a Secret on it. */
  argv(inv: Invocation): [string, string[]] {
    const ns = inv.netns === undefined ? this.netns : (inv.netns ?? undefined)
    const args = inv.args.map((a) => {
      if (a instanceof Secret) {
        throw new Error(`internal error: a secret was about to be put on the argv of ${inv.tool}`)
      }
      return a
    })
    if (!ns) return [inv.tool, args]
    if (inv.tool === 'ip') return ['ip', ['-n', ns, ...args]]
    return ['ip', ['netns', 'exec', ns, inv.tool, ...args]]
  }

  /** How a command is shown to people: shell-quoted, secrets redacted. */
  display(inv: Invocation): string {
    const ns = inv.netns === undefined ? this.netns : (inv.netns ?? undefined)
    const shown = inv.args.map((a) => (a instanceof Secret ? REDACTED : shellQuote(this.redact(a))))
    const prefix = !ns ? [inv.tool] : inv.tool === 'ip' ? ['ip', '-n', shellQuote(ns)] : ['ip', 'netns', 'exec', shellQuote(ns), inv.tool]
    let line = [...prefix, ...shown].join(' ')
    if (inv.input !== undefined) line += inv.input instanceof Secret ? ` < ${REDACTED}` : ''
    return line
  }

  /** Runs a command that only reads. It runs in dry-run too. Throws a translated error on failure. */
  async read(inv: Invocation): Promise<string> {
    const r = await this.spawn(inv, true)
    if (r.exitCode !== 0) throw this.failure(inv, r)
    return r.stdout
  }

  /** Runs a read and returns the raw result, failure or not (for probes). */
  async probe(inv: Invocation): Promise<ExecResult> {
    return this.spawn(inv, true)
  }

  /** Runs a command that changes the host: echoed, skipped in dry-run, translated on failure. */
  async run(inv: Invocation): Promise<ExecResult> {
    if (inv.tool === 'ip' && inv.args.some((a) => a instanceof Secret)) {
      await this.batch([{args: inv.args, object: inv.object}], inv.netns)
      return {exitCode: 0, stdout: '', stderr: ''}
    }
    this.announce(this.display(inv))
    if (this.dryRun) return {exitCode: 0, stdout: '', stderr: ''}
    const r = await this.spawn(inv)
    if (r.exitCode !== 0) throw this.failure(inv, r)
    return r
  }

  /**
   * Runs many `ip` changes as one `ip -batch -` over stdin. Each line is echoed
   * as the single `ip` command it stands for. On failure the error says which
   * line failed; `failedIndex` on the error tells how many lines were applied.
   */
  async batch(lines: BatchLine[], netns?: string | null, opts: {force?: boolean} = {}): Promise<void> {
    if (lines.length === 0) return
    const six = lines.filter((l) => l.family === 6)
    if (six.length > 0 && six.length < lines.length) {
      // A batch line cannot carry -6: those lines go in a second process, after the others.
      await this.batch(
        lines.filter((l) => l.family !== 6),
        netns,
        opts,
      )
      try {
        await this.batch(six, netns, opts)
      } catch (error) {
        const e = error as BatchError
        if (e.failedIndex !== undefined) e.failedIndex = lines.indexOf(six[e.failedIndex])
        throw e
      }
      return
    }
    const base: Invocation = {tool: 'ip', args: six.length ? ['-6'] : [], netns}
    // Shown as the single commands they stand for (the prefix once: apply sends tens of thousands).
    const prefix = this.display(base)
    if (this.dryRun) {
      this.announceAll(lines.map((l) => `${prefix} ${this.shownLine(l)}`))
      return
    }
    // Most lines are plain words (routes, SPD entries): their script line is also how they are shown.
    const plain = this.secrets.size === 0
    const texts = lines.map((l) => (plain ? plainLine(l.args) : undefined))
    const script = lines.map((l, i) => texts[i] ?? l.args.map((a) => batchQuote(a instanceof Secret ? a.value : a)).join(' ')).join('\n') + '\n'
    // -force: go on after a failed line (for undoing, where some objects may be gone already).
    const inv: Invocation = {tool: 'ip', args: [...base.args, ...(opts.force ? ['-force'] : []), '-batch', '-'], netns, input: new Secret(script)}
    const running = this.spawn(inv)
    // The echo is made while ip works: the executor has started it by the time a macrotask runs (it waits for nothing else first).
    await new Promise((resolve) => setImmediate(resolve))
    this.announceAll(lines.map((l, i) => `${prefix} ${texts[i] ?? this.shownLine(l)}`))
    const r = await running
    if (r.exitCode === 0) return
    const m = /Command failed -:(\d+)/.exec(r.stderr)
    const index = m ? Number(m[1]) - 1 : 0
    const failed = lines[index] ?? lines[0]
    const err = this.failure({...base, args: [...base.args, ...failed.args], object: failed.object}, r)
    ;(err as BatchError).failedIndex = index
    throw err
  }

  /** A batch line as shown: shell-quoted, secrets redacted. */
  private shownLine(l: BatchLine): string {
    return l.args.map((a) => (a instanceof Secret ? REDACTED : shellQuote(this.secrets.size ? this.redact(a) : a))).join(' ')
  }

  /**
   * Runs a program with the terminal attached (for `ns exec`): stdin, stdout and
   * stderr are the caller's. Returns its exit status. Printed, not run, in a dry run.
   */
  async interactive(inv: Invocation): Promise<number> {
    // The program's own output is what the user wants to see: echo it only when asked.
    if (this.dryRun || this.verbose) this.announce(this.display(inv))
    if (this.dryRun) return 0
    const [file, args] = this.argv(inv)
    return new Promise((resolve, reject) => {
      const child = spawn(file, args, {stdio: 'inherit', env: {...process.env, ...inv.env}})
      child.on('error', reject)
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + (signalNumber(signal) ?? 1) : 1)))
    })
  }

  /**
   * For tools that read a secret only from a file (`wg set ... private-key FILE`):
   * the secret is written to a fresh mode-0600 file in a 0700 directory of the
   * state directory, `fn` runs with its path, and the file is removed after,
   * whatever happens. (A /dev/stdin path does not work: Node's pipes are sockets.)
   */
  async withSecretFile<T>(secret: Secret, fn: (path: string) => Promise<T>): Promise<T> {
    const path = join(stateDir(), 'tmp', `secret-${randomBytes(8).toString('hex')}`)
    if (!this.dryRun) writeSecretFile(path, secret.value)
    try {
      return await fn(path)
    } finally {
      if (!this.dryRun) removeFile(path, stateDir())
    }
  }

  /**
   * Starts a daemon (wireguard-go, charon) in the runner's namespace. Echoed
   * like every mutation; in a dry run it is printed and undefined is returned.
   * The pid is the daemon's own: `ip netns exec` and `unshare` exec, they do not fork.
   */
  async daemon(inv: Invocation & {logFile?: string}): Promise<number | undefined> {
    this.announce(this.display(inv) + (inv.logFile ? ` >> ${shellQuote(inv.logFile)} 2>&1 &` : ' &'))
    if (this.dryRun) return undefined
    const [file, args] = this.argv(inv)
    try {
      return await this.spawner(file, args, {env: inv.env, logFile: inv.logFile})
    } catch (error) {
      throw this.failure(inv, {exitCode: 127, stdout: '', stderr: String((error as Error).message)})
    }
  }

  /** Echoes a change netkit makes itself rather than through a tool (a VICI command), like a command: in the journal, and printed in a dry run. */
  note(line: string): void {
    this.announce(line)
  }

  /**
   * Writes a file of the host's configuration that netkit owns (a tunnel's
   * definition, a key, a strongSwan or WireGuard configuration, a table name):
   * atomically, with exactly `mode` (default 0644; a Secret's content 0600 in a
   * 0700 folder). Echoed as `write PATH (mode M)`, or `write PATH (NOTE)` with
   * a note saying what changes in it, never with its content; in a dry run only
   * shown.
   */
  writeFile(path: string, content: string | Secret, opts: {mode?: number; dirMode?: number; note?: string} = {}): void {
    const secret = content instanceof Secret
    const mode = opts.mode ?? (secret ? 0o600 : 0o644)
    this.announce(`write ${shellQuote(path)} (${opts.note ? this.redact(opts.note) : `mode ${mode.toString(8).padStart(4, '0')}`})`)
    if (this.dryRun) return
    writeFileAtomic(path, secret ? content.value : content, mode, opts.dirMode ?? (secret ? 0o700 : 0o755))
  }

  /**
   * Removes files (or, with `recursive`, folders) of the host's configuration
   * that netkit owns; one not there is skipped in silence. Each is echoed as
   * `rm -f PATH` (`rm -rf`); with `prune`, the folders left empty up to that one
   * go too. In a dry run only shown.
   */
  removeFiles(paths: string[], opts: {recursive?: boolean; prune?: string} = {}): void {
    for (const path of paths) {
      if (!lexists(path)) continue
      this.announce(`rm -${opts.recursive ? 'r' : ''}f ${shellQuote(path)}`)
      if (this.dryRun) continue
      rmSync(path, {force: true, recursive: Boolean(opts.recursive)})
      if (opts.prune) pruneEmptyDirs(dirname(path), opts.prune)
    }
  }

  /** Makes folders netkit owns (and their parents) with `mode`: those not there yet, echoed as one `mkdir -p -m M PATH...`; in a dry run only shown. */
  mkdir(paths: string[], mode = 0o755): void {
    const missing = paths.filter((p) => !lexists(p))
    if (missing.length === 0) return
    this.announce(`mkdir -p -m ${mode.toString(8).padStart(4, '0')} ${missing.map(shellQuote).join(' ')}`)
    if (!this.dryRun) for (const path of missing) mkdirSync(path, {recursive: true, mode})
  }

  /** Points `path` at `target` (a key the user gave, linked where strongSwan looks): echoed as `ln -sf TARGET PATH`, in a dry run only shown. */
  symlink(target: string, path: string): void {
    this.announce(`ln -sf ${shellQuote(target)} ${shellQuote(path)}`)
    if (this.dryRun) return
    rmSync(path, {force: true})
    symlinkSync(target, path)
  }

  /** Sets a file's mode (the doctor's fix of a key others can read): echoed as `chmod M PATH`, in a dry run only shown. */
  chmod(path: string, mode: number): void {
    this.announce(`chmod ${mode.toString(8)} ${shellQuote(path)}`)
    if (!this.dryRun) chmodSync(path, mode)
  }

  private announce(line: string): void {
    this.journal.push(line)
    this.sink(this.dryRun ? line : `[#] ${line}`)
  }

  /** Many lines echoed at once (one write where the sink allows it), in order, each in the journal. */
  private announceAll(lines: string[]): void {
    for (const l of lines) this.journal.push(l)
    this.sinkLines(this.dryRun ? lines : lines.map((l) => `[#] ${l}`))
  }

  private async spawn(inv: Invocation, readOnly = false): Promise<ExecResult> {
    const [file, args] = this.argv(inv)
    const input = inv.input instanceof Secret ? inv.input.value : inv.input
    return (readOnly ? this.readExec : this.exec)(file, args, {input, env: inv.env, timeoutMs: inv.timeoutMs, detached: inv.detached})
  }

  private failure(inv: Invocation, r: ExecResult): NetkitError {
    const stderr = this.redact(r.stderr.replace(/\nCommand failed -:\d+\s*$/, '').trim())
    const [tool, args] = unwrapTool(inv.tool, inv.args.map(String))
    return translateFailure({
      tool,
      args,
      object: inv.object,
      netns: inv.netns === undefined ? this.netns : (inv.netns ?? undefined),
      command: this.display(inv),
      exitCode: r.exitCode,
      stderr,
      timedOut: r.timedOut,
    })
  }
}

/** nsenter's options that take a value (the rest are flags). */
const NSENTER_VALUE = new Set(['-t', '--target', '-S', '--setuid', '-G', '--setgid', '-w', '--wd', '-r', '--root'])
/** unshare's options that take a value. */
const UNSHARE_VALUE = new Set([
  '--propagation',
  '--setgroups',
  '--map-user',
  '--map-group',
  '--map-users',
  '--map-groups',
  '-R',
  '--root',
  '-w',
  '--wd',
  '-S',
  '--setuid',
  '-G',
  '--setgid',
])

/**
 * The tool a wrapper runs, and its arguments: \`nsenter -t PID -m wg set ...\`
 * is \`wg set ...\`; \`unshare --mount ... sh -c SCRIPT NAME wireguard-go ...\` (the
 * fixed scripts that exec "$@") is \`wireguard-go ...\`. A failure is the
 * tool's, and is said in its name (the full command stays on the error).
 */
export function unwrapTool(tool: string, args: string[]): [string, string[]] {
  const values = tool === 'nsenter' ? NSENTER_VALUE : tool === 'unshare' ? UNSHARE_VALUE : undefined
  if (!values) return [tool, args]
  let i = 0
  while (i < args.length && args[i].startsWith('-')) i += values.has(args[i]) ? 2 : 1
  if (i >= args.length) return [tool, args]
  const [inner, rest] = [args[i], args.slice(i + 1)]
  // sh -c SCRIPT $0 ARGV...: the script execs its arguments.
  if (inner === 'sh' && rest[0] === '-c' && rest.length >= 4) return unwrapTool(rest[3], rest.slice(4))
  return unwrapTool(inner, rest)
}

export interface BatchError extends NetkitError {
  failedIndex: number
}

function signalNumber(sig: string): number | undefined {
  return ({SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15} as Record<string, number>)[sig]
}

/** Words that need quoting neither for a shell nor for ip's batch tokenizer (SHELL_SAFE), joined by single spaces. */
const PLAIN_LINE = /^[A-Za-z0-9_@%+=:,./-]+(?: [A-Za-z0-9_@%+=:,./-]+)*$/

/**
 * A line of plain words as one string (both its `ip -batch` line and how it is shown), or undefined when a
 * word is a Secret or needs quoting. One test of the joined line stands for one per word, once no word
 * holds a space: an empty word leaves two spaces in a row or one at an end, which the pattern refuses.
 */
function plainLine(args: Arg[]): string | undefined {
  for (const a of args) if (typeof a !== 'string' || a.includes(' ')) return undefined
  const text = (args as string[]).join(' ')
  return PLAIN_LINE.test(text) ? text : undefined
}

/** Quotes one word for ip's batch tokenizer (which understands double quotes and backslashes). */
function batchQuote(word: string): string {
  if (word !== '' && /^[^\s"'\\#]+$/.test(word)) return word
  return `"${word.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`
}
