/**
 * The kernel's neighbour tables (ARP for IPv4, NDISC for IPv6): how full they
 * are, their hard limit, and how often they overflowed. There is one table of
 * each for the whole machine, every namespace's entries in it, and its limits
 * (net.ipv4.neigh.default.gc_thresh3, 1,024 by default) can be set only in the
 * root namespace. Past the limit the kernel cannot make an entry for a new
 * neighbour and drops packets to it ("neighbor table overflow!" in the kernel's
 * log; ping says "No buffer space available" and sends nothing), which a host
 * meeting many peers on one link (a large mesh on a flat underlay) runs into.
 */
import {readFileSync} from 'node:fs'

import type {Runner} from './runner.js'

export interface NeighbourTable {
  /** "arp_cache" (IPv4) or "ndisc_cache" (IPv6). */
  name: string
  family: 4 | 6
  /** Entries now, in every namespace of the machine. */
  entries: number
  /** The hard limit (gc_thresh3). */
  limit: number
  /** How many times since boot an entry could not be made because the table was full. */
  overflows: number
}

const TABLES = [
  {name: 'arp_cache', family: 4 as const},
  {name: 'ndisc_cache', family: 6 as const},
]

/**
 * /proc/net/stat/<table> (root namespace only): a header, then one line of hex
 * counters per CPU; "entries" is the table's own count (the same on every
 * line), "table_fulls" is counted per CPU.
 */
export function parseNeighbourStat(text: string): {entries: number; overflows: number} | undefined {
  const [header, ...lines] = text.trim().split('\n')
  const cols = header?.trim().split(/\s+/) ?? []
  const at = (name: string) => cols.indexOf(name)
  if (at('entries') < 0 || at('table_fulls') < 0 || lines.length === 0) return undefined
  const rows = lines.map((l) =>
    l
      .trim()
      .split(/\s+/)
      .map((x) => Number.parseInt(x, 16)),
  )
  return {entries: rows[0][at('entries')], overflows: rows.reduce((s, r) => s + (r[at('table_fulls')] || 0), 0)}
}

/** `ip -j -s ntable show` (from any namespace): the same figures, for where /proc/net/stat is not there. */
export function parseNtables(json: string): NeighbourTable[] {
  const all = JSON.parse(json) as Array<Record<string, unknown>>
  return TABLES.flatMap(({name, family}) => {
    // The table itself (the entry with its limits), not its per-device parameter sets.
    const t = all.find((x) => x.name === name && x.thresh3 !== undefined)
    if (!t) return []
    return [{name, family, entries: Number(t.entries ?? 0), limit: Number(t.thresh3), overflows: Number(t.table_fulls ?? 0)}]
  })
}

const read = (path: string) => {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

/** The machine's neighbour tables: from /proc (no process) in the root namespace, else from `ip ntable`. */
export async function neighbourTables(runner: Runner): Promise<NeighbourTable[]> {
  if (runner.real) {
    const fromProc = TABLES.map(({name, family}) => {
      const stat = parseNeighbourStat(read(`/proc/net/stat/${name}`) ?? '')
      const limit = Number(read(`/proc/sys/net/ipv${family}/neigh/default/gc_thresh3`))
      return stat && limit > 0 ? {name, family, limit, ...stat} : undefined
    })
    if (fromProc.every(Boolean)) return fromProc as NeighbourTable[]
  }
  return parseNtables(await runner.read({tool: 'ip', args: ['-j', '-s', 'ntable', 'show']}))
}

/**
 * Limits for a table that holds `entries` now: room to double, at least twice
 * the present limit, in powers of two (gc_thresh2 half of it, gc_thresh1 a quarter,
 * as the kernel's defaults are).
 */
export function roomyLimits(t: NeighbourTable): {thresh1: number; thresh2: number; thresh3: number} {
  let thresh3 = 1024
  while (thresh3 < Math.max(2 * t.limit, 2 * t.entries)) thresh3 *= 2
  return {thresh1: thresh3 / 4, thresh2: thresh3 / 2, thresh3}
}
