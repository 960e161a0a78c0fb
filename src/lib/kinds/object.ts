/**
 * What every kernel object kind shares (one module per kind in this folder):
 * an identity (key), a comparable description of what it is (attrs), and the
 * iproute2 lines that add and delete it. Each kind's module makes its objects
 * from a host file's entry (desired) and from the live state read with `ip -j`
 * (live), so both can be compared and either re-made on undo. A host file can
 * hold tens of thousands of routes, so an object keeps only its spec; its
 * lines, description and file entry are made when asked for (most objects are
 * only ever compared).
 */
import type {BatchLine} from '../runner.js'

/** Devices that belong to tunnels ("netkit tunnel" manages them; apply and export leave them to it). */
export const TUNNEL_DEV = /^(wg-|vx-|ipsec\d)/

export const KINDS = ['netns', 'table', 'link', 'addr', 'sysctl', 'route', 'rule', 'proxy', 'xfrm-policy', 'xfrm-state', 'tunnel', 'wg-peer'] as const
export type Kind = (typeof KINDS)[number]
/** Each kind's place in KINDS: made in this order, removed in the reverse. */
export const KIND_ORDER = Object.fromEntries(KINDS.map((k, i) => [k, i])) as Record<Kind, number>

export type Attrs = Record<string, string | number | boolean | undefined>

/** An object without its empty fields (undefined, null, ''): a host file's entry. */
export const clean = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined && x !== null && x !== ''))

/** Whether the families given (undefined: not said) are more than one: an entry that mixes IPv4 and IPv6. */
export function mixedFamilies(...families: (number | undefined)[]): boolean {
  // A loop, not a Set: it runs for each of a file's routes.
  let seen: number | undefined
  for (const f of families) {
    if (f === undefined) continue
    if (seen !== undefined && f !== seen) return true
    seen = f
  }
  return false
}

/** A number as iproute2 prints it in hex ("0x10"). */
export const hex = (n: number) => `0x${n.toString(16)}`

export abstract class Obj {
  abstract readonly kind: Kind
  declare readonly key: string
  declare owned: boolean
  /** Live: made by the kernel or a tunnel as part of something else (a connected route, a link-local address). */
  declare auto: boolean
  declare private ident: string | undefined
  declare private compared: Attrs | undefined
  // Fields set by plain assignment (no class field initializers: tens of thousands of objects are made), all of
  // them here, so that every object of a kind has one shape (the caches are not added later).
  constructor(key: string, owned: boolean) {
    this.key = key
    this.owned = owned
    this.auto = false
    this.ident = undefined
    this.compared = undefined
  }

  /** Kind and key: unique in a namespace, and the object's name in the ledger. */
  get id(): string {
    return (this.ident ??= `${this.kind}:${this.key}`)
  }

  /** `attrs`, made once (a desired object is compared twice: planning and verifying). */
  get cmp(): Attrs {
    return (this.compared ??= this.attrs)
  }

  /** What it is, for comparing desired with live (only the attributes the file gives count). */
  abstract get attrs(): Attrs

  /** Whether `live` (the same object as read) has what this desired object asks: `differences` finds none. A kind may answer without making its attrs. */
  matches(live: Obj): boolean {
    return differences(this, live).length === 0
  }
  abstract get desc(): string
  /** iproute2 lines (ip -batch) that make it and that remove it; empty for objects made otherwise. */
  get add(): BatchLine[] {
    return []
  }

  get del(): BatchLine[] {
    return []
  }

  /** The object as an entry of a host file (for export). */
  get entry(): Record<string, unknown> | undefined {
    return undefined
  }
}

/** One `ip -batch` line that makes or removes `object`. */
export const line = (args: string[], object: string): BatchLine => ({args, object})

/** Whether a desired attribute (given) is what the live object has: the same value, or the same as text (a number read back as a string). */
export const sameValue = (want: Attrs[string], have: Attrs[string]) => have === want || String(have ?? '') === String(want)

/** The attributes of `desired` that `live` has differently (attributes the file leaves out do not count). */
export function differences(desired: Obj, live: Obj): string[] {
  const out: string[] = []
  const have = live.cmp
  const want = desired.cmp
  for (const k in want) {
    const w = want[k]
    if (w === undefined) continue
    const h = have[k]
    if (sameValue(w, h)) continue
    out.push(
      k === 'definition' ? 'its definition differs' : k === 'runtime' ? 'it is down' : k === 'key' ? 'its key differs' : `${k} ${h ?? 'unset'}, not ${w}`,
    )
  }
  return out
}
