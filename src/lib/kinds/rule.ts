/**
 * Policy rules as apply sees them: made from a host file's entry or from `ip
 * -j rule show` (through iproute2/rule.ts's parser), marked with netkit's
 * protocol.
 */
import type {z} from 'zod/v4'

import {type IpRule, markText as ruleMark, ruleOf, type RuleSpec, selectorArgs} from '../iproute2/rule.js'
import {isNetkitProto, NETKIT_PROTO} from '../ownership.js'
import type {BatchLine} from '../runner.js'
import type * as v from '../validate.js'
import {type Attrs, clean, line, Obj, mixedFamilies} from './object.js'
import type {AddIssue, Path, SchemaParts} from './schema-parts.js'

export const ruleSchema = ({z, net, fwmark, ifname, table}: SchemaParts) =>
  z.strictObject({
    family: z
      .union([z.literal(4), z.literal(6)])
      .optional()
      .describe('IPv4 or IPv6, for a rule with no address (only fwmark, iif or oif)'),
    from: net.optional().describe('source selector'),
    to: net.optional().describe('destination selector'),
    fwmark: fwmark.optional().describe('firewall mark selector'),
    iif: ifname.optional().describe('incoming interface selector'),
    oif: ifname.optional().describe('outgoing interface selector'),
    table: table.describe('the table to look up'),
    priority: z.number().int().min(1).max(32765).default(1000).describe('the rule priority (lower first)'),
  })

export type RuleEntry = z.output<ReturnType<typeof ruleSchema>>

/** A rule: a selector; family, from and to agreeing. */
export function checkRules(rules: RuleEntry[], prefix: Path, add: AddIssue): void {
  rules.forEach((r, i) => {
    if (!r.from && !r.to && !r.fwmark && !r.iif && !r.oif)
      add({path: [...prefix, 'rules', i], message: 'a rule needs a selector (from, to, fwmark, iif or oif)'})
    if (mixedFamilies(r.family, r.from?.family, r.to?.family))
      add({path: [...prefix, 'rules', i], message: 'family, from and to disagree on the address family (IPv4 or IPv6)'})
  })
}

export class RuleObj extends Obj {
  get kind() {
    return 'rule' as const
  }

  constructor(
    readonly spec: RuleSpec,
    owned = true,
  ) {
    super(
      `${spec.family} ${spec.priority} ${spec.from ?? 'all'} ${spec.to ?? 'all'} ${ruleMark(spec.fwmark) ?? '-'} ${spec.iif ?? '-'} ${spec.oif ?? '-'}`,
      owned,
    )
  }

  get attrs(): Attrs {
    return {table: this.spec.table}
  }

  get desc(): string {
    return `${this.spec.family === 6 && !this.spec.from && !this.spec.to ? 'IPv6 ' : ''}rule ${selectorArgs(this.spec).join(' ') || 'from all'} priority ${this.spec.priority}`
  }

  /** An IPv6 rule runs with `ip -6` (without it `ip rule` takes even an IPv6 address for IPv4). */
  private get family6(): {family?: 6} {
    return this.spec.family === 6 ? {family: 6} : {}
  }

  override get add(): BatchLine[] {
    const r = this.spec
    return [
      {
        ...line(['rule', 'add', ...selectorArgs(r), 'table', String(r.table), 'priority', String(r.priority), 'protocol', String(NETKIT_PROTO)], this.desc),
        ...this.family6,
      },
    ]
  }

  override get del(): BatchLine[] {
    const r = this.spec
    return [
      {
        ...line(['rule', 'del', ...selectorArgs(r), 'table', String(r.table), 'priority', String(r.priority), 'protocol', String(NETKIT_PROTO)], this.desc),
        ...this.family6,
      },
    ]
  }

  override get entry(): Record<string, unknown> {
    const r = this.spec
    return clean({
      family: r.family === 6 && !r.from && !r.to ? 6 : undefined,
      from: r.from,
      to: r.to,
      fwmark: ruleMark(r.fwmark) ?? undefined,
      iif: r.iif,
      oif: r.oif,
      table: r.table,
      priority: r.priority,
    })
  }
}

/** A host file's rule entry as an object; `tableOf` gives a table name's number. */
export function ruleFromEntry(r: RuleEntry, tableOf: (t?: string) => number): RuleObj {
  // A /0 is "all", as the kernel reports it.
  const net = (c?: v.Cidr) => (c && c.prefix > 0 ? c.cidr : undefined)
  return new RuleObj({
    family: r.family ?? r.from?.family ?? r.to?.family ?? 4,
    from: net(r.from),
    to: net(r.to),
    fwmark: r.fwmark,
    iif: r.iif,
    oif: r.oif,
    table: tableOf(r.table),
    priority: r.priority,
  })
}

/** The live rules of one family, from `ip -j rule show`. */
export function liveRules(rows: IpRule[], family: v.Family): RuleObj[] {
  return rows.map((r) => {
    const o = new RuleObj(ruleOf(r, family), isNetkitProto(r.protocol))
    // The kernel's own three: from all lookup local, main, default.
    o.auto = (r.priority === 0 || r.priority === 32766 || r.priority === 32767) && !o.spec.from && !o.spec.to && !o.spec.fwmark && !r.iif && !r.oif
    return o
  })
}
