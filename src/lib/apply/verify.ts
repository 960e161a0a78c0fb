/**
 * After the change: the host read back and compared again (verify), and
 * after an undo, what did not come back.
 */
import {NetkitError} from '../errors.js'
import {netnsExists} from '../iproute2/netns.js'
import {phase} from '../timing.js'
import {inNamespace} from '../wording.js'
import {compareScope, type Foreign} from './compare.js'
import {appliedIn} from './ledger.js'
import {digestOf, objectsOf, readLive, recipeOf} from './live.js'
import type {Kind} from '../kinds/index.js'
import type {UndoFailures} from './ops.js'
import type {Change, Plan} from './plan.js'

const KEPT_KINDS = new Set<Kind>(['link', 'addr', 'route', 'rule', 'proxy', 'xfrm-policy'])

/**
 * After an undo, the state read back and compared with the state the plan
 * was made from: `missing`, what was there and is not now (deleted by the
 * kernel along with something, or an undo line that failed); `left`, what the
 * plan added and is still there (an undo line that failed or never ran).
 * Both empty when the host is back as it was; an error then says it.
 */
export async function undoOutcome(plan: Plan): Promise<{missing: string[]; left: string[]}> {
  const missing: string[] = []
  const left: string[] = []
  for (const [i, s] of plan.scopes.entries()) {
    const before = (plan.before?.[i] ?? []).filter((o) => !o.auto && KEPT_KINDS.has(o.kind))
    const added = plan.changes.filter((c) => c.netns === s.netns && c.action === 'add' && KEPT_KINDS.has(c.kind))
    const where = inNamespace(s.runner.netns)
    if (s.netns && !netnsExists(s.netns)) {
      if (before.length) missing.push(`namespace ${s.netns} (with ${before.length} objects)`)
      continue
    }
    if (s.fresh) {
      // A namespace the plan made, there still.
      left.push(`namespace ${s.netns}`)
      continue
    }
    if (before.length === 0 && added.length === 0) continue
    const now = new Set(objectsOf(await readLive(s.runner, recipeOf({...s, fresh: false})), s).map((o) => o.id))
    for (const o of before) if (!now.has(o.id)) missing.push(`${o.desc}${where}`)
    const was = new Set(before.map((o) => o.id))
    for (const c of added) if (now.has(c.desired!.id) && !was.has(c.desired!.id)) left.push(`${c.desc}${where}`)
  }
  return {missing, left}
}

/**
 * What still differs after applying: every scope read again and compared
 * (desired objects are not made again). The reads start at once, and the
 * ledger is written (`record`) while `ip` dumps; what is read covers at least
 * what the ledger then names (it can only have lost kinds the file no longer has).
 */
export async function verify(plan: Plan, record: () => void): Promise<{left: Change[]; reads: Plan['reads']; foreign: Foreign[]}> {
  const scopes = plan.scopes.filter((s) => !s.netns || netnsExists(s.netns))
  const pending = Promise.all(scopes.map((s) => readLive(s.runner, recipeOf({...s, fresh: false}))))
  record()
  // What apply owns now, worked out while ip dumps (nothing else writes the ledger meanwhile: the host lock).
  const now = scopes.map((s) => ({...s, fresh: false, applied: appliedIn(s.ledger, s.owner)}))
  phase('v:recorded')
  const reads = await pending
  phase('v:read')
  const compared = now.map((s, i) => compareScope(s, objectsOf(reads[i], s)))
  phase('v:compared')
  return {
    left: compared.flatMap((c) => c.changes),
    foreign: compared.flatMap((c) => c.foreign),
    reads: {recipes: reads.map((r) => r.recipe), digest: digestOf(reads)},
  }
}

/**
 * After an undo, the host is read back: what did not come back (the kernel
 * deleted it along with something the change removed, or putting it back
 * failed) and what the change made and the undo could not remove are said,
 * with the error that caused the undo: "undone" is claimed only when it is true.
 */
export async function sayWhatStayedGone(plan: Plan, failed: UndoFailures, error?: unknown): Promise<void> {
  const {missing, left} = await undoOutcome(plan).catch(() => ({missing: [] as string[], left: [] as string[]}))
  if (missing.length === 0 && left.length === 0) return
  const cause = error instanceof NetkitError ? error : undefined
  const list = (xs: string[]) => `${xs.slice(0, 5).join(', ')}${xs.length > 5 ? ` and ${xs.length - 5} more` : ''}`
  const parts = [
    ...(missing.length
      ? [
          `undoing could not bring back ${list(missing)} (${failed.length ? 'putting it back failed, or ' : ''}the kernel deleted ${missing.length === 1 ? 'it' : 'them'} along with something the change removed)`,
        ]
      : []),
    ...(left.length ? [`undoing could not remove ${list(left)}, which the change made`] : []),
  ]
  throw new UndoIncomplete(cause?.code ?? 'E_UNDO_INCOMPLETE', `${cause ? `${cause.what}; ` : ''}${parts.join('; ')}`, {
    fix: `${missing.length ? 'put them back' : 'remove them'}${missing.length && left.length ? ', or remove them,' : ''} by hand ("netkit diff -f FILE" of the earlier file shows what differs)`,
    detail: [cause?.detail, failed.length ? `undo steps that failed: ${failed.slice(0, 10).join('; ')}` : undefined].filter(Boolean).join('\n') || undefined,
    command: cause?.command,
  })
}

export class UndoIncomplete extends NetkitError {}
