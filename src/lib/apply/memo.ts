/**
 * The no-op shortcut. After a verified apply (or a plan that found nothing to
 * do) netkit keeps, per namespace it ran in, the digest of the host file's text
 * and the digest of everything the comparison read: `ip -j` output (without
 * the timers that count down by themselves), xfrm policies, sysctls, table
 * names, namespaces, tunnel definitions and the ledger. Re-applying the same
 * file repeats exactly those reads and compares digests: equal means the host
 * is byte for byte as the verified apply left it, so there is nothing to do,
 * and the file need not even be parsed. Any difference at all, and the whole
 * comparison runs. Files with tunnels or SAs never take the shortcut (their
 * desired state also depends on key files, and tunnels on routes, outside the
 * host file).
 *
 * The same file also keeps, per namespace, the digest of the last host file an
 * apply verified there (or found the host already matching), with or without
 * tunnels: `apply --try --detach` asks it to choose who plans (pending.ts,
 * `plansFirst`). Only what a mutating apply kept is recorded: a change undone
 * (failed, rolled back, not confirmed in time) leaves the record as it was.
 */
import {createHash} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {writeFileAtomic} from '../files.js'
import {stateDir} from '../ownership.js'
import type {Foreign} from './compare.js'
import type {ReadRecipe} from './live.js'

/** Bump when what a comparison depends on changes meaning. */
const FORMAT = 4

export interface Memo {
  file: string
  state: string
  recipes: ReadRecipe[]
  unchanged: number
  foreign: Foreign[]
}

const memoPath = () => join(stateDir(), 'apply-memo.json')

/** The host file's identity: its text, how it is parsed (YAML or JSON) and netkit's version. */
export function fileDigest(text: string, source: string, version: string): string {
  return createHash('sha256')
    .update(`${FORMAT} ${version} ${source.endsWith('.json') ? 'json' : 'yaml'}\0`)
    .update(text)
    .digest('hex')
}

interface MemoFile {
  format?: number
  memos?: Record<string, Memo>
  /** Per ledger scope: the fileDigest of the last file applied and verified there (or found matching). */
  applied?: Record<string, string>
}

function loadFile(): {memos: Record<string, Memo>; applied: Record<string, string>} {
  try {
    const data = JSON.parse(readFileSync(memoPath(), 'utf8')) as MemoFile
    return data.format === FORMAT ? {memos: data.memos ?? {}, applied: data.applied ?? {}} : {memos: {}, applied: {}}
  } catch {
    return {memos: {}, applied: {}}
  }
}

export function loadMemo(ledgerScope: string, file: string): Memo | undefined {
  const m = loadFile().memos[ledgerScope]
  return m?.file === file ? m : undefined
}

/** The digest of the last file applied and verified in this scope (or found matching), if any. */
export function lastApplied(ledgerScope: string): string | undefined {
  return loadFile().applied[ledgerScope]
}

/** Keeps (or drops, undefined) the scope's memo, and records `applied` as the scope's last file applied and verified. */
export function saveMemo(ledgerScope: string, memo: Memo | undefined, applied: string): void {
  const all = loadFile()
  if (!memo && !all.memos[ledgerScope] && all.applied[ledgerScope] === applied) return
  if (memo) all.memos[ledgerScope] = memo
  else delete all.memos[ledgerScope]
  all.applied[ledgerScope] = applied
  writeFileAtomic(memoPath(), JSON.stringify({format: FORMAT, memos: all.memos, applied: all.applied}) + '\n', 0o600, 0o700)
}
