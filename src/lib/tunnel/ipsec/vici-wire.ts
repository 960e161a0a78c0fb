/**
 * The VICI wire format, as strongSwan documents it
 * (src/libcharon/plugins/vici/README.md):
 *
 * - transport: segments, each a 32-bit big-endian length and that many bytes
 *   (at most 512 KiB);
 * - packet: the first byte of a segment is its type; named types (requests,
 *   event (un)registrations, events) carry an 8-bit length and the name; the
 *   rest is a message;
 * - message: a sequence of elements, each a type byte: SECTION_START (name),
 *   SECTION_END, KEY_VALUE (name, value), LIST_START (name), LIST_ITEM (value),
 *   LIST_END. Names have an 8-bit length, values a 16-bit big-endian length.
 *
 * Values are blobs; charon sends and takes strings (numbers as strings).
 * Decoded values are read as UTF-8 text.
 */
import type {ViciSection} from './vici.js'

export const PACKET = {
  CMD_REQUEST: 0,
  CMD_RESPONSE: 1,
  CMD_UNKNOWN: 2,
  EVENT_REGISTER: 3,
  EVENT_UNREGISTER: 4,
  EVENT_CONFIRM: 5,
  EVENT_UNKNOWN: 6,
  EVENT: 7,
} as const

const ELEMENT = {SECTION_START: 1, SECTION_END: 2, KEY_VALUE: 3, LIST_START: 4, LIST_ITEM: 5, LIST_END: 6} as const

/** The largest segment charon accepts or sends. */
export const MAX_SEGMENT = 512 * 1024

/** What a message is built from: sections (objects), lists (arrays), values (strings, bytes, numbers, booleans as yes/no). */
export type ViciScalar = string | Buffer | number | boolean
export type ViciInputValue = ViciScalar | ViciScalar[] | ViciInput
export interface ViciInput {
  [key: string]: ViciInputValue | undefined
}

const NAMED = new Set<number>([PACKET.CMD_REQUEST, PACKET.EVENT_REGISTER, PACKET.EVENT_UNREGISTER, PACKET.EVENT])

function nameBytes(name: string): Buffer {
  const b = Buffer.from(name, 'utf8')
  if (b.length > 255) throw new Error(`VICI name too long (${b.length} bytes, at most 255): ${name.slice(0, 40)}...`)
  return Buffer.concat([Buffer.from([b.length]), b])
}

function valueBytes(v: ViciScalar): Buffer {
  const b = Buffer.isBuffer(v) ? v : Buffer.from(typeof v === 'boolean' ? (v ? 'yes' : 'no') : String(v), 'utf8')
  if (b.length > 0xffff) throw new Error(`VICI value too long (${b.length} bytes, at most 65535)`)
  const len = Buffer.alloc(2)
  len.writeUInt16BE(b.length)
  return Buffer.concat([len, b])
}

const isSection = (v: unknown): v is ViciInput => typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v)

/** Encodes a message (the keys in their insertion order; undefined values are left out). */
export function encodeMessage(msg: ViciInput): Buffer {
  const parts: Buffer[] = []
  const walk = (section: ViciInput) => {
    for (const [key, v] of Object.entries(section)) {
      if (v === undefined) continue
      if (Array.isArray(v)) {
        parts.push(Buffer.from([ELEMENT.LIST_START]), nameBytes(key))
        for (const item of v) parts.push(Buffer.from([ELEMENT.LIST_ITEM]), valueBytes(item))
        parts.push(Buffer.from([ELEMENT.LIST_END]))
      } else if (isSection(v)) {
        parts.push(Buffer.from([ELEMENT.SECTION_START]), nameBytes(key))
        walk(v)
        parts.push(Buffer.from([ELEMENT.SECTION_END]))
      } else {
        parts.push(Buffer.from([ELEMENT.KEY_VALUE]), nameBytes(key), valueBytes(v))
      }
    }
  }
  walk(msg)
  return Buffer.concat(parts)
}

class Reader {
  private pos = 0
  constructor(private readonly buf: Buffer) {}
  get done(): boolean {
    return this.pos >= this.buf.length
  }
  byte(): number {
    if (this.pos >= this.buf.length) throw new Error('VICI message truncated')
    return this.buf[this.pos++]
  }
  bytes(n: number): Buffer {
    if (this.pos + n > this.buf.length) throw new Error('VICI message truncated')
    const b = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return b
  }
  name(): string {
    return this.bytes(this.byte()).toString('utf8')
  }
  value(): string {
    const len = this.bytes(2).readUInt16BE(0)
    return this.bytes(len).toString('utf8')
  }
  rest(): Buffer {
    const b = this.buf.subarray(this.pos)
    this.pos = this.buf.length
    return b
  }
}

/** Decodes a message into sections (objects), lists (string arrays) and values (strings). Throws on a malformed one. */
export function decodeMessage(buf: Buffer): ViciSection {
  const r = new Reader(buf)
  const root: ViciSection = {}
  const stack: ViciSection[] = [root]
  let list: string[] | undefined
  while (!r.done) {
    const type = r.byte()
    const top = stack.at(-1)!
    if (list && type !== ELEMENT.LIST_ITEM && type !== ELEMENT.LIST_END) throw new Error(`VICI element ${type} inside a list`)
    switch (type) {
      case ELEMENT.SECTION_START: {
        const sec: ViciSection = {}
        top[r.name()] = sec
        stack.push(sec)
        break
      }
      case ELEMENT.SECTION_END:
        if (stack.length === 1) throw new Error('VICI section end without a start')
        stack.pop()
        break
      case ELEMENT.KEY_VALUE: {
        const key = r.name()
        top[key] = r.value()
        break
      }
      case ELEMENT.LIST_START:
        list = []
        top[r.name()] = list
        break
      case ELEMENT.LIST_ITEM:
        if (!list) throw new Error('VICI list item outside a list')
        list.push(r.value())
        break
      case ELEMENT.LIST_END:
        if (!list) throw new Error('VICI list end without a start')
        list = undefined
        break
      default:
        throw new Error(`unknown VICI element type ${type}`)
    }
  }
  if (stack.length !== 1 || list) throw new Error('VICI message ends inside a section or list')
  return root
}

export interface Packet {
  type: number
  name?: string
  message?: ViciSection
}

/** One packet as a transport segment (length header included). */
export function encodePacket(type: number, name?: string, message?: ViciInput): Buffer {
  const body = Buffer.concat([Buffer.from([type]), ...(NAMED.has(type) ? [nameBytes(name ?? '')] : []), message ? encodeMessage(message) : Buffer.alloc(0)])
  if (body.length > MAX_SEGMENT) throw new Error(`VICI packet too large (${body.length} bytes, at most ${MAX_SEGMENT})`)
  const len = Buffer.alloc(4)
  len.writeUInt32BE(body.length)
  return Buffer.concat([len, body])
}

/** Decodes one segment's bytes (without the length header). */
export function decodePacket(segment: Buffer): Packet {
  const r = new Reader(segment)
  const type = r.byte()
  const name = NAMED.has(type) ? r.name() : undefined
  const rest = r.rest()
  return {
    type,
    ...(name !== undefined ? {name} : {}),
    ...(rest.length > 0 || type === PACKET.CMD_RESPONSE || type === PACKET.EVENT ? {message: decodeMessage(rest)} : {}),
  }
}

/** Cuts a byte stream into packets (segments may arrive split or joined). */
export class PacketReader {
  private buf: Buffer = Buffer.alloc(0)

  push(chunk: Buffer): Packet[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk
    const out: Packet[] = []
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0)
      if (len > MAX_SEGMENT) throw new Error(`VICI segment too large (${len} bytes)`)
      if (this.buf.length < 4 + len) break
      out.push(decodePacket(this.buf.subarray(4, 4 + len)))
      this.buf = this.buf.subarray(4 + len)
    }
    return out
  }
}
