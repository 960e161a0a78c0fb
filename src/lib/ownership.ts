/**
 * What netkit owns. Objects the kernel can mark carry the mark themselves
 * (routes, rules and proxy neighbours: protocol "netkit"; links: the alias
 * "netkit"). Everything else netkit creates (namespaces, addresses, xfrm
 * states and policies) is written to this ledger, one per machine, kept under
 * /run (like the kernel state it describes, it does not survive a reboot).
 *
 * An object is netkit's if it is in the ledger and still exists; `del` and
 * every cleanup touch only those.
 */
import {closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {netkitProtoNames} from './iproute2/tables.js'
import {NETKIT_PROTO, NETKIT_PROTO_NAME} from './marks.js'

export const ROOT_SCOPE = '@root'

export type OwnedKind = 'netns' | 'addr' | 'xfrm-state' | 'xfrm-policy' | 'sysctl' | 'applied'

interface LedgerFile {
  version: 1
  scopes: Record<string, Partial<Record<OwnedKind, Record<string, OwnedEntry>>>>
}

export interface OwnedEntry {
  /** When netkit made it (not kept for apply's own records: tens of thousands of them, read at every apply). */
  created?: string
  /** e.g. the value a sysctl had before netkit changed it, or the tunnel that made it. */
  meta?: Record<string, unknown>
}

export function stateDir(): string {
  return process.env.NETKIT_STATE_DIR ?? '/run/netkit'
}

function ledgerPath(): string {
  return join(stateDir(), 'owned.json')
}

export function scopeOf(netns?: string | null): string {
  return netns ? `ns:${netns}` : ROOT_SCOPE
}

/** The ledger as last read or written by this process, valid while the file's size and mtime are unchanged. */
let cache: {path: string; size: number; mtimeMs: number; data: LedgerFile} | undefined

function load(): LedgerFile {
  const path = ledgerPath()
  try {
    const st = statSync(path)
    if (cache && cache.path === path && cache.size === st.size && cache.mtimeMs === st.mtimeMs) return cache.data
    const data = JSON.parse(readFileSync(path, 'utf8')) as LedgerFile
    if (data && data.version === 1 && typeof data.scopes === 'object') {
      cache = {path, size: st.size, mtimeMs: st.mtimeMs, data}
      return data
    }
  } catch {
    // missing or unreadable: start empty
  }
  cache = undefined
  return {version: 1, scopes: {}}
}

function save(data: LedgerFile): void {
  const path = ledgerPath()
  // Nothing owned: no file (an undone change leaves no trace).
  if (Object.keys(data.scopes).length === 0) {
    rmSync(path, {force: true})
    cache = undefined
    return
  }
  mkdirSync(stateDir(), {recursive: true, mode: 0o700})
  const tmp = `${path}.${process.pid}.tmp`
  // One line: apply records tens of thousands of objects, and nobody edits this file by hand.
  writeFileSync(tmp, JSON.stringify(data) + '\n', {mode: 0o600})
  renameSync(tmp, path)
  const st = statSync(path)
  cache = {path, size: st.size, mtimeMs: st.mtimeMs, data}
}

/** Runs fn with the ledger locked against other netkit processes (bounded wait). */
function withLock<T>(fn: (data: LedgerFile) => T): T {
  mkdirSync(stateDir(), {recursive: true, mode: 0o700})
  const lock = `${ledgerPath()}.lock`
  const deadline = Date.now() + 5000
  let fd = -1
  for (;;) {
    try {
      fd = openSync(lock, 'wx', 0o600)
      break
    } catch {
      try {
        if (Date.now() - statSync(lock).mtimeMs > 10_000) rmSync(lock, {force: true})
      } catch {
        // gone meanwhile
      }
      if (Date.now() > deadline) throw new Error(`netkit's ledger is locked (${lock}); another netkit is running, or remove the stale lock`)
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20)
    }
  }
  try {
    return fn(load())
  } catch (error) {
    cache = undefined
    throw error
  } finally {
    closeSync(fd)
    rmSync(lock, {force: true})
  }
}

export function claim(scope: string, kind: OwnedKind, key: string, meta?: Record<string, unknown>): void {
  withLock((data) => {
    const s = (data.scopes[scope] ??= {})
    const k = (s[kind] ??= {})
    if (!k[key]) k[key] = {created: new Date().toISOString(), ...(meta ? {meta} : {})}
    save(data)
  })
}

/** Many claims and releases in one write of the ledger (apply records thousands at once). */
export function recordMany(
  scope: string,
  claims: {kind: OwnedKind; key: string; meta?: Record<string, unknown>}[],
  releases: {kind: OwnedKind; key: string}[],
): void {
  if (claims.length === 0 && releases.length === 0) return
  withLock((data) => {
    const s = (data.scopes[scope] ??= {})
    const now = new Date().toISOString()
    // Written only when something changes: apply records again after its changes what it recorded ahead.
    let changed = false
    for (const c of claims) {
      const k = (s[c.kind] ??= {})
      if (k[c.key]) continue
      k[c.key] = c.kind === 'applied' ? (c.meta ? {meta: c.meta} : {}) : {created: now, ...(c.meta ? {meta: c.meta} : {})}
      changed = true
    }
    const emptied = new Set<OwnedKind>()
    for (const r of releases) {
      const k = s[r.kind]
      if (!k || !Object.hasOwn(k, r.key)) continue
      delete k[r.key]
      changed = true
      emptied.add(r.kind)
    }
    // Looked at once per kind, after all the releases (once per release, removing many records took quadratic time).
    for (const kind of emptied) if (isEmpty(s[kind]!)) delete s[kind]
    if (Object.keys(s).length === 0) delete data.scopes[scope]
    if (changed) save(data)
  })
}

/** Whether a record set has no records (without listing its keys: it can hold tens of thousands). */
function isEmpty(o: object): boolean {
  for (const _ in o) return false
  return true
}

export function release(scope: string, kind: OwnedKind, key: string): void {
  withLock((data) => {
    const k = data.scopes[scope]?.[kind]
    if (!k || !k[key]) return
    delete k[key]
    if (Object.keys(k).length === 0) delete data.scopes[scope]![kind]
    if (Object.keys(data.scopes[scope]!).length === 0) delete data.scopes[scope]
    save(data)
  })
}

/** Forgets everything recorded inside a namespace (it was deleted). */
export function dropScope(scope: string): void {
  withLock((data) => {
    if (!data.scopes[scope]) return
    delete data.scopes[scope]
    save(data)
  })
}

export function owned(scope: string, kind: OwnedKind): Record<string, OwnedEntry> {
  return load().scopes[scope]?.[kind] ?? {}
}

/** The scopes the ledger has records in. */
export function ledgerScopes(): string[] {
  return Object.keys(load().scopes)
}

/** The ledger file's identity as last written (inode, size, modification time in ns): any write changes it; '' when there is none. */
export function ledgerStamp(): string {
  try {
    const st = statSync(ledgerPath(), {bigint: true})
    return `${st.ino} ${st.size} ${st.mtimeNs}`
  } catch {
    return ''
  }
}

/** The whole ledger as text, unparsed (for digests of the state apply compares); empty when there is none. */
export function ledgerText(): string {
  try {
    return readFileSync(ledgerPath(), 'utf8')
  } catch {
    return ''
  }
}

export function owns(scope: string, kind: OwnedKind, key: string): boolean {
  return Boolean(load().scopes[scope]?.[kind]?.[key])
}

export {NETKIT_ALIAS, NETKIT_PROTO, NETKIT_PROTO_NAME} from './marks.js'

/** True if an `ip -j` "protocol" field is netkit's (by number, or by name once rt_protos.d names it). */
export function isNetkitProto(p: unknown): boolean {
  return p === NETKIT_PROTO || (typeof p === 'string' && (p === NETKIT_PROTO_NAME || p === String(NETKIT_PROTO) || netkitProtoNames().has(p)))
}
