/**
 * The versions of the tools netkit wraps, as `TOOL --version` says, asked
 * once per binary: the answer is kept in the state directory
 * (tool-versions.json, gone at reboot with /run) under the binary's path, and
 * is used again while the file there is the same one (inode, size and
 * modification time: a package upgrade replaces it). The doctor asks on every
 * run, and a fleet's verification or a metrics timer runs it often: six
 * processes each time before.
 */
import {statSync} from 'node:fs'
import {delimiter, join} from 'node:path'

import {readJsonFile, writeFileAtomic} from './files.js'
import {stateDir} from './ownership.js'
import type {ExecResult} from './runner.js'

interface Entry {
  ino: number
  size: number
  mtimeMs: number
  /** What the tool printed, exit status and output. */
  result: ExecResult
}

const cachePath = () => join(stateDir(), 'tool-versions.json')

/** Where `name` is run from: itself if it is a path, else the first executable file of that name on PATH. */
export function whichTool(name: string, path = process.env.PATH ?? ''): string | undefined {
  const candidates = name.includes('/')
    ? [name]
    : path
        .split(delimiter)
        .filter(Boolean)
        .map((d) => join(d, name))
  for (const c of candidates) {
    try {
      const s = statSync(c)
      if (s.isFile() && s.mode & 0o111) return c
    } catch {
      // not there
    }
  }
  return undefined
}

/**
 * What `probe` gives for `tool` (a `--version` run), from the cache when the binary
 * is the one it was asked of; a tool that is not there is always asked (it may come).
 */
export async function toolVersion(tool: string, probe: () => Promise<ExecResult>): Promise<ExecResult> {
  const at = whichTool(tool)
  if (!at) return probe()
  const cache = readJsonFile<Record<string, Entry>>(cachePath()) ?? {}
  const s = statSync(at)
  const hit = cache[at]
  if (hit && hit.ino === s.ino && hit.size === s.size && hit.mtimeMs === s.mtimeMs) return hit.result
  const result = await probe()
  if (result.exitCode === 127 || result.timedOut) return result
  try {
    // Read again just before writing: another netkit may have added its own answers meanwhile.
    const now = readJsonFile<Record<string, Entry>>(cachePath()) ?? {}
    now[at] = {ino: s.ino, size: s.size, mtimeMs: s.mtimeMs, result: {exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr}}
    writeFileAtomic(cachePath(), `${JSON.stringify(now)}\n`, 0o644, 0o755)
  } catch {
    // A state directory that cannot be written (not root): asked again next time.
  }
  return result
}
