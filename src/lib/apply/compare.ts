/**
 * Stage 3, the comparison: desired against live, scope by scope, with
 * ownership from the ledger, in an order that works.
 */
import {NetkitError} from '../errors.js'
import {inNamespace} from '../wording.js'
import {differences, type Kind, KIND_ORDER, KINDS, type Obj} from '../kinds/index.js'
import type {Change, Scope} from './plan.js'

const ORDER = KIND_ORDER

/** One scope's changes: desired against live, with ownership from the ledger. */
/** What is reported as foreign: objects the file could describe (SPD and SAD entries aside: IKE daemons own theirs). */
const FOREIGN_KINDS = new Set<Kind>(['link', 'addr', 'route', 'rule', 'proxy'])

export interface Foreign {
  kind: Kind
  object: string
  netns?: string
}

/** A list of desired objects' ids, and the first object listed twice; kept for the list (see desiredIds). */
type DesiredIds = {size: number; ids: Set<string>; twice?: Obj}
const idsOf = new WeakMap<Obj[], DesiredIds>()

/**
 * The ids of a scope's desired objects, and the first one listed twice: made once for the list, which the
 * duplicate check (guards.ts), the plan's comparison and verify's all need (tens of thousands of ids).
 */
export function desiredIds(desired: Obj[]): DesiredIds {
  const known = idsOf.get(desired)
  if (known && known.size === desired.length) return known
  const ids = new Set<string>()
  let twice: Obj | undefined
  for (const o of desired) {
    if (ids.has(o.id)) twice ??= o
    else ids.add(o.id)
  }
  const made: DesiredIds = {size: desired.length, ids, ...(twice ? {twice} : {})}
  idsOf.set(desired, made)
  return made
}

export function compareScope(scope: Scope, live: Obj[]): {changes: Change[]; unchanged: number; foreign: Foreign[]} {
  const byKey = new Map<string, Obj>()
  for (const o of live) byKey.set(o.id, o)
  const {applied} = scope
  const changes: Change[] = []
  let unchanged = 0
  const wanted = desiredIds(scope.desired).ids
  const netns = scope.netns
  for (const d of scope.desired) {
    const k = d.id
    const l = byKey.get(k)
    if (!l) {
      changes.push({action: 'add', kind: d.kind, desc: d.desc, netns, desired: d})
      continue
    }
    if (d.matches(l)) {
      unchanged++
      continue
    }
    const diff = differences(d, l)
    // A tunnel is netkit's own (its store): one that is only down is brought up whoever made it.
    const mine =
      d.kind === 'sysctl' ||
      Boolean(applied[k]) ||
      (d.kind === 'table' && l.owned) ||
      ((d.kind === 'tunnel' || d.kind === 'wg-peer') && diff.length === 1 && diff[0] === 'it is down')
    if (!mine) {
      throw new NetkitError(
        'E_CONFLICT',
        `${l.desc}${inNamespace(netns)} is there and differs from the file (${diff.join('; ')}), and netkit's apply did not make it`,
        {fix: 'netkit never changes objects it did not make: remove or rename it, or change the file to match'},
      )
    }
    changes.push({action: 'change', kind: d.kind, desc: d.desc, netns, live: l, desired: d, why: diff.join('; ')})
  }
  // (for-in: no list of the ledger's tens of thousands of keys)
  for (const k in applied) {
    if (wanted.has(k)) continue
    const l = byKey.get(k)
    if (l) changes.push({action: 'remove', kind: l.kind, desc: l.desc, netns, live: l})
  }
  // Not netkit's, not in the file: reported, never touched.
  const foreign: Foreign[] = []
  for (const o of live) {
    if (!o.owned && !o.auto && FOREIGN_KINDS.has(o.kind) && !wanted.has(o.id) && !applied[o.id])
      foreign.push({kind: o.kind, object: o.desc, ...(netns ? {netns} : {})})
  }
  return {changes: order(changes), unchanged, foreign}
}

/** Removals first (last kind first), then additions and changes by kind; bridges before the links that join them. */
export function order(changes: Change[]): Change[] {
  const buckets: Change[][] = Array.from({length: KINDS.length * 2}, () => [])
  for (const c of changes) buckets[c.action === 'remove' ? KINDS.length - 1 - ORDER[c.kind] : KINDS.length + ORDER[c.kind]].push(c)
  const rank = (c: Change) => {
    const t = (c.desired ?? c.live)!.attrs.type
    return t === 'bridge' ? 0 : t === 'veth' ? 1 : 2
  }
  buckets[KINDS.length - 1 - ORDER.link].sort((a, b) => rank(b) - rank(a))
  buckets[KINDS.length + ORDER.link].sort((a, b) => rank(a) - rank(b))
  return buckets.flat()
}
