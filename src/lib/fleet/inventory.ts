/**
 * The fleet inventory `netkit fleet render` reads: the hosts of a mesh (name,
 * underlay address, optional subnets behind the host, optional overlay
 * address), the tunnel type, the topology and the overlay pool. Validated with
 * zod, then checked across hosts; the first problem is one line naming the
 * host and the field ("fleet.yaml: hosts.b.address: 192.0.2.1 is also host a's
 * address"), exit 2.
 *
 * Host names. Every host name is a peer name on the others, and its bundle's
 * directory name. IPsec has one tunnel per peer, named after the peer, so an
 * IPsec fleet's names are tunnel names: a letter, then up to 11 letters,
 * digits, '-' or '_'. A WireGuard fleet's names are WireGuard peer names: a
 * letter or digit, then up to 62 letters, digits, '.', '-' or '_'.
 */
import ipaddr from 'ipaddr.js'
import {z} from 'zod/v4'

import {UsageError} from '../errors.js'
import * as v from '../validate.js'
import {schemaParts} from '../kinds/schema-parts.js'
import {parseYaml} from '../yaml.js'

const {parsed} = schemaParts

export const FLEET_TYPES = ['wireguard', 'ipsec'] as const
export const TOPOLOGIES = ['full-mesh', 'hub-and-spoke'] as const
export type FleetType = (typeof FLEET_TYPES)[number]
export type Topology = (typeof TOPOLOGIES)[number]

/** Host names, by fleet type (see the module comment). */
export const HOST_NAME: Record<FleetType, {re: RegExp; rule: string}> = {
  ipsec: {re: /^[A-Za-z][A-Za-z0-9_-]{0,11}$/, rule: "an IPsec fleet's host names are its tunnel names: a letter, then up to 11 letters, digits, '-' or '_'"},
  wireguard: {re: /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, rule: "a host name: a letter or digit, then up to 62 letters, digits, '.', '-' or '_'"},
}

export const DEFAULT_TUNNEL = 'mesh'
export const DEFAULT_LISTEN_PORT = 51820

export interface FleetHost {
  name: string
  /** The underlay address (normalized). */
  address: v.Address
  /** Networks behind the host (normalized CIDRs), carried by the mesh. */
  subnets: string[]
  /** The overlay address the inventory gives (no prefix), if any. */
  overlay?: string
}

export interface Inventory {
  type: FleetType
  topology: Topology
  /** hub-and-spoke: the hubs, in the inventory's order (the first carries spoke-to-spoke traffic). */
  hubs: string[]
  tunnel: string
  listenPort: number
  pool: v.Cidr
  keepalive?: number
  /** In the inventory's order. */
  hosts: FleetHost[]
}

const Host = z.strictObject({
  address: parsed((s) => v.ipAddress(s, 'the underlay address'), 'IP address'),
  subnets: z.array(parsed((s) => v.network(s, 'subnet').cidr, 'network (CIDR)')).default([]),
  overlay: parsed((s) => v.ipAddress(s, 'the overlay address').ip, 'IP address').optional(),
})

const Schema = z.strictObject({
  version: z.literal(1, {error: (i) => (i.input === undefined ? 'missing: an inventory starts with "version: 1"' : 'netkit reads version 1 inventories')}),
  type: z.enum(FLEET_TYPES),
  topology: z.enum(TOPOLOGIES).default('full-mesh'),
  hubs: z.array(z.string()).optional(),
  tunnel: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9_-]{0,11}$/, 'a tunnel name: a letter, then up to 11 letters, digits, - or _')
    .default(DEFAULT_TUNNEL),
  listenPort: z.number().int().min(1).max(65535).default(DEFAULT_LISTEN_PORT),
  pool: parsed((s) => v.network(s, 'the pool'), 'network (CIDR)'),
  keepalive: z.number().int().min(1).max(65535).optional(),
  // Checked entry by entry below (names first), so that the error names the host.
  hosts: z.custom<Record<string, unknown>>((x) => typeof x === 'object' && x !== null && !Array.isArray(x), 'expected a map of hosts (NAME: {address: ...})'),
})

type Issue = {path: (string | number)[]; message: string}

class Bad extends Error {
  constructor(readonly issue: Issue) {
    super(issue.message)
  }
}

const bad = (path: (string | number)[], message: string): never => {
  throw new Bad({path, message})
}

/** The host addresses a pool holds (not the network and broadcast addresses of an IPv4 pool larger than a /31, nor an IPv6 pool's subnet-router anycast address). */
export function poolRange(pool: v.Cidr): {first: bigint; last: bigint; bits: number} {
  const bits = pool.family === 4 ? 32 : 128
  const base = toBig(pool.ip)
  const size = 1n << BigInt(bits - pool.prefix)
  const last = base + size - 1n
  if (pool.family === 4) return pool.prefix >= 31 ? {first: base, last, bits} : {first: base + 1n, last: last - 1n, bits}
  return pool.prefix >= 127 ? {first: base, last, bits} : {first: base + 1n, last, bits}
}

export function toBig(ip: string): bigint {
  return ipaddr
    .parse(ip)
    .toByteArray()
    .reduce((n, b) => (n << 8n) | BigInt(b), 0n)
}

export function fromBig(n: bigint, family: v.Family): string {
  const bytes: number[] = []
  for (let i = 0; i < (family === 4 ? 4 : 16); i++) {
    bytes.unshift(Number(n & 255n))
    n >>= 8n
  }
  return ipaddr.fromByteArray(bytes).toString()
}

export const inPool = (pool: v.Cidr, ip: string): boolean => {
  const {first, last} = poolRange(pool)
  const n = toBig(ip)
  return v.ipAddress(ip).family === pool.family && n >= first && n <= last
}

function crossChecks(inv: Inventory): void {
  const hostsAt = (name: string) => ['hosts', name]
  const underlayFamily = inv.hosts[0]?.address.family
  const seenAddress = new Map<string, string>()
  const seenOverlay = new Map<string, string>()
  const nets: {net: string; what: string}[] = [{net: inv.pool.cidr, what: `the pool ${inv.pool.cidr}`}]
  for (const h of inv.hosts) {
    const at = hostsAt(h.name)
    if (h.address.family !== underlayFamily)
      bad(
        [...at, 'address'],
        `${h.address.ip} is IPv${h.address.family} and host ${inv.hosts[0].name}'s is IPv${underlayFamily}: the hosts of a fleet reach each other over one address family`,
      )
    const other = seenAddress.get(h.address.ip)
    if (other) bad([...at, 'address'], `${h.address.ip} is also host ${other}'s address`)
    seenAddress.set(h.address.ip, h.name)
    if (h.overlay !== undefined) {
      if (!inPool(inv.pool, h.overlay)) bad([...at, 'overlay'], `${h.overlay} is not a host address of the pool ${inv.pool.cidr}`)
      const o = seenOverlay.get(h.overlay)
      if (o) bad([...at, 'overlay'], `${h.overlay} is also host ${o}'s overlay address`)
      seenOverlay.set(h.overlay, h.name)
    }
    h.subnets.forEach((s, i) => {
      const clash = nets.find((n) => v.overlaps(n.net, s))
      if (clash) bad([...at, 'subnets', i], `${s} overlaps ${clash.what}`)
      nets.push({net: s, what: `host ${h.name}'s subnet ${s}`})
    })
  }
  // An underlay address inside the overlay would be routed into the mesh it carries.
  for (const h of inv.hosts) {
    const inside = nets.find((n) => v.contains(n.net, h.address.ip))
    if (inside) bad([...hostsAt(h.name), 'address'], `${h.address.ip} is inside ${inside.what}: the underlay cannot be carried by the mesh`)
  }
  if (inv.topology === 'hub-and-spoke') {
    if (inv.hubs.length === 0) bad(['hubs'], 'hub-and-spoke needs hubs: [NAME, ...] (hosts of the inventory)')
    const names = new Set(inv.hosts.map((h) => h.name))
    inv.hubs.forEach((hub, i) => {
      if (!names.has(hub)) bad(['hubs', i], `${hub} is not a host of the inventory`)
      if (inv.hubs.indexOf(hub) !== i) bad(['hubs', i], `${hub} is listed twice`)
    })
  } else if (inv.hubs.length > 0) bad(['hubs'], 'hubs are for topology: hub-and-spoke (this inventory is a full mesh)')
}

/** A duplicate key, as its path in the file ("hosts.b: listed twice (line 7)"), from js-yaml's error. */
function duplicateKey(text: string, error: unknown): string | undefined {
  const e = error as {reason?: string; mark?: {line: number}}
  if (e?.reason !== 'duplicated mapping key' || !e.mark) return undefined
  const lines = text.split('\n')
  const path: string[] = []
  let indent = Infinity
  for (let i = e.mark.line; i >= 0; i--) {
    const m = /^(\s*)(?:-\s+)?["']?([^"':#\s][^"':]*)["']?\s*:/.exec(lines[i] ?? '')
    if (!m || m[1].length >= indent) continue
    path.unshift(m[2].trim())
    indent = m[1].length
    if (indent === 0) break
  }
  return `${path.join('.') || `line ${e.mark.line + 1}`}: listed twice (line ${e.mark.line + 1})`
}

/**
 * Parses and checks an inventory. `source` names it in errors. Throws a
 * UsageError (exit 2) naming the host and the field of the first problem.
 */
export function parseInventory(text: string, source: string): Inventory {
  let data: unknown
  try {
    data = parseYaml(text, source)
  } catch (error) {
    const dup = duplicateKey(text, error)
    if (dup) throw new UsageError(`${source}: ${dup}`, 'list each host (and each field) once', 'E_INVENTORY')
    throw new UsageError(`${source} is not valid YAML: ${String(error instanceof Error ? error.message : error).split('\n')[0]}`, 'fix its syntax', 'E_FILE')
  }
  if (data === null || data === undefined) throw new UsageError(`${source} is empty`, 'an inventory starts with "version: 1" (see docs/fleet.md)', 'E_FILE')
  const fail = (issue: Issue): never => {
    const path = issue.path.length ? issue.path.map(String).join('.') : '(top level)'
    throw new UsageError(`${source}: ${path}: ${issue.message}`, 'fix that entry (see docs/fleet.md)', 'E_INVENTORY')
  }
  const r = Schema.safeParse(data)
  if (!r.success) return fail(r.error.issues[0] as Issue)
  const top = r.data
  const rule = HOST_NAME[top.type]
  const hosts: FleetHost[] = []
  const entries = Object.keys(top.hosts)
  if (entries.length === 0) fail({path: ['hosts'], message: 'no hosts: list at least one'})
  for (const name of entries) {
    if (!rule.re.test(name)) fail({path: ['hosts', name], message: `"${name}" is not a usable host name: ${rule.rule}`})
    if (name === 'overlay.yaml') fail({path: ['hosts', name], message: 'the render keeps its overlay record under that name: pick another host name'})
    const hr = Host.safeParse(top.hosts[name] ?? {})
    if (!hr.success) fail({...hr.error.issues[0], path: ['hosts', name, ...hr.error.issues[0].path]} as Issue)
    const h = hr.data!
    if (h.overlay !== undefined && v.ipAddress(h.overlay).family !== top.pool.family)
      fail({path: ['hosts', name, 'overlay'], message: `${h.overlay} is not of the pool's address family (${top.pool.cidr})`})
    hosts.push({name, address: h.address, subnets: h.subnets, ...(h.overlay === undefined ? {} : {overlay: h.overlay})})
  }
  // Names that differ only in case would be one directory on some file systems, and confuse people everywhere.
  const lower = new Map<string, string>()
  for (const h of hosts) {
    const o = lower.get(h.name.toLowerCase())
    if (o) fail({path: ['hosts', h.name], message: `the same name as host ${o} but for case`})
    lower.set(h.name.toLowerCase(), h.name)
  }
  const inv: Inventory = {
    type: top.type,
    topology: top.topology,
    hubs: top.hubs ?? [],
    tunnel: top.tunnel,
    listenPort: top.listenPort,
    pool: top.pool,
    ...(top.keepalive === undefined ? {} : {keepalive: top.keepalive}),
    hosts,
  }
  try {
    crossChecks(inv)
  } catch (error) {
    if (error instanceof Bad) fail(error.issue)
    throw error
  }
  return inv
}
