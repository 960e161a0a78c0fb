/**
 * The building blocks of the host file's zod schema, shared by the kinds'
 * schema pieces (each kind module has a function of these parts that returns
 * its entry's schema; apply/schema.ts composes the host file from them). Only
 * apply/schema.ts loads this module (and zod with it): a kind module imports
 * its type only, so reading the live state never loads zod.
 */
import {z} from 'zod/v4'

import {UsageError} from '../errors.js'
import * as v from '../validate.js'
import {kindOf} from './schema-kinds.js'

/** A string checked (and normalized) by one of validate.ts's parsers: its message becomes the issue at that path. */
const parsed = <T>(fn: (s: string) => T, type: string) =>
  kindOf(
    {type},
    z.string().transform((s, ctx) => {
      try {
        return fn(s)
      } catch (error) {
        ctx.addIssue({code: 'custom', message: error instanceof UsageError ? error.what : String(error), input: s})
        return z.NEVER
      }
    }),
  )

/**
 * A list checked entry by entry, stopping at the first bad one: a file of a
 * million bad entries gets its one error at once (an array schema would
 * collect a million issues first). `fast`: the kind's own check of its common
 * entries, giving exactly what `item` gives, or undefined to let `item` decide
 * (and say what is wrong); a file of bulk entries is checked in a fraction of the time.
 */
function list<T extends z.ZodType>(item: T, fast?: (x: unknown) => z.output<T> | undefined) {
  return kindOf(
    {type: 'list', item},
    z.array(z.unknown()).transform((xs, ctx) => {
      const out: z.output<T>[] = new Array(xs.length)
      for (let i = 0; i < xs.length; i++) {
        const quick = fast?.(xs[i])
        if (quick !== undefined) {
          out[i] = quick
          continue
        }
        const r = item.safeParse(xs[i])
        if (!r.success) {
          const issue = r.error.issues[0]
          ctx.addIssue({...issue, path: [i, ...issue.path], continue: false} as Parameters<typeof ctx.addIssue>[0])
          return z.NEVER
        }
        out[i] = r.data
      }
      return out
    }),
  )
}

/**
 * A map (NAME: VALUE) as an object without a prototype, every key checked by
 * `key`: "__proto__", "constructor" or "toString" is a name like any other
 * (or bad input), never an object's inner workings. Stops at the first bad entry.
 */
function map<V extends z.ZodType>(key: z.ZodType<string>, value: V) {
  return kindOf(
    {type: 'map', value},
    z
      .custom<Record<string, unknown>>((x) => typeof x === 'object' && x !== null && !Array.isArray(x), 'Invalid input: expected a map (NAME: VALUE)')
      .transform((obj, ctx) => {
        const out = Object.create(null) as Record<string, z.output<V>>
        for (const k of Object.keys(obj)) {
          const kr = key.safeParse(k)
          if (!kr.success) {
            ctx.addIssue({code: 'custom', path: [k], message: kr.error.issues[0].message, input: k, continue: false})
            return z.NEVER
          }
          const vr = value.safeParse(obj[k])
          if (!vr.success) {
            const issue = vr.error.issues[0]
            ctx.addIssue({...issue, path: [k, ...issue.path], continue: false} as Parameters<typeof ctx.addIssue>[0])
            return z.NEVER
          }
          out[k] = vr.data
        }
        return out
      }),
  )
}

/** An empty map (no prototype), for a map the file leaves out. */
const none = <T>() => Object.create(null) as Record<string, T>

const ifname = parsed((s) => v.ifname(s), 'interface name')
const ip = parsed((s) => v.ipAddress(s), 'IP address')
const net = parsed((s) => v.network(s), 'network (CIDR)')
const dest = parsed((s) => v.routeDestination(s), '"default" or a network (CIDR)')
const cidrAddr = parsed((s) => v.interfaceAddress(s), 'address/prefix')
const fwmark = parsed((s) => v.mark(s), 'mark (V or V/MASK)')
const u32 = z.number().int().min(0).max(v.U32_MAX)
const table = kindOf({type: 'table name or number'}, z.union([z.string().min(1), z.number().int().min(1)]).transform(String))
const port = z.number().int().min(1).max(65535)

export const schemaParts = {z, kindOf, parsed, list, map, none, ifname, ip, net, dest, cidrAddr, fwmark, u32, table, port}
export type SchemaParts = typeof schemaParts

/** A problem found by a check that needs more than one field: its path in the file and what is wrong. */
export type Issue = {path: (string | number)[]; message: string}
export type Path = (string | number)[]
export type AddIssue = (i: Issue) => void
