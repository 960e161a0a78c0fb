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
import {LINK_KINDS, MACVLAN_MODES} from '../iproute2/link.js'
import {checkValue, resolveKey} from '../sysctl.js'
import * as v from '../validate.js'
import {parseYaml} from '../yaml.js'
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
 * collect a million issues first).
 */
function list<T extends z.ZodType>(item: T) {
  return kindOf(
    {type: 'list', item},
    z.array(z.unknown()).transform((xs, ctx) => {
      const out: z.output<T>[] = new Array(xs.length)
      for (let i = 0; i < xs.length; i++) {
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

const Link = z.strictObject({
  name: ifname.describe('the link'),
  type: z.enum(LINK_KINDS).describe('its kind'),
  peer: ifname.optional().describe("veth: the other end's name"),
  /** The namespace (one of this file's) the veth's peer end goes into. */
  peerNetns: parsed((s) => v.netnsName(s), 'namespace name')
    .optional()
    .describe("veth: the namespace (one of this file's) the other end goes into"),
  vni: z.number().int().min(1).max(16_777_215).optional().describe('vxlan: the VXLAN network identifier'),
  remote: ip.optional().describe('vxlan: the one remote end (or group)'),
  group: ip.optional().describe('vxlan: the multicast group (or remote)'),
  dev: ifname.optional().describe('vxlan: the underlay device'),
  port: port.optional().describe('vxlan: the UDP port (default 4789)'),
  parent: ifname.optional().describe('macvlan: the parent device'),
  mode: z.enum(MACVLAN_MODES).optional().describe('macvlan: its mode'),
  mtu: z.number().int().min(68).max(65535).optional().describe('the MTU (default: what the kernel gives)'),
  master: ifname.optional().describe('the bridge this link is a port of'),
  up: z.boolean().default(true).describe('whether the link is up'),
})

const Route = z.strictObject({
  to: dest.describe('the destination'),
  via: ip.optional().describe('the gateway (a route needs via or dev)'),
  dev: ifname.optional().describe('the device'),
  table: table.optional().describe('the routing table (default main)'),
  metric: u32.optional().describe('the metric'),
  src: ip.optional().describe("the source address (one of this host's)"),
})

const Rule = z.strictObject({
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

const Policy = z.strictObject({
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

/** A WireGuard interface's peer, as `netkit tunnel peer add` takes it (the name is its key). */
const Peer = z.strictObject({
  publicKey: z.string().min(1).describe("the peer's public key (netkit tunnel pubkey NAME there)"),
  endpoint: z.string().min(1).optional().describe('host:port where the peer listens (none: the peer connects here)'),
  allowedIps: kindOf(
    {type: 'list', item: net},
    list(net).refine((xs) => xs.length > 0, 'a peer needs at least one allowed-ip'),
  ).describe('what the peer may send and is routed to it (netkit routes each one outside the tunnel address prefix)'),
  keepalive: z.number().int().min(1).max(65535).optional().describe('persistent keepalive in seconds'),
  pskFile: z.string().min(1).optional().describe('a pre-shared key file (mode 0600)'),
})

const peerKey = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, "a peer name: 1 to 63 letters, digits, '.', '-' or '_', starting with a letter or digit (a host name)")

/**
 * A tunnel, as `netkit tunnel add` takes it (the name is its key; the
 * namespace is the one it is listed in). A WireGuard tunnel without `remote`
 * is an interface with `peers` by name.
 */
const Tunnel = z.strictObject({
  type: z.enum(['ipsec', 'wireguard', 'vxlan']).describe('the tunnel type'),
  remote: ip.optional().describe('the peer host (a WireGuard interface with peers has none)'),
  local: ip.optional().describe("this host's underlay address (default: the file's or the kernel's address towards remote)"),
  localSubnets: list(net).default([]).describe('subnets behind this host'),
  remoteSubnets: list(net).default([]).describe('subnets behind the peer, routed through the tunnel'),
  table: u32.min(1).optional().describe('routing table for the remote subnets, with a policy rule (default main)'),
  proxyArp: ifname.optional().describe('answer ARP on this interface for remote addresses'),
  mtu: z.number().int().min(68).max(65535).optional().describe('the tunnel MTU'),
  datapath: z.enum(['auto', 'kernel', 'userspace']).default('auto').describe('kernel, userspace, or auto (the kernel where it can)'),
  // ipsec
  pskFile: z.string().min(1).optional().describe('IPsec: the pre-shared key file (mode 0600), the same on both hosts'),
  cert: z.string().min(1).optional().describe("IPsec X.509: this host's certificate"),
  key: z.string().min(1).optional().describe('IPsec X.509: its private key (mode 0600)'),
  ca: z.string().min(1).optional().describe('IPsec X.509: the CA certificate'),
  localId: z.string().min(1).optional().describe("IPsec: this host's IKE identity (default its address)"),
  remoteId: z.string().min(1).optional().describe("IPsec: the peer's IKE identity (default its address)"),
  proposals: z.string().min(1).optional().describe('IPsec: IKE proposals, swanctl syntax (default AEAD with Curve25519)'),
  espProposals: z.string().min(1).optional().describe('IPsec: ESP proposals, swanctl syntax'),
  dpd: z.number().int().min(0).max(86_400).optional().describe('IPsec: dead peer detection interval in seconds (0: off)'),
  rekeyTime: z.number().int().min(60).max(604_800).optional().describe('IPsec: CHILD_SA rekey time in seconds'),
  startAction: z.enum(['trap', 'start', 'none']).optional().describe('IPsec: trap (default: nothing in clear before the SA), start or none'),
  // wireguard
  listenPort: port.optional().describe('WireGuard: the UDP port this host listens on'),
  peerPublicKey: z.string().optional().describe("WireGuard, one peer: the peer's public key"),
  endpoint: z.string().optional().describe('WireGuard, one peer: host:port of the peer (default remote:listenPort)'),
  address: cidrAddr.optional().describe("the tunnel device's own address"),
  keepalive: z.number().int().min(1).max(65535).optional().describe('WireGuard, one peer: persistent keepalive in seconds'),
  fwmark: u32.min(1).optional().describe('WireGuard: the fwmark of its own packets'),
  /** A WireGuard interface's peers by name (`peers:` with none, or `{}`: an interface without peers yet). */
  peers: map(peerKey, Peer)
    .nullable()
    .transform((x) => x ?? none<z.output<typeof Peer>>())
    .optional()
    .describe('WireGuard interface: its peers by name (instead of remote)'),
  // vxlan
  vni: z.number().int().min(1).max(16_777_215).optional().describe('VXLAN: the network identifier'),
  port: port.optional().describe('VXLAN: the UDP port'),
  dev: ifname.optional().describe('VXLAN: the underlay device'),
  peerAddress: ip.optional().describe("VXLAN: the peer's address on the link (the gateway to the remote subnets)"),
})

const keyed = z.strictObject({
  alg: z.string().min(1).describe('the algorithm, as ip xfrm names it'),
  keyFile: z.string().min(1).describe('the key file (hex, mode 0600)'),
})

/** An SA (SAD entry). Keys only from files (hex, mode 0600): they reach ip on stdin and are never shown. */
const State = z.strictObject({
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

const netnsKey = z
  .string()
  .refine((s) => /^[A-Za-z0-9_.-]{1,64}$/.test(s) && s !== '.' && s !== '..', "a namespace name: 1 to 64 letters, digits, '.', '-' or '_'")
  // A key that JSON and YAML readers (and netkit's ledger) take for an object's prototype.
  .refine((s) => s !== '__proto__', '"__proto__" cannot name a namespace: pick another name')

const tunnelName = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,11}$/, 'a tunnel name: a letter, then up to 11 letters, digits, - or _')

/** What one namespace holds (the file's top level, or one entry of `namespaces`). */
const scopeShape = {
  links: list(Link).default([]).describe('links netkit makes: veth, bridge, vxlan, macvlan'),
  addresses: list(z.strictObject({dev: ifname.describe('the interface'), address: cidrAddr.describe('the address with its prefix')}))
    .default([])
    .describe('interface addresses'),
  routes: list(Route).default([]).describe('routes (protocol netkit)'),
  rules: list(Rule).default([]).describe('policy rules (protocol netkit)'),
  sysctls: map(z.string(), z.union([z.string(), z.number()]).transform(String))
    .default(none)
    .describe('network sysctls, by the names "netkit sysctl set" takes'),
  proxyArp: list(z.strictObject({address: ip.describe('the address to answer for'), dev: ifname.describe('the interface to answer on')}))
    .default([])
    .describe('proxy ARP entries'),
  xfrmPolicies: list(Policy).default([]).describe('IPsec policies (the SPD)'),
  xfrmStates: list(State).default([]).describe('IPsec SAs (the SAD); keys only from files'),
  tunnels: map(tunnelName, Tunnel).default(none).describe('tunnels, as "netkit tunnel add" makes them; NAME is the tunnel name'),
}

type Issue = {path: (string | number)[]; message: string}

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

/** A scope of the host file, as parsed. */
interface ParsedScope {
  links: z.output<typeof Link>[]
  routes: z.output<typeof Route>[]
  rules: z.output<typeof Rule>[]
  sysctls: Record<string, string>
  xfrmPolicies: z.output<typeof Policy>[]
  xfrmStates: z.output<typeof State>[]
  tunnels: Record<string, z.output<typeof Tunnel>>
}

type Path = (string | number)[]
type AddIssue = (i: Issue) => void

/** Checks that need more than one field, kind by kind (the first issue is the one reported). */
function scopeChecks(s: ParsedScope, prefix: Path, add: AddIssue): void {
  checkSysctls(s.sysctls, prefix, add)
  checkXfrmStates(s.xfrmStates, prefix, add)
  checkRoutes(s.routes, prefix, add)
  checkXfrmPolicies(s.xfrmPolicies, prefix, add)
  checkRules(s.rules, prefix, add)
  checkLinks(s.links, prefix, add)
  checkTunnels(s.tunnels, prefix, add)
}

/** The same names and values as "netkit sysctl set" takes. */
function checkSysctls(sysctls: ParsedScope['sysctls'], prefix: Path, add: AddIssue): void {
  for (const [k, value] of Object.entries(sysctls)) {
    try {
      checkValue(resolveKey(k), value)
    } catch (error) {
      add({path: [...prefix, 'sysctls', k], message: error instanceof UsageError ? error.what : String(error)})
    }
  }
}

/** An SA: aead, or enc and auth; src and dst of one family. */
function checkXfrmStates(states: ParsedScope['xfrmStates'], prefix: Path, add: AddIssue): void {
  states.forEach((x, i) => {
    if (Boolean(x.aead) === Boolean(x.enc || x.auth) || (!x.aead && !(x.enc && x.auth)))
      add({path: [...prefix, 'xfrmStates', i], message: 'an SA needs aead (alg, keyFile, icv), or enc and auth (alg, keyFile each)'})
    if (x.src.family !== x.dst.family) add({path: [...prefix, 'xfrmStates', i], message: 'src and dst are of different address families'})
  })
}

/** A route: via or dev; to, via and src of one family. */
function checkRoutes(routes: ParsedScope['routes'], prefix: Path, add: AddIssue): void {
  routes.forEach((r, i) => {
    if (!r.via && !r.dev) add({path: [...prefix, 'routes', i], message: 'a route needs via or dev'})
    const fam = [r.to === 'default' ? undefined : r.to.family, r.via?.family, r.src?.family].filter((f) => f !== undefined)
    if (new Set(fam).size > 1) add({path: [...prefix, 'routes', i], message: 'to, via and src are of different address families (IPv4 and IPv6)'})
  })
}

/** A policy: its addresses (and its template's) of one family. */
function checkXfrmPolicies(policies: ParsedScope['xfrmPolicies'], prefix: Path, add: AddIssue): void {
  policies.forEach((p, i) => {
    const fam = [p.src.family, p.dst.family, p.tmplSrc?.family, p.tmplDst?.family].filter((f) => f !== undefined)
    if (new Set(fam).size > 1) add({path: [...prefix, 'xfrmPolicies', i], message: 'src and dst (and tmplSrc, tmplDst) are of different address families'})
  })
}

/** A rule: a selector; family, from and to agreeing. */
function checkRules(rules: ParsedScope['rules'], prefix: Path, add: AddIssue): void {
  rules.forEach((r, i) => {
    if (!r.from && !r.to && !r.fwmark && !r.iif && !r.oif)
      add({path: [...prefix, 'rules', i], message: 'a rule needs a selector (from, to, fwmark, iif or oif)'})
    const fam = [r.family, r.from?.family, r.to?.family].filter((f) => f !== undefined)
    if (new Set(fam).size > 1) add({path: [...prefix, 'rules', i], message: 'family, from and to disagree on the address family (IPv4 or IPv6)'})
  })
}

/** A link: what its type needs (a veth's peer, a vxlan's vni, dev and remote or group, a macvlan's parent). */
function checkLinks(links: ParsedScope['links'], prefix: Path, add: AddIssue): void {
  links.forEach((l, i) => {
    if (l.type === 'veth' && !l.peer) add({path: [...prefix, 'links', i, 'peer'], message: "a veth needs its peer's name"})
    if (l.type !== 'veth' && l.peerNetns) add({path: [...prefix, 'links', i, 'peerNetns'], message: 'only a veth has a peer end to move'})
    if (l.type === 'vxlan' && (!l.vni || !l.dev || Boolean(l.remote) === Boolean(l.group)))
      add({path: [...prefix, 'links', i], message: 'a vxlan needs vni, dev and one of remote or group'})
    if (l.type === 'macvlan' && !l.parent) add({path: [...prefix, 'links', i, 'parent'], message: 'a macvlan needs its parent'})
  })
}

/** A tunnel: what its type needs (authentication, remote, a peer's key or peers by name, a VNI). */
function checkTunnels(tunnels: ParsedScope['tunnels'], prefix: Path, add: AddIssue): void {
  for (const [name, t] of Object.entries(tunnels)) {
    const at = [...prefix, 'tunnels', name]
    if (t.type === 'ipsec' && !t.pskFile && !t.cert)
      add({path: at, message: 'an IPsec tunnel in a host file needs pskFile (the same key on both hosts) or cert, key and ca'})
    if (t.type !== 'wireguard' && !t.remote)
      add({path: [...at, 'remote'], message: `${t.type === 'ipsec' ? 'an IPsec' : 'a VXLAN'} tunnel needs remote (the peer host's underlay address)`})
    if (t.type !== 'wireguard' && t.peers) add({path: [...at, 'peers'], message: 'only a WireGuard tunnel has peers by name'})
    if (t.type === 'wireguard' && t.remote && t.peers)
      add({path: [...at, 'peers'], message: 'a WireGuard tunnel has remote and peerPublicKey (one peer) or peers (by name), not both'})
    if (t.type === 'wireguard' && t.remote && !t.peerPublicKey)
      add({
        path: [...at, 'peerPublicKey'],
        message: 'a WireGuard tunnel with remote needs the peer\'s public key ("netkit tunnel pubkey NAME" on the peer), or leave out remote and list peers',
      })
    if (t.type === 'vxlan' && t.vni === undefined) add({path: [...at, 'vni'], message: 'a VXLAN tunnel needs vni'})
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
export type TunnelEntry = z.output<typeof Tunnel>

export function parseHostFile(text: string, source: string): HostFile {
  let data: unknown
  const json = source.endsWith('.json')
  try {
    data = json ? JSON.parse(text) : parseYaml(text, source)
  } catch (error) {
    throw new UsageError(
      `${source} is not valid ${json ? 'JSON' : 'YAML'}: ${String(error instanceof Error ? error.message : error).split('\n')[0]}`,
      'fix its syntax',
      'E_FILE',
    )
  }
  if (data === null || data === undefined)
    throw new UsageError(
      `${source} is empty`,
      'a host file starts with "version: 1" (a file with only that removes everything an earlier apply made)',
      'E_FILE',
    )
  const r = HostFileSchema.safeParse(data)
  if (r.success) return r.data
  const issue = r.error.issues[0]
  const path = issue.path.length ? issue.path.map(String).join('.') : '(top level)'
  throw new UsageError(`${source}: ${path}: ${issue.message}`, 'fix that entry (see "netkit apply --help")', 'E_FILE')
}
