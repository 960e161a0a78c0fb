/**
 * The metrics file for node_exporter's textfile collector. The collector may
 * read it at any moment: it is written beside itself under a name the
 * collector ignores (not *.prom) and renamed over the old one (files.ts), so
 * a scrape sees the old file or the new, never half of one. Mode 0644: the
 * collector usually runs as its own user.
 */
import {statSync} from 'node:fs'
import {dirname, resolve} from 'node:path'

import {UsageError} from '../errors.js'
import {writeFileAtomic} from '../files.js'

/** Refuses, before anything is read, a path that cannot be written as a metrics file. */
export function checkOutputPath(path: string): void {
  const full = resolve(path)
  const dir = dirname(full)
  let st
  try {
    st = statSync(dir)
  } catch {
    throw new UsageError(
      `-o ${path}: the directory ${dir} does not exist`,
      `create it first (node_exporter reads the directory given to --collector.textfile.directory)`,
    )
  }
  if (!st.isDirectory()) throw new UsageError(`-o ${path}: ${dir} is not a directory`, 'give a file path in an existing directory')
  try {
    if (statSync(full).isDirectory()) throw new UsageError(`-o ${path} is a directory`, 'give a file path, e.g. ' + `${full.replace(/\/$/, '')}/netkit.prom`)
  } catch (error) {
    if (error instanceof UsageError) throw error
  }
}

export function writeMetricsFile(path: string, text: string): void {
  writeFileAtomic(resolve(path), text, 0o644)
}
