/**
 * IPsec SAs (SAD entries) as apply sees them: made from a host file's entry
 * (keys read from their files) or from `ip xfrm state` (xfrm-parse.ts); keys
 * are Secrets, compared by digest. netkit's are known from the ledger.
 */
import type {z} from 'zod/v4'

import {UsageError} from '../errors.js'
import {keyDigest, type XfrmState} from '../iproute2/xfrm-parse.js'
import {stateAddArgs, stateDelArgs, stateKey, stateKeyArgs, type StateSpec} from '../iproute2/xfrm.js'
import type {OwnedEntry} from '../ownership.js'
import {type Arg, type BatchLine, type Runner, Secret} from '../runner.js'
import * as v from '../validate.js'
import {type Attrs, clean, hex, line, Obj} from './object.js'
import type {AddIssue, Path, SchemaParts} from './schema-parts.js'
import {markOf, xfrmMark} from './xfrm-policy.js'

/** An SA entry's schema. Keys only from files (hex, mode 0600): they reach ip on stdin and are never shown. */
export const stateSchema = ({z, ip, u32, fwmark}: SchemaParts) => {
  const keyed = z.strictObject({
    alg: z.string().min(1).describe('the algorithm, as ip xfrm names it'),
    keyFile: z.string().min(1).describe('the key file (hex, mode 0600)'),
  })
  return z.strictObject({
    src: ip.describe('outer source'),
    dst: ip.describe('outer destination'),
    spi: z
      .union([z.number().int(), z.string()])
      .transform((x, ctx) => {
        try {
          return v.spi(String(x))
        } catch (error) {
          ctx.addIssue({code: 'custom', message: error instanceof UsageError ? error.what : String(error), input: x})
          return z.NEVER
        }
      })
      .describe('the SPI (decimal or 0x hex)'),
    mode: z.enum(['tunnel', 'transport']).default('tunnel').describe('SA mode'),
    reqid: u32.optional().describe('the reqid policies refer to'),
    mark: fwmark.optional().describe('mark'),
    aead: z
      .strictObject({
        alg: z.string().min(1).describe('the AEAD algorithm, e.g. rfc4106(gcm(aes))'),
        keyFile: z.string().min(1).describe('the key file (hex, mode 0600)'),
        icv: z.number().int().default(128).describe('ICV length in bits'),
      })
      .optional()
      .describe('an AEAD (or enc and auth)'),
    enc: keyed.optional().describe('encryption (with auth)'),
    auth: keyed.optional().describe('authentication (with enc)'),
  })
}

export type StateEntry = z.output<ReturnType<typeof stateSchema>>

/** An SA: aead, or enc and auth; src and dst of one family. */
export function checkStates(states: StateEntry[], prefix: Path, add: AddIssue): void {
  states.forEach((x, i) => {
    if (Boolean(x.aead) === Boolean(x.enc || x.auth) || (!x.aead && !(x.enc && x.auth)))
      add({path: [...prefix, 'xfrmStates', i], message: 'an SA needs aead (alg, keyFile, icv), or enc and auth (alg, keyFile each)'})
    if (x.src.family !== x.dst.family) add({path: [...prefix, 'xfrmStates', i], message: 'src and dst are of different address families'})
  })
}

/** An SA as apply compares it: what `xfrm state add` takes, less the keys. */
export type StateObjSpec = Omit<StateSpec, 'aead' | 'enc' | 'auth'>

/** An SA's algorithms as compared: each algorithm's words without its key, in a fixed order (ip prints auth before enc). */
export const algorithmsText = (args: Arg[]): string =>
  args
    .reduce<string[][]>(
      (groups, a) =>
        typeof a === 'string' && /^(aead|enc|auth|auth-trunc|comp)$/.test(a)
          ? [...groups, [a]]
          : (typeof a === 'string' && groups.length && groups.at(-1)!.push(a), groups),
      [],
    )
    .map((g) => g.join(' '))
    .sort()
    .join('; ')

/**
 * An SA (SAD entry). Desired: keys read from the file's key files; live: keys
 * read from the kernel (kept only to put the SA back on undo). Keys are
 * Secrets: on stdin to ip, <redacted> when shown, compared by digest.
 */
export class StateObj extends Obj {
  get kind() {
    return 'xfrm-state' as const
  }

  constructor(
    readonly spec: StateObjSpec,
    /** The algorithm arguments of `ip xfrm state add`, keys as Secrets (undefined: unknown, cannot be made again). */
    readonly algs: Arg[] | undefined,
    /** A digest of the keys (equal keys, equal digests). */
    readonly keyDigest: string | undefined,
    /** Desired: where the keys came from, for the ledger (export writes them back). */
    readonly keyFiles?: Record<string, string>,
    owned = true,
  ) {
    super(stateKey(spec), owned)
  }

  get attrs(): Attrs {
    const s = this.spec
    return {mode: s.mode, reqid: s.reqid ?? 0, mark: xfrmMark(s.mark) ?? '', algorithms: this.algs ? algorithmsText(this.algs) : undefined, key: this.keyDigest}
  }

  get desc(): string {
    return `SA ${this.spec.src} -> ${this.spec.dst} spi ${hex(this.spec.spi)}`
  }

  override get add(): BatchLine[] {
    return this.algs ? [line(stateAddArgs(this.spec, this.algs) as string[], this.desc)] : []
  }

  override get del(): BatchLine[] {
    return [line(stateDelArgs(this.spec), this.desc)]
  }

  override get entry(): Record<string, unknown> | undefined {
    const s = this.spec
    const f = this.keyFiles
    if (!f || !this.algs) return undefined
    const words = this.algs.filter((a): a is string => typeof a === 'string')
    const alg = (name: string) => words[words.indexOf(name) + 1]
    const algo = f.aead
      ? {aead: {alg: alg('aead'), keyFile: f.aead, icv: Number(words.at(-1))}}
      : {enc: {alg: alg('enc'), keyFile: f.enc}, auth: {alg: alg('auth-trunc'), keyFile: f.auth}}
    return clean({src: s.src, dst: s.dst, spi: hex(s.spi), mode: s.mode, reqid: s.reqid, mark: xfrmMark(s.mark), ...algo})
  }
}

const STATE_WORDS: Record<string, string> = {
  aead: 'aead.alg',
  'aead-key-file': 'aead.keyFile',
  icv: 'aead.icv',
  enc: 'enc.alg',
  'enc-key-file': 'enc.keyFile',
  auth: 'auth.alg',
  'auth-key-file': 'auth.keyFile',
}

/** An SA entry through the same checks as `netkit xfrm state add` (keys read from their files now, registered as secrets); `at`: its place in the file. */
export function stateFromEntry(x: StateEntry, runner: Runner, at: string): StateObj {
  const spec = {src: x.src.ip, dst: x.dst.ip, spi: x.spi, mode: x.mode, reqid: x.reqid, mark: x.mark}
  try {
    const algs = stateKeyArgs({...spec, aead: x.aead, enc: x.enc, auth: x.auth}, (n) => STATE_WORDS[n])
    const keys = algs.filter((a): a is Secret => a instanceof Secret).map((k) => k.value)
    for (const k of keys) runner.addSecret(k)
    const keyFiles = Object.fromEntries(Object.entries({aead: x.aead?.keyFile, enc: x.enc?.keyFile, auth: x.auth?.keyFile}).filter(([, f]) => f))
    return new StateObj(spec, algs, keyDigest(keys), keyFiles as Record<string, string>)
  } catch (error) {
    if (error instanceof UsageError) throw new UsageError(`host file: ${at}: ${error.what}`, error.fix ?? 'fix that entry', 'E_FILE')
    throw error
  }
}

/** The live ESP SAs, from `ip xfrm state` as parsed; `keys`: their algorithm arguments with keys as Secrets; `ledger`: the ledger's SAs of the namespace. */
export function liveStates(states: XfrmState[], keys: Map<string, Arg[]>, ledger: Record<string, OwnedEntry>): StateObj[] {
  const out: StateObj[] = []
  for (const x of states) {
    if (x.proto !== 'esp') continue
    const spec = {src: x.src, dst: x.dst, spi: Number(x.spi), mode: x.mode as 'tunnel', reqid: x.reqid || undefined, mark: markOf(x.mark)}
    const k = `${x.src} ${x.dst} ${x.spi}`
    out.push(new StateObj(spec, keys.get(k), x.keyDigest, ledger[k]?.meta?.keyFiles as Record<string, string> | undefined, Boolean(ledger[k])))
  }
  return out
}
