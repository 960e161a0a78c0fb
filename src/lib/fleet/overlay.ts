/**
 * Overlay addresses: a host's own when the inventory gives one, else one from
 * the pool. Assignments are stored (OUTDIR/overlay.yaml) and read back at the
 * next render, so they are stable when hosts come and go: a host keeps the
 * address it had as long as it is in the inventory (adding host 11 does not
 * renumber hosts 1 to 10; removing one does not move the others). A new host
 * gets the lowest free address of the pool, new hosts in the inventory's
 * order; so even without the stored file, hosts appended to an inventory get
 * the addresses they would have had.
 */
import {UsageError} from '../errors.js'
import {parseYaml, toYaml} from '../yaml.js'
import * as v from '../validate.js'
import {fromBig, inPool, type Inventory, poolRange, toBig} from './inventory.js'

export const OVERLAY_FILE = 'overlay.yaml'

export interface Assignment {
  /** Host name -> overlay address (no prefix), in the inventory's order. */
  addresses: Map<string, string>
  /** Hosts whose address came from the pool this time (new, or their old one was taken or left the pool). */
  fresh: string[]
}

/** The stored assignments (host -> address), or none. A stored file that cannot be read is an error: renumbering a fleet silently is worse. */
export function readAssignments(text: string | undefined, source: string): Map<string, string> {
  const out = new Map<string, string>()
  if (text === undefined) return out
  let data: unknown
  try {
    data = parseYaml(text, source)
  } catch {
    data = undefined
  }
  const hosts = (data as {hosts?: unknown} | undefined)?.hosts
  if (typeof hosts !== 'object' || hosts === null || Array.isArray(hosts)) {
    throw new UsageError(
      `${source} is not an overlay record netkit wrote (no "hosts:" map)`,
      'restore it from your copy of the output folder, or remove it to assign addresses afresh (hosts may be renumbered)',
      'E_FILE',
    )
  }
  for (const [name, ip] of Object.entries(hosts as Record<string, unknown>)) {
    try {
      out.set(name, v.ipAddress(String(ip)).ip)
    } catch {
      throw new UsageError(
        `${source}: hosts.${name}: "${String(ip)}" is not an address`,
        'restore the file from your copy, or remove that line (the host gets a new address)',
        'E_FILE',
      )
    }
  }
  return out
}

export function writeAssignments(inv: Inventory, a: Assignment): string {
  const hosts: Record<string, string> = {}
  // By name: the record does not change when the inventory is only reordered.
  for (const name of inv.hosts.map((h) => h.name).sort()) hosts[name] = a.addresses.get(name)!
  return `# Overlay addresses assigned by "netkit fleet render": read back at each render so that they stay stable.\n# Keep this file with the inventory. Removing it may renumber hosts.\n${toYaml({version: 1, pool: inv.pool.cidr, hosts})}`
}

/**
 * Assigns every host its overlay address: the inventory's, then the stored
 * one (if still free and in the pool), then the lowest free one. A pool with
 * no address left is an error naming the first host that found none.
 */
export function assignOverlay(inv: Inventory, stored: Map<string, string>, source = 'the inventory'): Assignment {
  const addresses = new Map<string, string>()
  const taken = new Set<bigint>()
  for (const h of inv.hosts) {
    if (h.overlay === undefined) continue
    addresses.set(h.name, h.overlay)
    taken.add(toBig(h.overlay))
  }
  for (const h of inv.hosts) {
    const old = stored.get(h.name)
    if (addresses.has(h.name) || old === undefined || v.ipAddress(old).family !== inv.pool.family || !inPool(inv.pool, old)) continue
    const n = toBig(old)
    if (taken.has(n)) continue
    addresses.set(h.name, old)
    taken.add(n)
  }
  const {first, last} = poolRange(inv.pool)
  const fresh: string[] = []
  let next = first
  for (const h of inv.hosts) {
    if (addresses.has(h.name)) continue
    while (next <= last && taken.has(next)) next++
    if (next > last) {
      const size = last - first + 1n
      throw new UsageError(
        `${source}: pool: ${inv.pool.cidr} has no address left for host ${h.name} (${size} address${size === 1n ? '' : 'es'} for ${inv.hosts.length} hosts)`,
        'use a larger pool, or give hosts their overlay address',
        'E_INVENTORY',
      )
    }
    addresses.set(h.name, fromBig(next, inv.pool.family))
    taken.add(next)
    fresh.push(h.name)
  }
  // In the inventory's order.
  return {addresses: new Map(inv.hosts.map((h) => [h.name, addresses.get(h.name)!])), fresh}
}
