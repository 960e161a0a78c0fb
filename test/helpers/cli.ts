/** Runs the built CLI (bin/run.js) as a user would, and returns what it printed. */
import {spawnSync} from 'node:child_process'
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
  let json: unknown
  try {
    json = JSON.parse(r.stdout)
  } catch {
    json = undefined
  }
  return {code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, json}
}
