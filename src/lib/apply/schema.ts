/**
 * The host file `netkit apply` reads (YAML or JSON): a host's desired
 * plumbing, for the namespace it is applied in and, under `namespaces`, for
 * namespaces of its own. Validated with zod; addresses are parsed once, here,
 * into their normalized form, and an error names its path in the file
 * ("routes.2.to: ... host bits set; did you mean 10.2.0.0/24?",
 * "tunnels.site-b.remote: ... is not an IP address").
 */
import {z} from 'zod/v4'

import {UsageError} from '../errors.js'
import {addrSchema} from '../kinds/addr.js'
import {linkSchema} from '../kinds/link.js'
import {proxySchema} from '../kinds/proxy.js'
import {routeEntryFast, routeSchema} from '../kinds/route.js'
import {ruleSchema} from '../kinds/rule.js'
import {type Issue, schemaParts} from '../kinds/schema-parts.js'
import {sysctlsSchema} from '../kinds/sysctl.js'
import {tunnelNameSchema, tunnelSchema} from '../kinds/tunnel.js'
import {policyEntryFast, policySchema} from '../kinds/xfrm-policy.js'
import {stateSchema} from '../kinds/xfrm-state.js'
import {parseYaml} from '../yaml.js'
import {hostFileData, quickHostFile, scopeChecks} from './host-file.js'

const {list, map, none} = schemaParts

const Link = linkSchema(schemaParts)
const Route = routeSchema(schemaParts)
const Rule = ruleSchema(schemaParts)
const Policy = policySchema(schemaParts)
const Tunnel = tunnelSchema(schemaParts)
const State = stateSchema(schemaParts)

const netnsKey = z
  .string()
  .refine((s) => /^[A-Za-z0-9_.-]{1,64}$/.test(s) && s !== '.' && s !== '..', "a namespace name: 1 to 64 letters, digits, '.', '-' or '_'")
  // A key that JSON and YAML readers (and netkit's ledger) take for an object's prototype.
  .refine((s) => s !== '__proto__', '"__proto__" cannot name a namespace: pick another name')

/** What one namespace holds (the file's top level, or one entry of `namespaces`): each kind's entries. */
const scopeShape = {
  links: list(Link).default([]).describe('links netkit makes: veth, bridge, vxlan, macvlan'),
  addresses: list(addrSchema(schemaParts)).default([]).describe('interface addresses'),
  routes: list(Route, routeEntryFast).default([]).describe('routes (protocol netkit)'),
  rules: list(Rule).default([]).describe('policy rules (protocol netkit)'),
  sysctls: sysctlsSchema(schemaParts).default(none).describe('network sysctls, by the names "netkit sysctl set" takes'),
  proxyArp: list(proxySchema(schemaParts)).default([]).describe('proxy ARP entries'),
  xfrmPolicies: list(Policy, policyEntryFast).default([]).describe('IPsec policies (the SPD)'),
  xfrmStates: list(State).default([]).describe('IPsec SAs (the SAD); keys only from files'),
  tunnels: map(tunnelNameSchema(schemaParts), Tunnel).default(none).describe('tunnels, as "netkit tunnel add" makes them; NAME is the tunnel name'),
}

const FOUND = Symbol('found')

/** Runs checks until the first issue (only the first is reported: a file of a million bad entries must not make a million issues). */
function firstIssue(
  ctx: {addIssue: (i: {code: 'custom'; path: (string | number)[]; message: string}) => void; issues?: unknown[]},
  checks: (add: (i: Issue) => void) => void,
): void {
  // An entry already found bad: these checks would only read what is not there.
  if (ctx.issues?.length) return
  try {
    checks((i) => {
      ctx.addIssue({code: 'custom', ...i})
      throw FOUND
    })
  } catch (error) {
    if (error !== FOUND) throw error
  }
}

const Scope = z.strictObject(scopeShape).superRefine((s, ctx) => firstIssue(ctx, (add) => scopeChecks(s, [], add)))

export const HostFileSchema = z
  .strictObject({
    /** Required: a file that lost its content (an empty pipe, a truncated copy) must not read as "nothing", which would remove all that apply made. */
    version: z
      .literal(1, {error: (i) => (i.input === undefined ? 'missing: a host file starts with "version: 1"' : 'netkit reads version 1 host files')})
      .describe('the format version; a file without it is refused (an empty file must not mean "remove everything")'),
    /** Named routing tables: machine-wide names (iproute2's rt_tables.d), used by every namespace. */
    tables: map(z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,31}$/, 'a table name: letters, digits, - or _'), z.number().int().min(1).max(0x7fff_ffff))
      .default(none)
      .describe("named routing tables (machine-wide: iproute2's rt_tables.d), NAME: number"),
    /** Namespaces netkit creates (and removes when they leave the file), each with what it holds. */
    namespaces: map(
      netnsKey,
      Scope.nullable().transform((s) => s ?? Scope.parse({})),
    )
      .default(none)
      .describe('namespaces netkit makes (and removes when they leave the file), each with what it holds'),
    ...scopeShape,
  })
  .superRefine((f, ctx) =>
    firstIssue(ctx, (add) => {
      scopeChecks(f, [], add)
      // The kernel's own tables keep their names and numbers; a number has one name.
      const ids = new Map<number, string>()
      for (const [name, id] of Object.entries(f.tables)) {
        if (['default', 'main', 'local', 'unspec'].includes(name))
          add({path: ['tables', name], message: `"${name}" is the kernel's own table: use it by that name, without listing it`})
        else if (id === 253 || id === 254 || id === 255)
          add({path: ['tables', name], message: `table ${id} is the kernel's own (default, main, local): pick another number`})
        else if (ids.has(id)) add({path: ['tables', name], message: `table ${id} is also named ${ids.get(id)}: a number has one name`})
        ids.set(id, name)
      }
      const names = new Set(Object.keys(f.namespaces))
      const check = (links: z.output<typeof Link>[], prefix: (string | number)[]) =>
        links.forEach((l, i) => {
          if (l.peerNetns && !names.has(l.peerNetns))
            add({path: [...prefix, 'links', i, 'peerNetns'], message: `namespace ${l.peerNetns} is not in this file's namespaces`})
        })
      check(f.links, [])
      for (const [ns, s] of Object.entries(f.namespaces)) check(s.links, ['namespaces', ns])
    }),
  )

export type HostFile = z.output<typeof HostFileSchema>
export type ScopeFile = z.output<typeof Scope>
export type {TunnelEntry} from '../kinds/tunnel.js'

/**
 * A host file's text parsed and validated. A file of bulk entries only (routes, SPD entries) is checked
 * without the schema (host-file.ts: the same result); anything else, and every error, by the schema.
 */
export function parseHostFile(text: string, source: string): HostFile {
  const data = hostFileData(text, source, parseYaml)
  return quickHostFile(data) ?? validateHostFile(data, source)
}

/** A host file's data (hostFileData) validated by the schema: its value, or the first issue as a UsageError naming its path. */
export function validateHostFile(data: unknown, source: string): HostFile {
  const r = HostFileSchema.safeParse(data)
  if (r.success) return r.data
  const issue = r.error.issues[0]
  const path = issue.path.length ? issue.path.map(String).join('.') : '(top level)'
  throw new UsageError(`${source}: ${path}: ${issue.message}`, 'fix that entry (see "netkit apply --help")', 'E_FILE')
}
