/**
 * IPsec policies (SPD entries) as apply sees them: made from a host file's
 * entry or from `ip xfrm policy` (xfrm-parse.ts); netkit's are known from the
 * ledger.
 */
import type {z} from 'zod/v4'

import type {XfrmPolicy} from '../iproute2/xfrm-parse.js'
import {type PolicySpec, policyArgs} from '../iproute2/xfrm.js'
import type {OwnedEntry} from '../ownership.js'
import type {BatchLine} from '../runner.js'
import * as v from '../validate.js'
import {type Attrs, clean, hex, line, Obj, mixedFamilies} from './object.js'
import type {AddIssue, Path, SchemaParts} from './schema-parts.js'

export const policySchema = ({z, net, ip, u32, fwmark}: SchemaParts) =>
  z.strictObject({
    src: net.describe('source selector'),
    dst: net.describe('destination selector'),
    dir: z.enum(['in', 'out', 'fwd']).describe('direction'),
    tmplSrc: ip.optional().describe('template: the outer source (the tunnel end here)'),
    tmplDst: ip.optional().describe('template: the outer destination (the tunnel end there)'),
    mode: z.enum(['tunnel', 'transport']).default('tunnel').describe('template mode'),
    reqid: u32.optional().describe('template reqid, matching the SA'),
    priority: u32.default(1780).describe('policy priority (lower first)'),
    mark: fwmark.optional().describe('mark selector'),
    action: z.enum(['allow', 'block']).default('allow').describe('allow (through the template) or block'),
  })

export type PolicyEntry = z.output<ReturnType<typeof policySchema>>

/**
 * A policy entry checked without zod (a file can hold thousands): exactly what `policySchema` gives for it
 * (its defaults filled in), or undefined for anything else, which the schema then checks and names what is wrong.
 */
export function policyEntryFast(x: unknown): PolicyEntry | undefined {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return undefined
  const entry = x as Record<string, unknown>
  const out: Record<string, unknown> = {mode: 'tunnel', priority: 1780, action: 'allow'}
  const u32 = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) <= v.U32_MAX
  try {
    for (const k in entry) {
      const value = entry[k]
      if (k === 'priority' || k === 'reqid') {
        if (!u32(value)) return undefined
        out[k] = value
      } else if (typeof value !== 'string') return undefined
      else if (k === 'src' || k === 'dst') out[k] = v.network(value)
      else if (k === 'tmplSrc' || k === 'tmplDst') out[k] = v.ipAddress(value)
      else if (k === 'mark') out.mark = v.mark(value)
      else if (k === 'dir' && (value === 'in' || value === 'out' || value === 'fwd')) out.dir = value
      else if (k === 'mode' && (value === 'tunnel' || value === 'transport')) out.mode = value
      else if (k === 'action' && (value === 'allow' || value === 'block')) out.action = value
      else return undefined
    }
  } catch {
    return undefined
  }
  return out.src === undefined || out.dst === undefined || out.dir === undefined ? undefined : (out as PolicyEntry)
}

/** A policy: its addresses (and its template's) of one family. */
export function checkPolicies(policies: PolicyEntry[], prefix: Path, add: AddIssue): void {
  policies.forEach((p, i) => {
    if (mixedFamilies(p.src.family, p.dst.family, p.tmplSrc?.family, p.tmplDst?.family))
      add({path: [...prefix, 'xfrmPolicies', i], message: 'src and dst (and tmplSrc, tmplDst) are of different address families'})
  })
}

/** A mark as `ip xfrm` prints it ("0x10/0xffffffff"). */
export const xfrmMark = (m?: {value: number; mask?: number}) => (m ? `0x${m.value.toString(16)}/0x${(m.mask ?? 0xffff_ffff).toString(16)}` : undefined)

/** A mark as `ip xfrm` prints it ("0x10/0xffffffff"), as a value and mask. */
export const markOf = (text?: string) => {
  const [mv, mm] = (text ?? '').split('/')
  return text ? {value: Number(mv), mask: Number(mm)} : undefined
}

export class PolicyObj extends Obj {
  get kind() {
    return 'xfrm-policy' as const
  }

  /** `mark` as `ip xfrm` prints it ("0x10/0xffffffff"). */
  constructor(
    readonly spec: PolicySpec,
    readonly mark: string | undefined,
    owned = true,
  ) {
    super(`${spec.src} ${spec.dst} ${spec.dir} ${mark ?? '-'}`, owned)
  }

  get attrs(): Attrs {
    const p = this.spec
    // No reqid is the kernel's reqid 0 (as `ip xfrm policy` prints it).
    return {priority: p.priority, action: p.action, tmpl: p.tmplSrc ? `${p.tmplSrc}>${p.tmplDst} ${p.mode} ${p.reqid ?? 0}` : ''}
  }

  get desc(): string {
    return `xfrm policy ${this.spec.src} -> ${this.spec.dst} dir ${this.spec.dir}`
  }

  override get add(): BatchLine[] {
    return [line(policyArgs('add', this.spec) as string[], this.desc)]
  }

  override get del(): BatchLine[] {
    const p = this.spec
    return [
      line(
        [
          'xfrm',
          'policy',
          'delete',
          'src',
          p.src,
          'dst',
          p.dst,
          'dir',
          p.dir,
          ...(p.mark ? ['mark', hex(p.mark.value), 'mask', hex(p.mark.mask ?? 0xffff_ffff)] : []),
        ],
        this.desc,
      ),
    ]
  }

  override get entry(): Record<string, unknown> {
    const p = this.spec
    return clean({
      src: p.src,
      dst: p.dst,
      dir: p.dir,
      tmplSrc: p.tmplSrc,
      tmplDst: p.tmplDst,
      mode: p.tmplSrc ? p.mode : undefined,
      reqid: p.reqid,
      priority: p.priority,
      mark: this.mark,
      action: p.action,
    })
  }
}

export const policyFromEntry = (p: PolicyEntry) =>
  new PolicyObj(
    {
      src: p.src.cidr,
      dst: p.dst.cidr,
      family: p.src.family,
      dir: p.dir,
      tmplSrc: p.tmplSrc?.ip,
      tmplDst: p.tmplDst?.ip,
      proto: 'esp',
      mode: p.mode,
      reqid: p.reqid,
      priority: p.priority,
      mark: p.mark,
      action: p.action,
    },
    xfrmMark(p.mark),
  )

/** The live policies (in, out and fwd), from `ip xfrm policy` as parsed; `ledger`: the ledger's policies of the namespace. */
export function livePolicies(policies: XfrmPolicy[], ledger: Record<string, OwnedEntry>): PolicyObj[] {
  const out: PolicyObj[] = []
  for (const p of policies) {
    if (p.dir !== 'in' && p.dir !== 'out' && p.dir !== 'fwd') continue
    const t = p.tmpls[0]
    const o = new PolicyObj(
      {
        src: p.src,
        dst: p.dst,
        family: p.src.includes(':') ? 6 : 4,
        dir: p.dir,
        tmplSrc: t?.src,
        tmplDst: t?.dst,
        proto: 'esp',
        mode: (t?.mode as 'tunnel') ?? 'tunnel',
        reqid: t?.reqid || undefined,
        priority: p.priority,
        mark: markOf(p.mark),
        action: p.action,
      },
      p.mark,
    )
    o.owned = Boolean(ledger[o.key])
    out.push(o)
  }
  return out
}
