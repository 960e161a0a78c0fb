/**
 * The host file `netkit apply` reads (YAML or JSON): a host's desired
 * plumbing. Validated with zod; an error names its path in the file
 * ("routes.2.to: host bits set; did you mean 10.2.0.0/24?").
 */
import {readFileSync} from 'node:fs'

import {parse as parseYaml} from 'yaml'
import {z} from 'zod'

import {UsageError} from '../errors.js'
import {LINK_KINDS, MACVLAN_MODES} from '../iproute2/link.js'
import * as v from '../validate.js'

const check = <T>(fn: (s: string) => T) =>
  z.string().superRefine((s, ctx) => {
    try {
      fn(s)
    } catch (error) {
      ctx.addIssue({code: z.ZodIssueCode.custom, message: error instanceof UsageError ? error.what : String(error)})
    }
  })

const ifname = check((s) => v.ifname(s))
const ip = check((s) => v.ipAddress(s))
const net = check((s) => v.network(s))
const dest = check((s) => v.routeDestination(s))
const cidrAddr = check((s) => v.interfaceAddress(s))
const u32 = z.number().int().min(0).max(v.U32_MAX)
const table = z.union([z.string().min(1), z.number().int().min(1)]).transform(String)

export const HostFileSchema = z
  .object({
    version: z.literal(1).default(1),
    tables: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,31}$/, 'a table name: letters, digits, - or _'), z.number().int().min(1).max(0x7fff_ffff)).default({}),
    links: z
      .array(
        z.object({
          name: ifname,
          type: z.enum(LINK_KINDS),
          peer: ifname.optional(),
          vni: z.number().int().min(1).max(16_777_215).optional(),
          remote: ip.optional(),
          group: ip.optional(),
          dev: ifname.optional(),
          port: z.number().int().min(1).max(65535).optional(),
          parent: ifname.optional(),
          mode: z.enum(MACVLAN_MODES).optional(),
          mtu: z.number().int().min(68).max(65535).optional(),
          master: ifname.optional(),
          up: z.boolean().default(true),
        }),
      )
      .default([]),
    addresses: z.array(z.object({dev: ifname, address: cidrAddr})).default([]),
    routes: z.array(z.object({to: dest, via: ip.optional(), dev: ifname.optional(), table: table.optional(), metric: u32.optional(), src: ip.optional()})).default([]),
    rules: z.array(z.object({from: net.optional(), to: net.optional(), fwmark: check((s) => v.mark(s)).optional(), iif: ifname.optional(), oif: ifname.optional(), table, priority: z.number().int().min(1).max(32765).default(1000)})).default([]),
    sysctls: z.record(z.string(), z.union([z.string(), z.number()]).transform(String)).default({}),
    proxyArp: z.array(z.object({address: ip, dev: ifname})).default([]),
    xfrmPolicies: z
      .array(
        z.object({
          src: net,
          dst: net,
          dir: z.enum(['in', 'out', 'fwd']),
          tmplSrc: ip.optional(),
          tmplDst: ip.optional(),
          mode: z.enum(['tunnel', 'transport']).default('tunnel'),
          reqid: u32.optional(),
          priority: u32.default(1780),
          mark: check((s) => v.mark(s)).optional(),
          action: z.enum(['allow', 'block']).default('allow'),
        }),
      )
      .default([]),
  })
  .strict()
  .superRefine((f, ctx) => {
    f.routes.forEach((r, i) => {
      if (!r.via && !r.dev) ctx.addIssue({code: z.ZodIssueCode.custom, path: ['routes', i], message: 'a route needs via or dev'})
    })
    f.rules.forEach((r, i) => {
      if (!r.from && !r.to && !r.fwmark && !r.iif && !r.oif) ctx.addIssue({code: z.ZodIssueCode.custom, path: ['rules', i], message: 'a rule needs a selector (from, to, fwmark, iif or oif)'})
    })
    f.links.forEach((l, i) => {
      if (l.type === 'veth' && !l.peer) ctx.addIssue({code: z.ZodIssueCode.custom, path: ['links', i, 'peer'], message: 'a veth needs its peer\'s name'})
      if (l.type === 'vxlan' && (!l.vni || !l.dev || Boolean(l.remote) === Boolean(l.group))) ctx.addIssue({code: z.ZodIssueCode.custom, path: ['links', i], message: 'a vxlan needs vni, dev and one of remote or group'})
      if (l.type === 'macvlan' && !l.parent) ctx.addIssue({code: z.ZodIssueCode.custom, path: ['links', i, 'parent'], message: 'a macvlan needs its parent'})
    })
  })

export type HostFile = z.infer<typeof HostFileSchema>

export function parseHostFile(text: string, source: string): HostFile {
  let data: unknown
  try {
    data = source.endsWith('.json') ? JSON.parse(text) : parseYaml(text)
  } catch (error) {
    throw new UsageError(`${source} is not valid ${source.endsWith('.json') ? 'JSON' : 'YAML'}: ${String(error instanceof Error ? error.message : error).split('\n')[0]}`, 'fix its syntax', 'E_FILE')
  }
  const r = HostFileSchema.safeParse(data ?? {})
  if (r.success) return r.data
  const issue = r.error.issues[0]
  const path = issue.path.length ? issue.path.join('.') : '(top level)'
  throw new UsageError(`${source}: ${path}: ${issue.message}`, 'fix that entry (see "netkit apply --help")', 'E_FILE')
}

export function readHostFile(path: string): HostFile {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    throw new UsageError(`${path} cannot be read`, 'give the path of a YAML or JSON host file', 'E_FILE')
  }
  return parseHostFile(text, path)
}
