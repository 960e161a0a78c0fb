/**
 * What the tools netkit wraps answer to their version option (`ip -V`,
 * `wg --version`, ...), as the doctor reports it: asked once per installed
 * binary and kept in the state directory (tool-versions.json) under the
 * binary's path, device, inode, size and change time. A package upgrade
 * replaces the file (a new inode and change time), so the next doctor asks
 * again; otherwise a doctor run starts none of these six processes (charon
 * and swanctl load their plugins to answer: about 35 ms of CPU together on
 * the 2-core machine, and as much again for node to start them). A cache that
 * cannot be read or written is ignored: the tools are asked, as without one.
 */
import {accessSync, constants, readFileSync, statSync} from 'node:fs'
import {delimiter, join} from 'node:path'

import {writeFileAtomic} from '../files.js'
import type {ExecResult, Runner} from '../runner.js'

export interface VersionProbe {
  /** The tool's name, as the runner runs it (found on PATH), or its absolute path. */
  tool: string
  args: string[]
}

/** Bump when what is kept changes meaning. */
const FORMAT = 1

interface Kept {
  /** `dev:ino:size:ctime` of the binary when it answered. */
  id: string
  args: string[]
  exitCode: number
  stdout: string
  stderr: string
}

/** The file PATH finds for a tool (as execvp would), or undefined: not found (the probe then says so). */
function locate(tool: string): string | undefined {
  const candidates = tool.includes('/')
    ? [tool]
    : (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter).map((d) => join(d || '.', tool))
  for (const file of candidates) {
    try {
      if (!statSync(file).isFile()) continue
      accessSync(file, constants.X_OK)
      return file
    } catch {
      // not there, or not executable: the next one
    }
  }
  return undefined
}

function identity(file: string): string {
  const s = statSync(file, {bigint: true})
  return `${s.dev}:${s.ino}:${s.size}:${s.ctimeNs}`
}

function readKept(cache: string): Record<string, Kept> {
  try {
    const data = JSON.parse(readFileSync(cache, 'utf8')) as {format?: number; tools?: Record<string, Kept>}
    return data.format === FORMAT && data.tools && typeof data.tools === 'object' ? data.tools : {}
  } catch {
    return {}
  }
}

/**
 * Each probe's result (exit code, output), in the order given: from `cache` (a file path) where the
 * binary is the one that answered last time, else by running it (outside any namespace) and keeping
 * the answer. Without `cache`, every probe runs.
 */
export async function toolVersions(runner: Runner, probes: VersionProbe[], cache?: string): Promise<ExecResult[]> {
  const run = (p: VersionProbe) => runner.probe({tool: p.tool, args: p.args, netns: null})
  if (!cache) return Promise.all(probes.map(run))
  const kept = readKept(cache)
  let changed = false
  const results = await Promise.all(
    probes.map(async (p) => {
      const file = locate(p.tool)
      let id: string | undefined
      try {
        id = file ? identity(file) : undefined
      } catch {
        id = undefined
      }
      const k = file ? kept[file] : undefined
      if (k && id && k.id === id && k.args.join('\0') === p.args.join('\0')) return {exitCode: k.exitCode, stdout: k.stdout, stderr: k.stderr}
      const r = await run(p)
      // Only a binary that ran and answered is kept (one that is missing is asked again next time).
      if (file && id && r.exitCode !== 127 && !r.timedOut) {
        kept[file] = {id, args: p.args, exitCode: r.exitCode, stdout: r.stdout.slice(0, 2000), stderr: r.stderr.slice(0, 2000)}
        changed = true
      }
      return r
    }),
  )
  if (changed) {
    try {
      writeFileAtomic(cache, `${JSON.stringify({format: FORMAT, tools: kept})}\n`, 0o644, 0o700)
    } catch {
      // A read-only or missing state directory: the next run asks again.
    }
  }
  return results
}
