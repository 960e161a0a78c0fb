/**
 * `netkit diff` and `netkit apply`: the plan from the host file against the
 * live state, executed as steps with listr2 progress (each namespace's
 * iproute2 changes in one `ip -batch -`; namespaces and tunnels through
 * netkit's own services), then read back and verified (as nmstate verifies).
 * Any failure, or a failed verification, undoes everything already done, so
 * the host is as before. `--try SECONDS` keeps the change only if it is
 * confirmed in time (as `netplan try` does), so a change made over SSH cannot
 * lock anyone out.
 */
import {existsSync, readFileSync} from 'node:fs'
import {availableParallelism} from 'node:os'

import {NetkitError, UsageError} from '../errors.js'
import {configDir} from '../files.js'
import {addNetns, delNetns, netnsExists} from '../iproute2/netns.js'
import {lockHost} from '../lock.js'
import {addTable, delTable, ensureProtoName} from '../iproute2/tables.js'
import {getSysctls} from '../sysctl.js'
import {type OwnedKind, owned, recordMany, scopeOf} from '../ownership.js'
import {Interruption, rollback, runPlan, type Step} from '../plan.js'
import {type BatchError, type BatchLine, type Runner, Secret} from '../runner.js'
import {phase} from '../timing.js'
import {addTunnel, delTunnel, downTunnel, requireDef, setPeers, upTunnel} from '../tunnel/service.js'
import type {TunnelDef, TunnelStatus, WgPeer} from '../tunnel/types.js'
import {checkPeerSet, isInterface, withPeers} from '../tunnel/wireguard/peers.js'
import {scopeDir} from '../tunnel/store.js'
import {
  KIND_ORDER,
  LinkObj,
  type Obj,
  type PeerObj,
  type RouteObj,
  settingsOnly,
  type StateObj,
  type SysctlObj,
  type TableObj,
  type TunnelObj,
} from './model.js'
import {fileDigest, loadMemo, saveMemo} from './memo.js'
import {
  appliedIn,
  appliedKey,
  type Change,
  compareScope,
  type Foreign,
  computePlan,
  desiredScopes,
  digestOf,
  type LiveRead,
  objectsOf,
  type Plan,
  readLive,
  recipeOf,
  type Scope,
  statusKey,
  undoOutcome,
} from './plan.js'
import {inNamespace} from '../wording.js'

/** A host file as read: its text, where it came from (its name says YAML or JSON), and the netkit version reading it. */
export interface HostInput {
  text: string
  source: string
  version: string
}

/** A host file as messages name it. */
export const hostFileName = (path: string) => (path === '-' ? 'the file on standard input' : path)

/** The text of a host file, or of standard input for "-" (parsed later, and only when the memo cannot tell the plan). */
export function readHostText(path: string): {text: string; source: string} {
  try {
    // YAML 1.2 reads JSON too, so standard input needs no format.
    return path === '-' ? {text: readFileSync(0, 'utf8'), source: 'stdin'} : {text: readFileSync(path, 'utf8'), source: path}
  } catch {
    throw new UsageError(
      `${path === '-' ? 'standard input' : path} cannot be read`,
      'give the path of a YAML or JSON host file, or - for standard input',
      'E_FILE',
    )
  }
}

/**
 * The plan for a host file. When the file and everything the last comparison
 * read are exactly as a verified apply left them (memo.ts), the plan is empty
 * without parsing the file or comparing. `remember`: keep the digests of a
 * plan that found nothing to do (apply does; a dry run and diff change nothing).
 */
export async function planHost(runner: Runner, input: HostInput, opts: {remember?: boolean} = {}): Promise<Plan> {
  const top = scopeOf(runner.netns)
  const file = fileDigest(input.text, input.source, input.version)
  const memo = loadMemo(top, file)
  let earlier: LiveRead[] = []
  if (memo) {
    try {
      earlier = await Promise.all(memo.recipes.map((r) => readLive(r.netns ? runner.in(r.netns) : runner, r)))
      const digest = digestOf(earlier)
      phase('memo read')
      if (digest === memo.state)
        return {scopes: [], changes: [], unchanged: memo.unchanged, foreign: memo.foreign, reads: {recipes: memo.recipes, digest}, memo: true}
    } catch {
      // A read that fails now (a namespace gone behind our back): the whole comparison says what is what.
      earlier = []
    }
  }
  // The schema (zod) is loaded only when the file must be parsed.
  const {parseHostFile} = await import('./schema.js')
  const host = parseHostFile(input.text, input.source)
  phase('file parsed')
  const plan = await computePlan(await desiredScopes(runner, host), earlier)
  if (opts.remember && plan.changes.length === 0) remember(top, file, plan, plan.reads, plan.foreign)
  return plan
}

/** Keeps the digests of a state that matches the file (not with tunnels or SAs, whose keys live in other files: see memo.ts). Never fails the command. */
function remember(top: string, file: string, plan: Plan, reads: Plan['reads'], foreign: Foreign[]): void {
  try {
    const unchanged = plan.scopes.reduce((n, s) => n + s.desired.length, 0)
    saveMemo(top, reads.recipes.some((r) => r.tunnels || r.sad) ? undefined : {file, state: reads.digest, recipes: reads.recipes, unchanged, foreign})
  } catch {
    // the shortcut is only a shortcut
  }
}

/** `found`: told the value a sysctl had just before it is set (for one the plan could not read: in a namespace it makes). */
type Op = {runner: Runner} & (
  {lines: BatchLine[]} | {sysctl: {path: string; value: string}; found?: (value: string) => void} | {table: {add?: {name: string; id: number}; del?: string}}
)

const sysctlOf = (o: Obj) => ({path: (o as SysctlObj).path, value: (o as SysctlObj).value})
const tableOf = (o: Obj) => ({name: (o as TableObj).name, id: (o as TableObj).number})

/** The iproute2 lines that make a link, with those for a veth's other end run in its namespace. */
function linkAdd(o: Obj, runner: Runner): Op[] {
  const peer = o instanceof LinkObj ? o.peerLines : []
  return [{runner, lines: o.add}, ...(peer.length ? [{runner: runner.in((o as LinkObj).spec.peerNetns!), lines: peer}] : [])]
}

function forward(c: Change, runner: Runner, original: (path: string) => string | undefined): Op[] {
  const d = c.desired
  const l = c.live
  const o = (d ?? l)!
  if (o.kind === 'sysctl') {
    if (c.action === 'remove') {
      const before = original(o.key)
      return before === undefined ? [] : [{runner, sysctl: {path: o.key, value: before}}]
    }
    return [{runner, sysctl: sysctlOf(d!), ...(l ? {} : {found: (v: string) => (c.before = v)})}]
  }
  if (o.kind === 'table') {
    if (c.action === 'add') return [{runner, table: {add: tableOf(d!)}}]
    if (c.action === 'remove') return [{runner, table: {del: l!.key}}]
    return [
      {runner, table: {del: l!.key}},
      {runner, table: {add: tableOf(d!)}},
    ]
  }
  if (c.action === 'add') return linkAdd(d!, runner)
  if (c.action === 'remove') return [{runner, lines: l!.del}]
  if (o.kind === 'link' && settingsOnly(d!, l!)) return [{runner, lines: linkSet(d!, l!)}, ...peerMtu(d!, l!, runner)]
  return [{runner, lines: l!.del}, ...linkAdd(d!, runner)]
}

/** `ip link set` lines that take link `from` to the settings of `to`. */
function linkSet(to: Obj, from: Obj, exact = false): BatchLine[] {
  const t = to.attrs
  const f = from.attrs
  const args: string[] = []
  if (t.mtu !== undefined && t.mtu !== f.mtu) args.push('mtu', String(t.mtu))
  // The file's silence about a bridge means "whatever"; undoing puts back exactly what was there.
  if ((exact || t.master !== undefined) && t.master !== f.master) args.push(...(t.master ? ['master', String(t.master)] : ['nomaster']))
  if (t.up !== undefined && Boolean(t.up) !== Boolean(f.up)) args.push(t.up ? 'up' : 'down')
  return args.length ? [{args: ['link', 'set', to.key, ...args], object: to.desc}] : []
}

/** A veth's MTU is both ends' (as it was made): the other end follows, in its namespace. */
function peerMtu(to: Obj, from: Obj, runner: Runner): Op[] {
  const t = to.attrs
  const spec = (to instanceof LinkObj ? to : from instanceof LinkObj ? from : undefined)?.spec
  if (t.type !== 'veth' || t.mtu === undefined || t.mtu === from.attrs.mtu || !spec?.peer) return []
  return [
    {
      runner: spec.peerNetns ? runner.in(spec.peerNetns) : runner,
      lines: [{args: ['link', 'set', spec.peer, 'mtu', String(t.mtu)], object: `veth ${spec.peer} (the other end of ${spec.name})`}],
    },
  ]
}

function inverse(c: Change, runner: Runner): Op[] {
  const d = c.desired
  const l = c.live
  const o = (d ?? l)!
  if (o.kind === 'sysctl') return l ? [{runner, sysctl: sysctlOf(l)}] : []
  if (o.kind === 'table') {
    if (c.action === 'add') return [{runner, table: {del: d!.key}}]
    if (c.action === 'remove') return [{runner, table: {add: tableOf(l!)}}]
    return [
      {runner, table: {del: d!.key}},
      {runner, table: {add: tableOf(l!)}},
    ]
  }
  if (c.action === 'add') return [{runner, lines: d!.del}]
  if (c.action === 'remove') return linkAdd(l!, runner)
  if (o.kind === 'link' && settingsOnly(d!, l!)) return [{runner, lines: linkSet(l!, d!, true)}, ...peerMtu(l!, d!, runner)]
  return [{runner, lines: d!.del}, ...linkAdd(l!, runner)]
}

/**
 * iproute2 commands that end a whole `ip -batch` when they fail, `-force` or
 * not (ip exits at once: the lines after them never run, and no line number
 * is printed). An undo runs each of them on its own.
 */
const ENDS_BATCH = new Set(['xfrm', 'neigh'])

/** What failed while undoing: the object and what the tool said. */
export type UndoFailures = string[]

const failure = (l: BatchLine | undefined, error: unknown) =>
  `${l?.object ?? 'a change'}: ${error instanceof NetkitError ? error.what : error instanceof Error ? error.message : String(error)}`

/**
 * Lines of an undo, in order, each one's result known: xfrm and neigh lines
 * each in its own `ip -batch -`, the lines between them in one `ip -force
 * -batch -` (which goes on past lines that fail: what they undo may never
 * have happened). Nothing fails; what did is added to `failed`.
 */
export async function undoLines(runner: Runner, lines: BatchLine[], failed: UndoFailures): Promise<void> {
  let run: BatchLine[] = []
  const go = async () => {
    const batch = run
    run = []
    if (batch.length)
      await runner.batch(batch, undefined, {force: true}).catch((error) => failed.push(failure(batch[(error as Partial<BatchError>).failedIndex ?? 0], error)))
  }
  for (const l of lines) {
    if (!ENDS_BATCH.has(String(l.args[0]))) {
      run.push(l)
      continue
    }
    await go()
    await runner.batch([l]).catch((error) => failed.push(failure(l, error)))
  }
  await go()
}

/** Runs ops in order, with consecutive iproute2 lines of one namespace in one `ip -batch -`; undoing (`failed` given), past what fails. */
async function runOps(ops: Op[], opts: {failed?: UndoFailures} = {}): Promise<void> {
  let pending: BatchLine[] = []
  let on: Runner | undefined
  const force = opts.failed !== undefined
  const flush = async () => {
    if (pending.length && on) await (opts.failed ? undoLines(on, pending, opts.failed) : on.batch(pending))
    pending = []
  }
  for (const op of ops) {
    if ('lines' in op) {
      if (on !== op.runner) await flush()
      on = op.runner
      for (const l of op.lines) pending.push(l)
      continue
    }
    await flush()
    if ('sysctl' in op) {
      if (op.found && !op.runner.dryRun) {
        const [value] = await getSysctls(op.runner, [{path: op.sysctl.path, name: op.sysctl.path.replaceAll('/', '.')}]).catch(() => [undefined])
        if (value !== undefined) op.found(value)
      }
      const p = op.runner.run({
        tool: 'sysctl',
        args: ['-q', '-w', `${op.sysctl.path}=${op.sysctl.value}`],
        object: `sysctl ${op.sysctl.path.replaceAll('/', '.')}`,
      })
      await (opts.failed ? p.catch((error) => opts.failed!.push(failure({args: [], object: `sysctl ${op.sysctl.path.replaceAll('/', '.')}`}, error))) : p)
    } else {
      try {
        if (op.table.del) {
          delTable(op.table.del, op.runner)
        }
        if (op.table.add) {
          addTable(op.table.add.name, op.table.add.id, op.runner)
        }
      } catch (error) {
        if (!force) throw error
        opts.failed!.push(failure({args: [], object: `table ${op.table.del ?? op.table.add?.name}`}, error))
      }
    }
  }
  await flush()
}

/**
 * The ledger after the changes (or, undoing, as before them): one write per
 * namespace. `prior`: the changes whose object was apply's before (undoing
 * one of those leaves it apply's; any other changed object, such as a sysctl,
 * is apply's no more).
 */
function record(scopes: Scope[], changes: Change[], undo?: {prior: Set<Change>}): void {
  // In a namespace of the file, apply's records say which apply made them (the scope it ran in), so that
  // one that leaves the file can be emptied of exactly those (desiredScopes).
  const top = scopes[0].ledger
  for (const scope of scopes) {
    const by = scope.ledger === top ? {} : {by: top}
    if (scope.runner.dryRun) return
    const mine = changes.filter((c) => c.netns === scope.netns)
    if (mine.length === 0) continue
    const claims: {kind: OwnedKind; key: string; meta?: Record<string, unknown>}[] = []
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
        claims.push({
          kind: 'applied',
          key: k,
          ...(o.kind === 'sysctl'
            ? {meta: {original: applied[k]?.meta?.original ?? (c.live ? sysctlOf(c.live).value : c.before), ...by}}
            : 'by' in by
              ? {meta: by}
              : {}),
        })
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

export interface ApplyResult {
  changes: {action: string; kind: string; object: string; netns?: string; why?: string}[]
  unchanged: number
  changed: boolean
  verified: boolean
  rolledBack: boolean
  kept: boolean
  /** Nothing to do, known from the digests of the file and of the state a verified apply left (the file was not even parsed). */
  memo?: boolean
  /** Objects here that are neither netkit's nor in the file: left alone. */
  foreign: Foreign[]
}

export function describePlan(plan: Plan): ApplyResult['changes'] {
  return plan.changes.map((c) => ({action: c.action, kind: c.kind, object: c.desc, ...(c.netns ? {netns: c.netns} : {}), ...(c.why ? {why: c.why} : {})}))
}

const where = (netns?: string) => inNamespace(netns)
const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`

const PARALLEL_MIN = 2000

/** Changes whose lines depend on no other line of the step: routes without a gateway, xfrm policies and proxy entries. */
const independent = (c: Change) =>
  (c.action === 'remove' || (c.action === 'add' && !(c.kind === 'route' && (c.desired as RouteObj).spec.via))) &&
  (c.kind === 'route' || c.kind === 'xfrm-policy' || c.kind === 'proxy')

/**
 * Runs a step's changes in order. When thousands of them are independent
 * (routes, SPD entries), those go to several `ip -batch -` processes at once,
 * one per CPU: the kernel work is per line, and one process does it on one
 * CPU. What comes before routes in the step's order runs before them, the rest
 * after.
 */
async function runChanges(changes: Change[], scope: Scope, original: (path: string) => string | undefined): Promise<void> {
  const ops = (cs: Change[]) => cs.flatMap((c) => forward(c, scope.runner, original))
  const free = changes.filter(independent)
  const ways = Math.min(availableParallelism(), 4, Math.floor(free.length / PARALLEL_MIN))
  if (ways < 2 || scope.runner.dryRun) return runOps(ops(changes))
  const removing = changes[0].action === 'remove'
  const rest = changes.filter((c) => !independent(c))
  const first = rest.filter((c) => (removing ? ORDER[c.kind] > ORDER.route : ORDER[c.kind] < ORDER.route))
  await runOps(ops(first))
  const lines = free.flatMap((c) => (c.action === 'remove' ? c.live!.del : c.desired!.add))
  const size = Math.ceil(lines.length / ways)
  const results = await Promise.allSettled(Array.from({length: ways}, (_, i) => scope.runner.batch(lines.slice(i * size, (i + 1) * size))))
  const failed = results.find((r) => r.status === 'rejected')
  if (failed) throw (failed as PromiseRejectedResult).reason
  const done = new Set(first)
  await runOps(ops(rest.filter((c) => !done.has(c))))
}

/** A step that runs iproute2/sysctl/table changes and, failing halfway, undoes them all (forced) before it fails. */
function batchStep(title: string, changes: Change[], scope: Scope, original: (path: string) => string | undefined, failed: UndoFailures): Step {
  const undo = () =>
    runOps(
      changes
        .slice()
        .reverse()
        .flatMap((c) => inverse(c, scope.runner)),
      {failed},
    )
  return {
    title,
    apply: async () => {
      try {
        await runChanges(changes, scope, original)
      } catch (error) {
        if (!scope.runner.dryRun) await undo()
        throw error
      }
    },
    undo,
  }
}

const ORDER = KIND_ORDER

/** A tunnel's secret files, kept so that undoing its removal brings back the same keys (the peer knows them). */
function secretsOf(dir: string, name: string): [string, string][] {
  return ['psk', 'key', 'pub']
    .map((ext) => `${dir}/secrets/${name}.${ext}`)
    .filter((p) => existsSync(p))
    .map((p) => [p, readFileSync(p, 'utf8')])
}

function tunnelSteps(c: Change, scope: Scope, progressTimeoutMs: number): Step {
  const svc = {runner: scope.runner, configDir: configDir(), progress: 'none' as const, wait: false, timeoutMs: progressTimeoutMs}
  const d = c.desired as TunnelObj | undefined
  const l = c.live as TunnelObj | undefined
  const dir = scopeDir(configDir(), (d ?? l)!.def.netns)
  let kept: [string, string][] = []
  const restore = async () => {
    // Not the PSK file: addTunnel writes it, and finding it equal already would take the tunnel as unchanged
    // and leave charon with the key of the change being undone.
    for (const [p, text] of kept) if (!p.endsWith('.psk')) scope.runner.writeFile(p, new Secret(text))
    const psk = kept.find(([p]) => p.endsWith('.psk'))?.[1]
    await addTunnel(l!.def, {...svc, replace: true, ...(psk ? {psk: new Secret(psk.trim())} : {})})
  }
  if (c.action === 'add') {
    return {
      title: `set up ${d!.desc}${where(c.netns)}`,
      apply: async () => {
        // Keys that were there before (a WireGuard key pair "tunnel pubkey" made, whose public half a
        // fleet has gathered) stay when the add is undone: the next run must not make a new one.
        kept = secretsOf(dir, d!.def.name)
        await addTunnel(d!.def, {...svc, psk: d!.psk})
      },
      undo: async () => {
        await delTunnel(d!.def, svc)
        for (const [p, text] of kept) scope.runner.writeFile(p, new Secret(text))
      },
    }
  }
  if (c.action === 'remove') {
    return {
      title: `remove ${l!.desc}${where(c.netns)}`,
      apply: async () => {
        kept = secretsOf(dir, l!.def.name)
        await delTunnel(l!.def, svc)
      },
      undo: restore,
    }
  }
  if (c.why === 'it is down') {
    // Only its runtime is missing (a daemon killed, a device deleted): brought up, and down again on undo.
    return {
      title: `bring up ${d!.desc}${where(c.netns)} (it is down)`,
      apply: async () => void (await upTunnel(l!.def, svc)),
      undo: async () => void (await downTunnel(l!.def, svc)),
    }
  }
  return {
    title: `replace ${d!.desc}${where(c.netns)} (${c.why})`,
    apply: async () => {
      kept = secretsOf(dir, l!.def.name)
      await addTunnel(keepForeignPeers(d!.def, l!.def, scope), {...svc, replace: true, psk: d!.psk})
    },
    undo: restore,
  }
}

/** A WireGuard interface made again keeps the peers apply did not make (added with "tunnel peer add"): apply never removes those. */
function keepForeignPeers(def: TunnelDef, live: TunnelDef, scope: Scope): TunnelDef {
  if (!isInterface(def) || !isInterface(live)) return def
  const foreign = Object.entries(live.wireguard!.peers!).filter(([name]) => !def.wireguard!.peers![name] && !scope.applied[`wg-peer:${def.name} ${name}`])
  return foreign.length ? withPeers(def, {...Object.fromEntries(foreign), ...def.wireguard!.peers!}) : def
}

/**
 * The peer changes of one WireGuard interface, in one step: one `wg set` that
 * names only those peers (tunnel/service.ts setPeers), made against the peers
 * the tunnel has when the step runs. `covered`: the plan makes or removes the
 * tunnel as a whole, its peers with it (nothing to do here, nothing to undo).
 */
function peerStep(tunnel: string, changes: Change[], scope: Scope, covered: boolean, status?: TunnelStatus): Step {
  const netns = scope.netns ?? scope.runner.netns ?? undefined
  const svc = {runner: scope.runner, configDir: configDir(), progress: 'none' as const, wait: false}
  const n = (a: Change['action']) => changes.filter((c) => c.action === a).length
  const what = [
    ['add', n('add')],
    ['change', n('change')],
    ['remove', n('remove')],
  ]
    .filter(([, k]) => k)
    .map(([a, k]) => `${a} ${count(k as number, 'peer')}`)
    .join(', ')
  let before: Record<string, WgPeer> | undefined
  return {
    title: `${what} of WireGuard tunnel ${tunnel}${where(netns)}`,
    apply: async () => {
      if (covered) return false
      const def = requireDef(configDir(), tunnel, netns)
      before = def.wireguard!.peers ?? {}
      const next = {...before}
      for (const c of changes) {
        if (c.action === 'remove') delete next[(c.live as PeerObj).name]
        else next[(c.desired as PeerObj).name] = (c.desired as PeerObj).peer
      }
      checkPeerSet(next, def)
      // The device as the plan read it (under this lock, and nothing before this step touched it): not read again.
      return (await setPeers(def, next, {...svc, status})).changed
    },
    undo: async () => {
      if (covered || !before) return
      await setPeers(requireDef(configDir(), tunnel, netns), before, svc)
    },
  }
}

/** The plan as steps: tunnels and contents removed, namespaces removed and made, contents made, tunnels set up. */
function planSteps(plan: Plan, originalIn: (s: Scope) => (path: string) => string | undefined, timeoutMs: number, failed: UndoFailures): Step[] {
  const steps: Step[] = []
  const [root] = plan.scopes
  const of = (s: Scope) => plan.changes.filter((c) => c.netns === s.netns)
  for (const s of plan.scopes) for (const c of of(s)) if (c.kind === 'tunnel' && c.action === 'remove') steps.push(tunnelSteps(c, s, timeoutMs))
  for (const s of plan.scopes.slice().reverse()) {
    const rm = of(s).filter((c) => c.action === 'remove' && c.kind !== 'tunnel' && c.kind !== 'wg-peer' && c.kind !== 'netns')
    if (rm.length) steps.push(batchStep(`remove ${count(rm.length, 'object')}${where(s.netns)}`, rm, s, originalIn(s), failed))
  }
  for (const c of of(root).filter((c) => c.kind === 'netns')) {
    const name = (c.desired ?? c.live)!.key
    const make = async () => void (await addNetns(root.runner, name))
    const drop = async () => void (await delNetns(root.runner, name, {force: true}))
    steps.push(
      c.action === 'remove' ? {title: `remove namespace ${name}`, apply: drop, undo: make} : {title: `create namespace ${name}`, apply: make, undo: drop},
    )
  }
  // Every namespace's links first: a veth made from one namespace puts its far end in another, where the file may put addresses on it.
  for (const links of [true, false]) {
    for (const s of plan.scopes) {
      const mk = of(s).filter(
        (c) => c.action !== 'remove' && c.kind !== 'tunnel' && c.kind !== 'wg-peer' && c.kind !== 'netns' && ORDER[c.kind] <= ORDER.link === links,
      )
      if (mk.length) steps.push(batchStep(`make ${count(mk.length, links ? 'link change' : 'change')}${where(s.netns)}`, mk, s, originalIn(s), failed))
    }
  }
  for (const s of plan.scopes) for (const c of of(s)) if (c.kind === 'tunnel' && c.action !== 'remove') steps.push(tunnelSteps(c, s, timeoutMs))
  // A WireGuard interface's peers, one step per tunnel (after the tunnel is up).
  for (const s of plan.scopes) {
    const byTunnel = new Map<string, Change[]>()
    for (const c of of(s)) {
      if (c.kind !== 'wg-peer') continue
      const t = ((c.desired ?? c.live) as PeerObj).tunnel
      byTunnel.set(t, [...(byTunnel.get(t) ?? []), c])
    }
    for (const [t, cs] of byTunnel) {
      const whole = of(s).find((c) => c.kind === 'tunnel' && (c.desired ?? c.live)!.key === t)
      const status = whole ? undefined : plan.statuses?.get(statusKey(s.netns, t))
      steps.push(peerStep(t, cs, s, Boolean(whole && (whole.action !== 'change' || whole.why !== 'it is down')), status))
    }
  }
  return steps
}

/**
 * What still differs after applying: every scope read again and compared
 * (desired objects are not made again). The reads start at once, and the
 * ledger is written (`record`) while `ip` dumps; what is read covers at least
 * what the ledger then names (it can only have lost kinds the file no longer has).
 */
async function verify(plan: Plan, record: () => void): Promise<{left: Change[]; reads: Plan['reads']; foreign: Foreign[]}> {
  const scopes = plan.scopes.filter((s) => !s.netns || netnsExists(s.netns))
  const pending = Promise.all(scopes.map((s) => readLive(s.runner, recipeOf({...s, fresh: false}))))
  record()
  phase('v:recorded')
  const reads = await pending
  phase('v:read')
  const now = scopes.map((s) => ({...s, fresh: false, applied: appliedIn(s.ledger, s.owner)}))
  const compared = now.map((s, i) => compareScope(s, objectsOf(reads[i], s)))
  phase('v:compared')
  return {
    left: compared.flatMap((c) => c.changes),
    foreign: compared.flatMap((c) => c.foreign),
    reads: {recipes: reads.map((r) => r.recipe), digest: digestOf(reads)},
  }
}

export interface ApplyOptions {
  trySeconds?: number
  /** Asks whether to keep the change (--try); `interrupted` settles when a signal comes first; `result`: the change, applied and verified. */
  confirm?: (seconds: number, interrupted: Promise<unknown>, result: ApplyResult) => Promise<boolean>
  log?: (l: string) => void
  progress?: 'tty' | 'simple' | 'none'
  timeoutMs?: number
}

/**
 * Plans and applies a host file, with the host's lock held from the plan to the end (../lock.ts: the
 * command holds it already; lab and tests that call this directly take it here); a dry run takes no lock.
 */
export async function applyHost(runner: Runner, input: HostInput, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const release = runner.dryRun
    ? undefined
    : await lockHost(`netkit apply ${input.source === 'stdin' ? 'of a file on standard input' : input.source}${where(runner.netns ?? undefined)}`)
  try {
    return await applyLocked(runner, input, opts)
  } finally {
    release?.()
  }
}

async function applyLocked(runner: Runner, input: HostInput, opts: ApplyOptions): Promise<ApplyResult> {
  phase('file read')
  const plan = await planHost(runner, input, {remember: !runner.dryRun})
  phase('planned')
  const result: ApplyResult = {
    changes: describePlan(plan),
    unchanged: plan.unchanged,
    foreign: plan.foreign,
    changed: plan.changes.length > 0,
    verified: false,
    rolledBack: false,
    kept: true,
  }
  if (plan.changes.length === 0) {
    result.verified = true
    if (plan.memo) result.memo = true
    return result
  }
  // Name netkit's protocol for iproute2, so `ip route` says "proto netkit" for what apply makes.
  ensureProtoName(runner)
  // The value a sysctl had before apply first set it, in that namespace.
  const originalIn = (s: Scope) => (path: string) => s.applied[`sysctl:${path}`]?.meta?.original as string | undefined
  // What failed while undoing (said if the host is not back as it was).
  const failed: UndoFailures = []
  const steps = planSteps(plan, originalIn, opts.timeoutMs ?? 30_000, failed)
  const done: Step[] = []
  // A dry run has nothing to undo (and undoing would only print more commands).
  const tracked = steps.map((s) => ({
    ...s,
    ...(runner.dryRun ? {undo: undefined} : {}),
    apply: async () => {
      const r = await s.apply()
      done.push(s)
      return r
    },
  }))
  // Read before anything is recorded (the ledger's cache is updated in place).
  const prior = new Set(plan.changes.filter((c) => c.action === 'change' && plan.scopes.find((s) => s.netns === c.netns)?.applied[appliedKey(c.desired!)]))
  // From the first change to the end of a --try, a signal (Ctrl-C, a kill, the SSH session closing) undoes everything.
  const watch = new Interruption()
  // Written ahead: what the change will make is apply's in the ledger before the kernel has it, so that
  // after a kill -9 half way the next apply knows it for its own (and removes it when the file drops it).
  // (Not sysctls: their claim keeps the value from before, read just before apply sets it.)
  const making = plan.changes.filter((c) => c.action !== 'remove' && c.kind !== 'sysctl')
  if (!runner.dryRun) record(plan.scopes, making)
  try {
    await runPlan(tracked, {runner, progress: opts.progress ?? 'none', interruption: watch})
    phase('changed')
    if (runner.dryRun) return result
    const undoAll = async () => {
      await rollback(done)
      record(plan.scopes, plan.changes, {prior})
      result.rolledBack = true
    }
    const undoing = async <T>(p: Promise<T>): Promise<T> => {
      try {
        const r = await p
        watch.check()
        return r
      } catch (error) {
        await undoAll()
        throw error
      }
    }
    const {left, reads, foreign} = await undoing(verify(plan, () => record(plan.scopes, plan.changes)))
    phase('verified')
    if (left.length > 0) {
      await undoAll()
      throw new NetkitError(
        'E_VERIFY',
        `the host does not match the file after applying: ${left
          .slice(0, 3)
          .map((c) => `${c.action} ${c.desc}${where(c.netns)}`)
          .join('; ')}`,
        {fix: 'the change was undone; run "netkit diff -f FILE" and check what else manages these objects'},
      )
    }
    result.verified = true
    if (opts.trySeconds !== undefined) {
      opts.log?.(`applied; keeping it only if you confirm within ${opts.trySeconds} s`)
      const ok = await undoing(opts.confirm ? opts.confirm(opts.trySeconds, watch.fired, result) : Promise.resolve(false))
      if (!ok) {
        await undoAll()
        await sayWhatStayedGone(plan, failed)
        result.kept = false
        return result
      }
    }
    result.foreign = foreign
    remember(scopeOf(runner.netns), fileDigest(input.text, input.source, input.version), plan, reads, foreign)
    return result
  } catch (error) {
    // The plan undid its steps: what was claimed ahead is not apply's after all.
    if (!runner.dryRun && !result.rolledBack) record(plan.scopes, making, {prior})
    // Undone by now (by the plan, or above): said so only if the host is back as it was.
    if (!runner.dryRun && !(error instanceof UndoIncomplete)) await sayWhatStayedGone(plan, failed, error)
    throw error
  } finally {
    watch.dispose()
  }
}

/**
 * After an undo, the host is read back: what did not come back (the kernel
 * deleted it along with something the change removed, or putting it back
 * failed) and what the change made and the undo could not remove are said,
 * with the error that caused the undo: "undone" is claimed only when it is true.
 */
async function sayWhatStayedGone(plan: Plan, failed: UndoFailures, error?: unknown): Promise<void> {
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

class UndoIncomplete extends NetkitError {}
