/**
 * The operations a change is made of, and those that undo it: iproute2 lines
 * (run in `ip -batch -`), sysctl writes and table names.
 */
import {NetkitError} from '../errors.js'
import {addTable, delTable} from '../iproute2/tables.js'
import {type BatchError, type BatchLine, type Runner} from '../runner.js'
import {getSysctls} from '../sysctl.js'
import {LinkObj, type Obj, settingsOnly, SysctlObj, TableObj} from '../kinds/index.js'
import type {Change} from './plan.js'

/** `found`: told the value a sysctl had just before it is set (for one the plan could not read: in a namespace it makes). */
type Op = {runner: Runner} & (
  {lines: BatchLine[]} | {sysctl: {path: string; value: string}; found?: (value: string) => void} | {table: {add?: {name: string; id: number}; del?: string}}
)

export const sysctlOf = (o: Obj) => ({path: (o as SysctlObj).path, value: (o as SysctlObj).value})
const tableOf = (o: Obj) => ({name: (o as TableObj).name, id: (o as TableObj).number})

/** The iproute2 lines that make a link, with those for a veth's other end run in its namespace. */
function linkAdd(o: Obj, runner: Runner): Op[] {
  const peer = o instanceof LinkObj ? o.peerLines : []
  return [{runner, lines: o.add}, ...(peer.length ? [{runner: runner.in((o as LinkObj).spec.peerNetns!), lines: peer}] : [])]
}

export function forward(c: Change, runner: Runner, original: (path: string) => string | undefined): Op[] {
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

export function inverse(c: Change, runner: Runner): Op[] {
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
export async function runOps(ops: Op[], opts: {failed?: UndoFailures} = {}): Promise<void> {
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
