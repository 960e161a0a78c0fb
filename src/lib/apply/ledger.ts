/**
 * Apply's part of the ledger (ownership.ts): which objects an apply made
 * (recorded as "applied"), read for the plan and written after the changes.
 */
import {owned, type OwnedEntry, type OwnedKind, recordMany} from '../ownership.js'
import {Obj, StateObj} from '../kinds/index.js'
import type {Kind} from '../kinds/index.js'
import {sysctlOf} from './ops.js'
import type {Change, Scope} from './plan.js'

/** Apply's records of a scope that belong to `owner` (see Scope.owner). */
export function appliedIn(ledger: string, owner: string | null | undefined): Record<string, OwnedEntry> {
  const all = owned(ledger, 'applied')
  if (owner === undefined) return all
  // A copy (the ledger's cache changes in place when apply records), made in one loop: tens of thousands of records.
  const mine: Record<string, OwnedEntry> = {}
  for (const k in all) if ((all[k].meta?.by ?? null) === owner) mine[k] = all[k]
  return mine
}

/** An object's name in the ledger's "applied" records: its id (kind and key). */
export function appliedKey(o: {kind: Kind; key: string}): string {
  return o instanceof Obj ? o.id : `${o.kind}:${o.key}`
}

type Claim = {kind: OwnedKind; key: string; meta?: Record<string, unknown>}

/**
 * The ledger after the changes (or, undoing, as before them): one write per
 * namespace. `prior`: the changes whose object was apply's before (undoing
 * one of those leaves it apply's; any other changed object, such as a sysctl,
 * is apply's no more).
 */
export function record(scopes: Scope[], changes: Change[], undo?: {prior: Set<Change>}): void {
  // In a namespace of the file, apply's records say which apply made them (the scope it ran in), so that
  // one that leaves the file can be emptied of exactly those (desiredScopes).
  const top = scopes[0].ledger
  for (const scope of scopes) {
    const by = scope.ledger === top ? {} : {by: top}
    if (scope.runner.dryRun) return
    const mine = changes.filter((c) => c.netns === scope.netns)
    if (mine.length === 0) continue
    const claims: Claim[] = []
    const releases: {kind: OwnedKind; key: string}[] = []
    const applied = owned(scope.ledger, 'applied')
    for (const c of mine) {
      // Undoing a change leaves the object as it was, and as much apply's as it was; one made again stays as much apply's as it was.
      if (undo?.prior.has(c) || c.again) continue
      const o = (c.desired ?? c.live) as Obj
      const k = appliedKey(o)
      const extra: OwnedKind | undefined =
        o.kind === 'addr' ? 'addr' : o.kind === 'xfrm-policy' ? 'xfrm-policy' : o.kind === 'xfrm-state' ? 'xfrm-state' : undefined
      if ((c.action !== 'remove') !== Boolean(undo)) {
        // (Built field by field, not spread: apply records tens of thousands at once.)
        const claim: Claim = {kind: 'applied', key: k}
        if (o.kind === 'sysctl') claim.meta = {original: applied[k]?.meta?.original ?? (c.live ? sysctlOf(c.live).value : c.before), ...by}
        else if ('by' in by) claim.meta = by
        claims.push(claim)
        // An SA's key files go with it in the ledger: export writes them back (the keys themselves never).
        const keyFiles = o.kind === 'xfrm-state' ? (o as StateObj).keyFiles : undefined
        if (extra) claims.push({kind: extra, key: o.key, ...(keyFiles ? {meta: {keyFiles}} : {})})
      } else {
        releases.push({kind: 'applied', key: k})
        if (extra) releases.push({kind: extra, key: o.key})
      }
    }
    // A namespace that is gone has no ledger left to update (deleting it dropped it).
    if (scope.netns && !undo && changes.some((c) => c.kind === 'netns' && c.action === 'remove' && c.live?.key === scope.netns)) continue
    recordMany(scope.ledger, claims, releases)
  }
}
