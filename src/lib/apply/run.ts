/**
 * `netkit diff` and `netkit apply`: the plan from the host file against the
 * live state, executed with all iproute2 changes in one `ip -batch -`, then
 * read back and verified (as nmstate verifies). Any failure, or a failed
 * verification, undoes everything already done, so the host is as before.
 * `--try SECONDS` keeps the change only if it is confirmed in time (as
 * `netplan try` does), so a change made over SSH cannot lock anyone out.
 */
import {NetkitError} from '../errors.js'
import {addTable, delTable} from '../iproute2/tables.js'
import {type OwnedKind, owned, recordMany, scopeOf} from '../ownership.js'
import type {BatchLine, Runner} from '../runner.js'
import type {Obj} from './model.js'
import {appliedKey, type Change, computePlan, desiredObjects, liveObjects, type Plan} from './plan.js'
import type {HostFile} from './schema.js'

export async function planHost(runner: Runner, file: HostFile): Promise<Plan> {
  const desired = desiredObjects(file)
  return computePlan(runner, desired, await liveObjects(runner, desired))
}

type Op = {lines: BatchLine[]} | {sysctl: {path: string; value: string}} | {table: {add?: {name: string; id: number}; del?: string}}

function forward(c: Change, original: (path: string) => string | undefined): Op[] {
  const d = c.desired
  const l = c.live
  const o = (d ?? l)!
  if (o.kind === 'sysctl') {
    if (c.action === 'remove') {
      const before = original(o.key)
      return before === undefined ? [] : [{sysctl: {path: o.key, value: before}}]
    }
    return [{sysctl: d!.sysctl!}]
  }
  if (o.kind === 'table') {
    if (c.action === 'add') return [{table: {add: d!.table}}]
    if (c.action === 'remove') return [{table: {del: l!.key}}]
    return [{table: {del: l!.key}}, {table: {add: d!.table}}]
  }
  if (c.action === 'add') return [{lines: d!.add}]
  if (c.action === 'remove') return [{lines: l!.del}]
  if (o.kind === 'link' && settingsOnly(d!, l!)) return [{lines: linkSet(d!, l!)}]
  return [{lines: [...l!.del, ...d!.add]}]
}

const LINK_SETTINGS = new Set(['mtu', 'master', 'up'])

/** A link whose type and wiring match, and only its MTU, bridge or state differ: changed in place. */
function settingsOnly(d: Obj, l: Obj): boolean {
  return Object.entries(d.attrs).every(([k, want]) => want === undefined || LINK_SETTINGS.has(k) || String(l.attrs[k] ?? '') === String(want))
}

/** `ip link set` lines that take link `from` to the settings of `to`. */
function linkSet(to: Obj, from: Obj, exact = false): BatchLine[] {
  const args: string[] = []
  if (to.attrs.mtu !== undefined && to.attrs.mtu !== from.attrs.mtu) args.push('mtu', String(to.attrs.mtu))
  // The file's silence about a bridge means "whatever"; undoing puts back exactly what was there.
  if ((exact || to.attrs.master !== undefined) && to.attrs.master !== from.attrs.master) args.push(...(to.attrs.master ? ['master', String(to.attrs.master)] : ['nomaster']))
  if (to.attrs.up !== undefined && Boolean(to.attrs.up) !== Boolean(from.attrs.up)) args.push(to.attrs.up ? 'up' : 'down')
  return args.length ? [{args: ['link', 'set', to.key, ...args], object: to.desc}] : []
}

function inverse(c: Change): Op[] {
  const d = c.desired
  const l = c.live
  const o = (d ?? l)!
  if (o.kind === 'sysctl') return l ? [{sysctl: l.sysctl!}] : []
  if (o.kind === 'table') {
    if (c.action === 'add') return [{table: {del: d!.key}}]
    if (c.action === 'remove') return [{table: {add: l!.table}}]
    return [{table: {del: d!.key}}, {table: {add: l!.table}}]
  }
  if (c.action === 'add') return [{lines: d!.del}]
  if (c.action === 'remove') return [{lines: l!.add}]
  if (o.kind === 'link' && settingsOnly(d!, l!)) return [{lines: linkSet(l!, d!, true)}]
  return [{lines: [...d!.del, ...l!.add]}]
}

async function runOps(runner: Runner, ops: Op[], opts: {force?: boolean} = {}): Promise<void> {
  let pending: BatchLine[] = []
  const flush = async () => {
    // Undoing (force) goes on past lines that fail: what they undo may never have happened.
    if (pending.length) await (opts.force ? runner.batch(pending, undefined, opts).catch(() => undefined) : runner.batch(pending, undefined, opts))
    pending = []
  }
  for (const op of ops) {
    if ('lines' in op) {
      pending.push(...op.lines)
      continue
    }
    await flush()
    if ('sysctl' in op) {
      const p = runner.run({tool: 'sysctl', args: ['-q', '-w', `${op.sysctl.path}=${op.sysctl.value}`], object: `sysctl ${op.sysctl.path.replaceAll('/', '.')}`})
      await (opts.force ? p.catch(() => undefined) : p)
    } else {
      try {
        if (op.table.del) delTable(op.table.del, {dryRun: runner.dryRun})
        if (op.table.add) addTable(op.table.add.name, op.table.add.id, {dryRun: runner.dryRun})
      } catch (error) {
        if (!opts.force) throw error
      }
    }
  }
  await flush()
}

function record(runner: Runner, changes: Change[], undo = false): void {
  if (runner.dryRun) return
  const scope = scopeOf(runner.netns)
  const ledger = owned(scope, 'applied')
  const claims: {kind: OwnedKind; key: string; meta?: Record<string, unknown>}[] = []
  const releases: {kind: OwnedKind; key: string}[] = []
  for (const c of changes) {
    const o = (c.desired ?? c.live) as Obj
    const k = appliedKey(o)
    const extra: OwnedKind | undefined = o.kind === 'addr' ? 'addr' : o.kind === 'xfrm-policy' ? 'xfrm-policy' : undefined
    if ((c.action !== 'remove') !== undo) {
      claims.push({kind: 'applied', key: k, ...(o.kind === 'sysctl' ? {meta: {original: ledger[k]?.meta?.original ?? c.live?.sysctl?.value}} : {})})
      if (extra) claims.push({kind: extra, key: o.key})
    } else {
      releases.push({kind: 'applied', key: k})
      if (extra) releases.push({kind: extra, key: o.key})
    }
  }
  recordMany(scope, claims, releases)
}

export interface ApplyResult {
  changes: {action: string; kind: string; object: string; why?: string}[]
  unchanged: number
  changed: boolean
  verified: boolean
  rolledBack: boolean
  kept: boolean
}

export function describePlan(plan: Plan): ApplyResult['changes'] {
  return plan.changes.map((c) => ({action: c.action, kind: c.kind, object: c.desc, ...(c.why ? {why: c.why} : {})}))
}

export async function applyHost(runner: Runner, file: HostFile, opts: {trySeconds?: number; confirm?: (seconds: number) => Promise<boolean>; log?: (l: string) => void} = {}): Promise<ApplyResult> {
  const plan = await planHost(runner, file)
  const result: ApplyResult = {changes: describePlan(plan), unchanged: plan.unchanged, changed: plan.changes.length > 0, verified: false, rolledBack: false, kept: true}
  if (plan.changes.length === 0) {
    result.verified = true
    return result
  }
  const ledger = owned(scopeOf(runner.netns), 'applied')
  const original = (path: string) => ledger[`sysctl:${path}`]?.meta?.original as string | undefined
  const ops = plan.changes.flatMap((c) => forward(c, original))
  const undoAll = async (changes: Change[]) => {
    await runOps(runner, changes.slice().reverse().flatMap(inverse), {force: true})
    record(runner, changes, true)
    result.rolledBack = true
  }
  try {
    await runOps(runner, ops)
  } catch (error) {
    // Undo every change, forcing past the ones that never happened: the inverse of a change not
    // made deletes what is not there or re-adds what still is, and both are ignored.
    if (!runner.dryRun) await undoAll(plan.changes)
    throw error
  }
  record(runner, plan.changes)
  if (runner.dryRun) return result
  const after = await planHost(runner, file)
  if (after.changes.length > 0) {
    await undoAll(plan.changes)
    throw new NetkitError('E_VERIFY', `the host does not match the file after applying: ${after.changes.slice(0, 3).map((c) => `${c.action} ${c.desc}`).join('; ')}`, {fix: 'the change was undone; run "netkit diff -f FILE" and check what else manages these objects'})
  }
  result.verified = true
  if (opts.trySeconds !== undefined) {
    opts.log?.(`applied; keeping it only if you confirm within ${opts.trySeconds} s`)
    const ok = opts.confirm ? await opts.confirm(opts.trySeconds) : false
    if (!ok) {
      await undoAll(plan.changes)
      result.kept = false
    }
  }
  return result
}

/** Devices that belong to tunnels ("netkit tunnel" manages them, not a host file). */
const TUNNEL_DEV = /^(wg-|vx-|ipsec\d)/

/** netkit's own state (what a previous apply or the primitives made), as a host file. */
export async function exportHost(runner: Runner): Promise<Record<string, unknown>> {
  const live = await liveObjects(runner, [])
  const applied = owned(scopeOf(runner.netns), 'applied')
  const mine = live.filter((o) => (o.owned || applied[appliedKey(o)]) && !(o.kind === 'link' && TUNNEL_DEV.test(o.key)) && !(o.kind === 'route' && TUNNEL_DEV.test(String(o.attrs.dev ?? ''))))
  const seen = new Set<string>()
  // A veth pair is one entry (one end makes both): the end in a bridge, which carries more.
  mine.sort((a, b) => Number(Boolean(b.kind === 'link' && b.attrs.master)) - Number(Boolean(a.kind === 'link' && a.attrs.master)))
  const pairs = mine.filter((o) => {
    if (o.kind !== 'link' || o.attrs.type !== 'veth') return true
    if (seen.has(o.key)) return false
    seen.add(String(o.attrs.peer))
    return true
  })
  const of = (k: string) => pairs.filter((o) => o.kind === k).map((o) => o.entry!)
  const out: Record<string, unknown> = {version: 1}
  const tables = Object.fromEntries(mine.filter((o) => o.kind === 'table').map((o) => [o.table!.name, o.table!.id]))
  if (Object.keys(tables).length) out.tables = tables
  for (const [key, kind] of [['links', 'link'], ['addresses', 'addr'], ['routes', 'route'], ['rules', 'rule'], ['proxyArp', 'proxy'], ['xfrmPolicies', 'xfrm-policy']] as const) {
    const list = of(kind)
    if (list.length) out[key] = list
  }
  const sysctls = Object.keys(applied).filter((k) => k.startsWith('sysctl:')).map((k) => k.slice(7))
  if (sysctls.length) {
    const values = live.filter((o) => o.kind === 'sysctl')
    out.sysctls = Object.fromEntries(sysctls.map((p) => [p.replaceAll('/', '.'), values.find((o) => o.key === p)?.sysctl?.value]))
  }
  return out
}
