/**
 * Named routing tables. The system's names (/etc/iproute2/rt_tables and
 * rt_tables.d/*.conf) are read, never written; netkit's own names live in one
 * file it owns, $NETKIT_IPROUTE2_DIR/rt_tables.d/netkit.conf (default
 * /etc/iproute2), written atomically. netkit resolves names to numbers itself
 * and always gives `ip` the number, so a name works even where `ip` does not
 * read that directory. netkit's routing protocol (178) is named in
 * rt_protos.d/netkit.conf, so `ip route` shows "proto netkit".
 */
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {NetkitError, UsageError} from '../errors.js'
import type {Runner} from '../runner.js'
import {NETKIT_PROTO, NETKIT_PROTO_NAME} from '../marks.js'
import * as v from '../validate.js'

export const SYSTEM_IPROUTE2 = '/etc/iproute2'
/** Where newer iproute2 keeps its default name files (read when /etc/iproute2 has no copy). */
const USR_IPROUTE2 = ['/usr/share/iproute2', '/usr/lib/iproute2']
const BUILTIN: Record<string, number> = {default: 253, main: 254, local: 255}

/**
 * The number of a table as `ip -j` prints it: a number ("100"), a built-in name
 * ("main") or any name the rt_tables files give it ("vpn", once netkit or the
 * operator named table 173). `ip` prints a name wherever one is registered.
 */
export function tableNumber(t: string | number | undefined, otherwise: number): number {
  if (t === undefined) return otherwise
  if (typeof t === 'number') return t
  // The kernel's own names first: every route of the main table says "main".
  if (Object.hasOwn(BUILTIN, t)) return BUILTIN[t]
  if (/^(0x[0-9a-f]+|\d+)$/i.test(t)) return Number(t)
  const id = listTables().find((r) => r.name === t)?.id
  if (id === undefined)
    throw new NetkitError('E_INTERNAL', `ip named a routing table "${t}" that no rt_tables file names`, {
      fix: `check ${SYSTEM_IPROUTE2}/rt_tables and rt_tables.d/*.conf`,
    })
  return id
}

export function iproute2Dir(): string {
  return process.env.NETKIT_IPROUTE2_DIR ?? SYSTEM_IPROUTE2
}

export function netkitTablesFile(): string {
  return join(iproute2Dir(), 'rt_tables.d', 'netkit.conf')
}

export interface TableRow {
  name: string
  id: number
  owned: boolean
  source: string
}

function parse(text: string, source: string, owned: boolean): TableRow[] {
  const out: TableRow[] = []
  for (const line of text.split('\n')) {
    const m = /^\s*(0x[0-9a-f]+|\d+)\s+([A-Za-z0-9_.-]+)\s*(#.*)?$/i.exec(line)
    if (m) out.push({name: m[2], id: Number(m[1]), owned, source})
  }
  return out
}

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

let cache: {key: string; rows: TableRow[]} | undefined

/** Every known table name: built-in, the system's, netkit's (read once per process, until netkit changes its file). */
export function listTables(): TableRow[] {
  const key = iproute2Dir()
  if (cache?.key === key) return cache.rows
  const rows = readTables()
  cache = {key, rows}
  return rows
}

function readTables(): TableRow[] {
  const rows: TableRow[] = Object.entries(BUILTIN).map(([name, id]) => ({name, id, owned: false, source: 'built in'}))
  for (const base of [SYSTEM_IPROUTE2, ...USR_IPROUTE2]) {
    const sys = join(base, 'rt_tables')
    for (const r of parse(read(sys), sys, false)) if (!Object.hasOwn(BUILTIN, r.name) && r.id !== 0) rows.push(r)
  }
  const mine = netkitTablesFile()
  for (const dir of new Set([join(SYSTEM_IPROUTE2, 'rt_tables.d'), ...USR_IPROUTE2.map((d) => join(d, 'rt_tables.d')), join(iproute2Dir(), 'rt_tables.d')])) {
    let files: string[] = []
    try {
      files = readdirSync(dir)
        .filter((f) => f.endsWith('.conf'))
        .sort()
    } catch {
      continue
    }
    for (const f of files) {
      const p = join(dir, f)
      if (p === mine) continue
      for (const r of parse(read(p), p, false)) rows.push(r)
    }
  }
  for (const r of parse(read(mine), mine, true)) rows.push(r)
  const seen = new Set<string>()
  return rows.filter((r) => (seen.has(r.name) ? false : (seen.add(r.name), true)))
}

/** A table given by name or number -> its number. Unknown names are bad input. */
export function resolveTable(value: string): number {
  const s = value.trim()
  if (/^\d+$/.test(s)) return v.integer(s, 'table', 1, 0xffff_ffff)
  const row = listTables().find((t) => t.name === s)
  if (!row) throw new UsageError(`table ${s} is not known`, `add it with "netkit table add ${s} ID", or give the table's number`, 'E_NO_TABLE')
  return row.id
}

/** The name of a table number, if it has one. */
export function tableName(id: number): string | undefined {
  return listTables().find((t) => t.id === id)?.name
}

function writeMine(runner: Runner, rows: TableRow[], note: string): void {
  cache = undefined
  const body = rows.map((r) => `${r.id}\t${r.name}`).join('\n')
  runner.writeFile(netkitTablesFile(), `# Routing table names managed by netkit ("netkit table add|del"). Do not edit.\n${body}${body ? '\n' : ''}`, {note})
}

/** A name netkit can give a table (and so the only kind it can remove). */
export function checkTableName(name: string): void {
  if (!/^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(name))
    throw new UsageError(`table name "${name}" is not valid`, 'use up to 32 letters, digits, - or _, starting with a letter')
}

/** Names table `id` (in netkit's own rt_tables.d file, written through the runner). False when it already has that name. */
export function addTable(name: string, id: number, runner: Runner): boolean {
  checkTableName(name)
  if (id < 1 || id > 0x7fff_ffff || id === 253 || id === 254 || id === 255)
    throw new UsageError(`table id ${id} cannot be used`, 'pick a number from 1 to 2147483647 other than 253, 254 and 255')
  const all = listTables()
  const byName = all.find((t) => t.name === name)
  if (byName && byName.id === id) return false
  if (byName)
    throw new NetkitError('E_CONFLICT', `table name ${name} already means table ${byName.id} (${byName.source})`, {
      fix: byName.owned ? `delete it first ("netkit table del ${name}")` : 'choose another name',
    })
  const byId = all.find((t) => t.id === id)
  if (byId)
    throw new NetkitError('E_CONFLICT', `table ${id} is already named ${byId.name} (${byId.source})`, {fix: `use the name ${byId.name}, or another number`})
  writeMine(runner, [...all.filter((t) => t.owned), {name, id, owned: true, source: netkitTablesFile()}], `+ ${id} ${name}`)
  return true
}

export function delTable(name: string, runner: Runner): boolean {
  checkTableName(name)
  const row = listTables().find((t) => t.name === name)
  if (!row) return false
  if (!row.owned) throw new UsageError(`table name ${name} is not netkit's (${row.source})`, 'netkit only removes the names it added', 'E_NOT_OWNED')
  writeMine(
    runner,
    listTables().filter((t) => t.owned && t.name !== name),
    `- ${name}`,
  )
  return true
}

/** Names netkit's protocol for iproute2 (rt_protos.d/netkit.conf), once. */
export function ensureProtoName(runner: Runner): void {
  const p = join(iproute2Dir(), 'rt_protos.d', 'netkit.conf')
  if (existsSync(p)) return
  try {
    runner.writeFile(p, `# netkit's routing protocol: routes, rules and proxy entries netkit made.\n${NETKIT_PROTO}\t${NETKIT_PROTO_NAME}\n`)
  } catch {
    // Read-only /etc: the number still works.
  }
}

let protoNames: Set<string> | undefined

/**
 * Every way `ip -j` may print netkit's protocol: its number, "netkit", and any
 * other name an rt_protos file gives 178 on this host (ip prints the name it
 * finds, not the one netkit registered).
 */
export function netkitProtoNames(): Set<string> {
  if (protoNames) return protoNames
  const names = new Set([String(NETKIT_PROTO), NETKIT_PROTO_NAME])
  const files: string[] = []
  for (const base of new Set([SYSTEM_IPROUTE2, ...USR_IPROUTE2, iproute2Dir()])) {
    files.push(join(base, 'rt_protos'))
    try {
      for (const f of readdirSync(join(base, 'rt_protos.d')).filter((f) => f.endsWith('.conf'))) files.push(join(base, 'rt_protos.d', f))
    } catch {
      // no such directory
    }
  }
  for (const f of files) for (const r of parse(read(f), f, false)) if (r.id === NETKIT_PROTO) names.add(r.name)
  protoNames = names
  return names
}
