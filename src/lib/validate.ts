/**
 * Input validation: every value from the user is checked here, before
 * anything runs, and a bad one becomes a UsageError (exit 2) that says what is
 * wrong and how to fix it. IP math is ipaddr.js's.
 */
import ipaddr from 'ipaddr.js'

import {UsageError} from './errors.js'

const NAME_CHARS = /^[A-Za-z0-9_.-]+$/

/** Linux interface names: 1 to 15 bytes, no '/', ':', white space; netkit also refuses shell metacharacters. */
export function ifname(value: string, what = 'interface name'): string {
  if (value.length === 0) throw new UsageError(`${what} is empty`, 'give a name of 1 to 15 characters')
  if (value.length > 15) {
    throw new UsageError(`${what} "${value}" is ${value.length} characters long; Linux allows at most 15`, 'choose a shorter name')
  }
  if (!NAME_CHARS.test(value) || value === '.' || value === '..') {
    throw new UsageError(`${what} "${value}" has characters Linux or netkit does not allow`, "use only letters, digits, '.', '-' and '_'")
  }
  return value
}

export function netnsName(value: string): string {
  if (value.length === 0 || value.length > 64 || !NAME_CHARS.test(value) || value === '.' || value === '..') {
    throw new UsageError(`network namespace name "${value}" is not valid`, "use 1 to 64 letters, digits, '.', '-' or '_'")
  }
  return value
}

/** A name netkit gives to something it owns (tables, tunnels). */
export function objectName(value: string, what: string, max = 32): string {
  if (value.length === 0 || value.length > max || !/^[A-Za-z][A-Za-z0-9_.-]*$/.test(value)) {
    throw new UsageError(`${what} "${value}" is not valid`, `start with a letter and use up to ${max} letters, digits, '.', '-' or '_'`)
  }
  return value
}

export type Family = 4 | 6

export interface Address {
  ip: string
  family: Family
}

/**
 * A strict dotted-decimal IPv4 address ("10.0.0.1": four parts of 0-255, no
 * leading zeros), already canonical, as a 32-bit number; -1 for anything
 * else. The hot path for files with tens of thousands of addresses;
 * ipaddr.js decides every other case.
 */
function dottedQuad(s: string): number {
  let n = 0
  let part = 0
  let digits = 0
  let dots = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 46) {
      if (digits === 0 || part > 255 || ++dots > 3) return -1
      n = n * 256 + part
      part = 0
      digits = 0
    } else if (c >= 48 && c <= 57) {
      if ((digits > 0 && part === 0) || ++digits > 3) return -1
      part = part * 10 + (c - 48)
    } else return -1
  }
  if (dots !== 3 || digits === 0 || part > 255) return -1
  return n * 256 + part
}

const quadText = (n: number) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`

export function ipAddress(value: string, what = 'address'): Address {
  const v = value.trim()
  if (dottedQuad(v) >= 0) return {ip: v, family: 4}
  if (!v.includes(':') || !ipaddr.IPv6.isValid(v) || v.includes('%'))
    throw new UsageError(`${what} "${value}" is not an IP address`, 'write it like 192.0.2.1 or 2001:db8::1')
  return {ip: ipaddr.IPv6.parse(v).toString(), family: 6}
}

export interface Cidr {
  /** Normalized, e.g. "10.0.0.0/24" or "10.0.0.1/24" for interface addresses. */
  cidr: string
  ip: string
  prefix: number
  family: Family
}

function parseCidr(value: string, what: string): Cidr {
  const v = value.trim()
  const slash = v.indexOf('/')
  const ipPart = slash < 0 ? v : v.slice(0, slash)
  const {ip, family} = ipAddress(ipPart, what)
  const max = family === 4 ? 32 : 128
  let prefix = max
  if (slash >= 0) {
    const p = v.slice(slash + 1)
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) {
      throw new UsageError(`${what} "${value}" has a bad prefix length`, `use a number from 0 to ${max} after the slash`)
    }
    prefix = Number(p)
  }
  return {cidr: `${ip}/${prefix}`, ip, prefix, family}
}

/** A network (route destination, subnet): host bits must be zero. A bare address means /32 or /128. */
export function network(value: string, what = 'network'): Cidr {
  const c = parseCidr(value, what)
  if (c.family === 4) {
    const n = dottedQuad(c.ip)
    const base = n - (n % 2 ** (32 - c.prefix))
    if (base !== n) throw new UsageError(`${what} "${value}" has host bits set`, `did you mean ${quadText(base)}/${c.prefix}? (a network has zero host bits)`)
    return c
  }
  const base = ipaddr.IPv6.networkAddressFromCIDR(c.cidr).toString()
  if (base !== c.ip) {
    throw new UsageError(`${what} "${value}" has host bits set`, `did you mean ${base}/${c.prefix}? (a network has zero host bits)`)
  }
  return c
}

/** An interface address: keeps its host bits. A bare address means /32 or /128. Not the unspecified address, a multicast one, or a /0. */
export function interfaceAddress(value: string, what = 'address'): Cidr {
  const c = parseCidr(value, what)
  const range = ipaddr.parse(c.ip).range()
  if (range === 'unspecified' || range === 'multicast' || c.prefix === 0) {
    throw new UsageError(
      `${what} "${value}" cannot be an interface's address (${c.prefix === 0 ? 'a /0 holds every address' : `it is ${range === 'unspecified' ? 'the unspecified address' : 'a multicast address'}`})`,
      'give the host address with its subnet prefix, e.g. 10.1.0.1/24',
    )
  }
  return c
}

/** Route destination: a network or "default" (0.0.0.0/0 and ::/0 are the default route: the kernel shows them as "default"). */
export function routeDestination(value: string): Cidr | 'default' {
  if (value === 'default') return 'default'
  return network(value, 'route destination')
}

/** The destination as iproute2 reports it: "default" for a /0. */
export const dstText = (d: Cidr | 'default') => (d === 'default' || d.prefix === 0 ? 'default' : d.cidr)

export function integer(value: string, what: string, min: number, max: number): number {
  const v = value.trim()
  let n: number
  if (/^0x[0-9a-f]+$/i.test(v)) n = Number.parseInt(v.slice(2), 16)
  else if (/^\d+$/.test(v)) n = Number(v)
  else throw new UsageError(`${what} "${value}" is not a number`, `give a whole number from ${min} to ${max}`)
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${what} ${value} is out of range`, `give a whole number from ${min} to ${max}`)
  }
  return n
}

export const U32_MAX = 0xffff_ffff

/** A whole number from min to max, as a file's data holds it (the quick checks of host-file entries: apply/host-file.ts). */
export const isIntIn = (x: unknown, min: number, max: number): x is number => Number.isSafeInteger(x) && (x as number) >= min && (x as number) <= max

/** A map (NAME: VALUE) in a file's data: an object, not null, not a list. */
export const isMap = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)

export interface Mark {
  value: number
  mask?: number
}

/** A firewall mark, "V" or "V/MASK", decimal or 0x hex, 32 bits each. */
export function mark(value: string, what = 'mark'): Mark {
  const [v, m, extra] = value.split('/')
  if (extra !== undefined) throw new UsageError(`${what} "${value}" is not valid`, 'write it as VALUE or VALUE/MASK, e.g. 0x100/0xff00')
  const out: Mark = {value: integer(v, what, 0, U32_MAX)}
  if (m !== undefined) out.mask = integer(m, `${what} mask`, 0, U32_MAX)
  return out
}

export function formatMark(m: Mark): string {
  const hex = (n: number) => `0x${n.toString(16)}`
  return m.mask === undefined ? hex(m.value) : `${hex(m.value)}/${hex(m.mask)}`
}

/** ESP SPI: 32 bits; 0 to 255 are reserved by RFC 4303. */
export function spi(value: string): number {
  return integer(value, 'SPI', 256, U32_MAX)
}

export function mtu(value: string): number {
  return integer(value, 'MTU', 68, 65535)
}

export function port(value: string, what = 'port'): number {
  return integer(value, what, 1, 65535)
}

export function sameFamily(a: {family: Family}, b: {family: Family}, what: string): void {
  if (a.family !== b.family) throw new UsageError(`${what} mixes IPv4 and IPv6`, 'use addresses of one family')
}

/** True if two networks overlap. */
export function overlaps(a: string, b: string): boolean {
  const pa = ipaddr.parseCIDR(a)
  const pb = ipaddr.parseCIDR(b)
  if (pa[0].kind() !== pb[0].kind()) return false
  return pa[0].match(pb) || pb[0].match(pa)
}

/** The addresses a CIDR covers, as numbers (family: 4 or 16, the address length in bytes). IPv4 without ipaddr.js: thousands at a time. */
export function span(cidr: string): {family: number; start: bigint; end: bigint} {
  const slash = cidr.indexOf('/')
  const q = dottedQuad(slash < 0 ? cidr : cidr.slice(0, slash))
  let start: bigint
  let bits: number
  let len: number
  if (q >= 0) {
    start = BigInt(q)
    bits = 32
    len = slash < 0 ? 32 : Number(cidr.slice(slash + 1))
  } else {
    const [addr, l] = ipaddr.parseCIDR(cidr)
    start = 0n
    for (const b of addr.toByteArray()) start = (start << 8n) | BigInt(b)
    bits = addr.kind() === 'ipv4' ? 32 : 128
    len = l
  }
  const size = 1n << BigInt(bits - len)
  start -= start % size
  return {family: bits / 8, start, end: start + size - 1n}
}

/**
 * Two of the networks that overlap (the first found), or undefined: sorted by
 * start, in O(n log n), for lists of thousands (a mesh's allowed-ips).
 */
export function firstOverlap<T extends {cidr: string}>(items: T[]): [T, T] | undefined {
  const spans = items.map((item) => ({item, ...span(item.cidr)}))
  spans.sort((a, b) => a.family - b.family || (a.start < b.start ? -1 : a.start > b.start ? 1 : 0))
  let widest: (typeof spans)[number] | undefined
  for (const s of spans) {
    if (widest && widest.family === s.family && s.start <= widest.end) return [widest.item, s.item]
    if (!widest || widest.family !== s.family || s.end > widest.end) widest = s
  }
  return undefined
}

/** True if the address lies in the network. */
export function contains(net: string, ip: string): boolean {
  const n = ipaddr.parseCIDR(net)
  const a = ipaddr.parse(ip)
  return a.kind() === n[0].kind() && a.match(n)
}

/** The network of an interface address: "10.9.0.1/24" -> "10.9.0.0/24". */
export function networkOf(cidr: string): string {
  const [addr, prefix] = ipaddr.parseCIDR(cidr)
  const net = addr.kind() === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(cidr) : ipaddr.IPv6.networkAddressFromCIDR(cidr)
  return `${net.toString()}/${prefix}`
}

/** A multicast group address (VXLAN --group). */
export function multicast(value: string, what = 'group'): Address {
  const a = ipAddress(value, what)
  if (ipaddr.parse(a.ip).range() !== 'multicast')
    throw new UsageError(
      `${what} ${value} is not a multicast address`,
      'use an address in 224.0.0.0/4 (IPv4) or ff00::/8 (IPv6), or --remote for a unicast peer',
    )
  return a
}

/** A unicast address (VXLAN --remote): not a multicast group. */
export function unicast(value: string, what = 'address'): Address {
  const a = ipAddress(value, what)
  if (ipaddr.parse(a.ip).range() === 'multicast')
    throw new UsageError(`${what} ${value} is a multicast address`, "use --group for a multicast group, or give the peer's unicast address")
  return a
}

/** The first host of a network ("10.2.0.0/24" -> "10.2.0.1"); a /31, /32, /127 or /128 is its own address. */
export function firstHost(cidr: string): string {
  const [net, len] = ipaddr.parseCIDR(cidr)
  const bytes = net.toByteArray()
  if (len >= bytes.length * 8 - 1) return net.toString()
  bytes[bytes.length - 1] += 1
  return ipaddr.fromByteArray(bytes).toString()
}

/** Orders two addresses of one family as numbers (negative: a is lower). */
export function compareAddresses(a: string, b: string): number {
  const x = ipaddr.parse(a).toByteArray()
  const y = ipaddr.parse(b).toByteArray()
  if (x.length !== y.length) return x.length - y.length
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i]
  return 0
}
