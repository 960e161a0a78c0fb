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

export function cli(args: string[], opts: {env?: Record<string, string>; input?: string; timeoutMs?: number} = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    input: opts.input,
    env: {...process.env, ...opts.env},
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
