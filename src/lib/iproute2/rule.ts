/**
 * Policy rules, marked with netkit's protocol (178), at a known priority
 * (default 1000, before main at 32766) so that a re-add is recognised.
 */
import {NetkitError, UsageError} from '../errors.js'
import {isNetkitProto, NETKIT_PROTO} from '../ownership.js'
import type {Runner} from '../runner.js'
import * as v from '../validate.js'
import {ipJson, requireLink} from './json.js'
import {ensureProtoName, tableName, tableNumber} from './tables.js'

export const DEFAULT_RULE_PRIORITY = 1000

/** A rule as `ip -j rule` prints it. */
export interface IpRule {
  priority: number
  src?: string
  srclen?: number
  dst?: string
  dstlen?: number
  fwmark?: string
  fwmask?: string
  iif?: string
  oif?: string
  table?: string
  protocol?: string
}

export interface RuleSpec {
  family: v.Family
  from?: string
  to?: string
  fwmark?: v.Mark
  iif?: string
  oif?: string
  table: number
  priority: number
}

export interface RuleRow {
  priority: number
  family: v.Family
  from: string
  to: string
  fwmark: string | null
  iif: string | null
  oif: string | null
  table: number
  tableName: string | null
  protocol: string
  owned: boolean
}

const hex = (n: number) => `0x${n.toString(16)}`

/** A rule as `ip -j rule` prints it (read with -4 or -6), as a spec ("all" as no selector). */
export function ruleOf(r: IpRule, family: v.Family): RuleSpec {
  const net = (a?: string, len?: number) => (!a || a === 'all' ? undefined : `${a}/${len ?? (family === 6 ? 128 : 32)}`)
  const fwmark = r.fwmark ? v.mark(`${r.fwmark}${r.fwmask ? `/${r.fwmask}` : ''}`) : undefined
  return {family, from: net(r.src, r.srclen), to: net(r.dst, r.dstlen), fwmark, iif: r.iif, oif: r.oif, table: tableNumber(r.table, 0), priority: r.priority}
}

function toRow(r: IpRule, family: v.Family): RuleRow {
  const s = ruleOf(r, family)
  const table = s.table
  return {
    priority: r.priority,
    family,
    from: s.from ?? 'all',
    to: s.to ?? 'all',
    fwmark: r.fwmark ? `${r.fwmark}${r.fwmask && r.fwmask !== '0xffffffff' ? `/${r.fwmask}` : ''}` : null,
    iif: r.iif ?? null,
    oif: r.oif ?? null,
    table,
    tableName: tableName(table) ?? null,
    protocol: r.protocol ?? 'unspec',
    owned: isNetkitProto(r.protocol),
  }
}

export async function listRules(runner: Runner, opts: {owned?: boolean} = {}): Promise<RuleRow[]> {
  const out: RuleRow[] = []
  for (const family of [4, 6] as const) out.push(...(await ipJson<IpRule>(runner, [`-${family}`, 'rule', 'show'])).map((r) => toRow(r, family)))
  return out.filter((r) => !opts.owned || r.owned)
}

export function markText(m?: v.Mark): string | null {
  return m ? `${hex(m.value)}${m.mask !== undefined && m.mask !== 0xffff_ffff ? `/${hex(m.mask)}` : ''}` : null
}

function matches(r: RuleRow, s: RuleSpec): boolean {
  return (
    r.family === s.family &&
    r.priority === s.priority &&
    r.from === (s.from ?? 'all') &&
    r.to === (s.to ?? 'all') &&
    r.fwmark === markText(s.fwmark) &&
    r.iif === (s.iif ?? null) &&
    r.oif === (s.oif ?? null)
  )
}

export function selectorArgs(s: RuleSpec): string[] {
  return [
    ...(s.from ? ['from', s.from] : []),
    ...(s.to ? ['to', s.to] : []),
    ...(s.fwmark ? ['fwmark', markText(s.fwmark)!] : []),
    ...(s.iif ? ['iif', s.iif] : []),
    ...(s.oif ? ['oif', s.oif] : []),
  ]
}

/** `ip rule` takes every rule for IPv4 unless told -6, even one with an IPv6 address (iproute2 6.1: "Invalid source address"). */
async function change(runner: Runner, s: RuleSpec, args: string[]): Promise<void> {
  await runner.batch([{args, object: describe(s), ...(s.family === 6 ? {family: 6 as const} : {})}])
}

const describe = (s: RuleSpec) => `rule ${[...selectorArgs(s)].join(' ') || 'from all'} priority ${s.priority}`

export async function addRule(runner: Runner, s: RuleSpec): Promise<boolean> {
  if (s.priority === 0 || s.priority >= 32766)
    throw new UsageError(`priority ${s.priority} belongs to the kernel's own rules`, 'use a priority from 1 to 32765')
  for (const dev of [s.iif, s.oif]) if (dev) await requireLink(runner, dev)
  const existing = (await listRules(runner)).find((r) => matches(r, s))
  if (existing && existing.table === s.table) return false
  if (existing)
    throw new NetkitError('E_CONFLICT', `${describe(s)} already exists and looks up table ${existing.tableName ?? existing.table}`, {
      fix: 'delete it first, or use another --priority',
    })
  ensureProtoName(runner)
  await change(runner, s, ['rule', 'add', ...selectorArgs(s), 'table', String(s.table), 'priority', String(s.priority), 'protocol', String(NETKIT_PROTO)])
  return true
}

export async function delRule(runner: Runner, s: RuleSpec, opts: {force?: boolean} = {}): Promise<boolean> {
  const existing = (await listRules(runner)).find((r) => matches(r, s) && r.table === s.table)
  if (!existing) return false
  if (!existing.owned && !opts.force)
    throw new UsageError(`${describe(s)} was not made by netkit (protocol ${existing.protocol})`, 'pass --force to delete it anyway', 'E_NOT_OWNED')
  await change(runner, s, ['rule', 'del', ...selectorArgs(s), 'table', String(s.table), 'priority', String(s.priority)])
  return true
}
