/** Runs the built CLI (bin/run.js) as a user would, and returns what it printed. */
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {fileURLToPath} from 'node:url'

export const BIN = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))

export interface CliResult {
  code: number
  stdout: string
  stderr: string
  /** stdout parsed as JSON, when it is JSON. */
  json?: any
}

/**
 * With NETKIT_BIN set, the tests drive that executable (the single binary)
 * instead, with PATH set to NETKIT_BIN_PATH (a directory holding the tools
 * netkit runs, and no node), so the binary is shown to need no Node.js.
 */
const BINARY = process.env.NETKIT_BIN
const BINARY_PATH = process.env.NETKIT_BIN_PATH

export function cli(args: string[], opts: {env?: Record<string, string>; input?: string; timeoutMs?: number} = {}): CliResult {
  const [file, argv] = BINARY ? [BINARY, args] : [process.execPath, [BIN, ...args]]
  const r = spawnSync(file, argv, {
    encoding: 'utf8',
    input: opts.input,
    env: {...process.env, ...(BINARY && BINARY_PATH ? {PATH: BINARY_PATH} : {}), ...opts.env},
    timeout: opts.timeoutMs ?? 60_000,
  })
  return cliResult(r)
}

/** What a finished netkit run printed, with stdout parsed when it is JSON. */
export function cliResult(r: {status: number | null; stdout: string; stderr: string}): CliResult {
  let json: unknown
  try {
    json = JSON.parse(r.stdout)
  } catch {
    json = undefined
  }
  return {code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, json}
}

/** Starts the CLI without waiting (for tests that talk to it or signal it); stdin, stdout and stderr are pipes. */
export function cliStart(args: string[], opts: {env?: Record<string, string>} = {}): ChildProcess {
  const [file, argv] = BINARY ? [BINARY, args] : [process.execPath, [BIN, ...args]]
  return spawn(file, argv, {stdio: 'pipe', env: {...process.env, ...(BINARY && BINARY_PATH ? {PATH: BINARY_PATH} : {}), ...opts.env}})
}

/** Resolves when the child's stderr has printed text matching `re` (rejects after timeoutMs or if it exits first); returns all of its stderr so far. */
export function stderrUntil(child: ChildProcess, re: RegExp, timeoutMs = 30_000): Promise<string> {
  let text = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${re} on stderr within ${timeoutMs} ms: ${text}`)), timeoutMs)
    child.once('exit', () => reject(new Error(`exited before ${re} on stderr: ${text}`)))
    child.stderr!.on('data', (d: Buffer) => {
      text += d
      if (re.test(text)) {
        clearTimeout(timer)
        resolve(text)
      }
    })
  })
}

/** The child's exit status (128 + n when a signal ended it). */
export function exitOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? 128 + (signal === 'SIGINT' ? 2 : signal === 'SIGHUP' ? 1 : 15))))
}
