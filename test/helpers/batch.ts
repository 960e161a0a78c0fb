/**
 * Many netkit command lines in one Node process (batch-child.ts): for
 * table-driven tests with thousands of cases that are refused before any tool
 * runs, where one process per case (about 0.3 s each) would take many
 * minutes. Each case runs as bin/run.js runs it (the bundle, oclif's `run`);
 * a test should check a sample against the real CLI (`cli`) to show the fast
 * path answers the same.
 */
import {spawnSync} from 'node:child_process'
import {fileURLToPath} from 'node:url'

import type {CliResult} from './cli.js'
import type {SimHost} from './realhost.js'

const CHILD = fileURLToPath(new URL('batch-child.js', import.meta.url))

/** Runs the command lines in order, in one process: on the machine, or inside a simulated host (with its defaults, no NETKIT_* variables). */
export function cliBatch(
  cases: string[][],
  opts: {host?: SimHost; env?: Record<string, string>; cwd?: string; timeoutMs?: number} = {},
): (CliResult & {ms: number})[] {
  if (cases.length === 0) return []
  const argv = [process.execPath, CHILD]
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!opts.host || !k.startsWith('NETKIT_')) env[k] = v
  const [file, args] = opts.host ? ['nsenter', ['-t', String(opts.host.pid), '-m', '-p', '-n', '-u', '--', ...argv]] : [argv[0], argv.slice(1)]
  const r = spawnSync(file, args, {
    encoding: 'utf8',
    input: JSON.stringify(cases),
    env: {...env, ...opts.env},
    cwd: opts.cwd,
    timeout: opts.timeoutMs ?? 300_000,
    maxBuffer: 256 * 1024 * 1024,
  })
  if (r.status !== 0) throw new Error(`the batch of ${cases.length} command lines failed (status ${r.status}, signal ${r.signal}): ${r.stderr.slice(-2000)}`)
  return (JSON.parse(r.stdout) as {ms: number; code: number; stdout: string; stderr: string}[]).map((x) => ({...x, json: parse(x.stdout)}))
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
