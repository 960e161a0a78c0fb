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

function loadAll(): Record<string, Memo> {
  try {
    const data = JSON.parse(readFileSync(memoPath(), 'utf8')) as {format?: number; memos?: Record<string, Memo>}
    return data.format === FORMAT && data.memos ? data.memos : {}
  } catch {
    return {}
  }
}

export function loadMemo(ledgerScope: string, file: string): Memo | undefined {
  const m = loadAll()[ledgerScope]
  return m?.file === file ? m : undefined
}

export function saveMemo(ledgerScope: string, memo: Memo | undefined): void {
  const all = loadAll()
  if (memo) all[ledgerScope] = memo
  else if (all[ledgerScope]) delete all[ledgerScope]
  else return
  writeFileAtomic(memoPath(), JSON.stringify({format: FORMAT, memos: all}) + '\n', 0o600, 0o700)
}
