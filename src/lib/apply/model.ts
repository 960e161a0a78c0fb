/**
 * Host objects as `apply` sees them: each with an identity (key), a
 * comparable description of what it is (attrs), and the iproute2 lines that
 * add and delete it. Made from the host file (desired) and from the live
 * state read with `ip -j` (live), so both can be compared and either re-made
 * on undo. A host file can hold tens of thousands of routes, so an object
 * keeps only its spec; its lines, description and file entry are made when
 * asked for (most objects are only ever compared).
 */
import {addArgs, bridgeMtuArgs, type LinkSpec, liveSpec} from '../iproute2/link.js'
import type {IpLink} from '../iproute2/json.js'
import {dstWord, routeArgs, type RouteSpec} from '../iproute2/route.js'
import {markText as ruleMark, type RuleSpec, selectorArgs} from '../iproute2/rule.js'
import {policyArgs, type PolicySpec, stateAddArgs, stateDelArgs, stateKey, type StateSpec} from '../iproute2/xfrm.js'
import {NETKIT_ALIAS, NETKIT_PROTO} from '../ownership.js'
import type {Arg, BatchLine, Secret} from '../runner.js'
import type {TunnelDef, WgPeer} from '../tunnel/types.js'

/** Devices that belong to tunnels ("netkit tunnel" manages them; apply and export leave them to it). */
export const TUNNEL_DEV = /^(wg-|vx-|ipsec\d)/

export const KINDS = ['netns', 'table', 'link', 'addr', 'sysctl', 'route', 'rule', 'proxy', 'xfrm-policy', 'xfrm-state', 'tunnel', 'wg-peer'] as const
export type Kind = (typeof KINDS)[number]
/** Each kind's place in KINDS: made in this order, removed in the reverse. */
export const KIND_ORDER = Object.fromEntries(KINDS.map((k, i) => [k, i])) as Record<Kind, number>

type Attrs = Record<string, string | number | boolean | undefined>

/** A mark as `ip xfrm` prints it ("0x10/0xffffffff"). */
export const xfrmMark = (m?: {value: number; mask?: number}) => (m ? `0x${m.value.toString(16)}/0x${(m.mask ?? 0xffff_ffff).toString(16)}` : undefined)

/** An object without its empty fields (undefined, null, ''): a host file's entry. */
export const clean = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined && x !== null && x !== ''))

export abstract class Obj {
  abstract readonly kind: Kind
  declare private ident?: string
  /** Live: made by the kernel or a tunnel as part of something else (a connected route, a link-local address). */
  auto = false
  constructor(
    readonly key: string,
    public owned: boolean,
  ) {}

  declare private compared?: Attrs

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

const line = (args: string[], object: string): BatchLine => ({args, object})

/** `peerIndex`: a live veth's other end in another namespace, by ifindex there (its name is only known there). */
export type LinkObjSpec = LinkSpec & {master?: string; peerIndex?: number}

export class LinkObj extends Obj {
  get kind() {
    return 'link' as const
  }

  constructor(
    readonly spec: LinkObjSpec,
    owned = true,
  ) {
    super(spec.name, owned)
  }

  get attrs(): Attrs {
    const s = this.spec
    return {
      type: s.kind,
      peer: s.peerNetns ? undefined : s.peer,
      peerNetns: s.peerNetns,
      vni: s.vni,
      remote: s.remote,
      group: s.group,
      dev: s.dev,
      port: s.kind === 'vxlan' ? (s.port ?? 4789) : undefined,
      parent: s.parent,
      mode: s.kind === 'macvlan' ? (s.mode ?? 'bridge') : undefined,
      mtu: s.mtu,
      master: s.master,
      up: s.up,
    }
  }

  get desc(): string {
    return `${this.spec.kind} link ${this.spec.name}`
  }

  /** The lines for this namespace; a veth's end in another namespace is set up by `peerLines`. */
  override get add(): BatchLine[] {
    const s = this.spec
    const d = this.desc
    const here = s.kind === 'veth' && !s.peerNetns
    const out = [line(addArgs(s), d), ...bridgeMtuArgs(s).map((a) => line(a, d)), line(['link', 'set', s.name, 'alias', NETKIT_ALIAS], d)]
    if (here) out.push(line(['link', 'set', s.peer!, 'alias', NETKIT_ALIAS], d))
    if (s.master) out.push(line(['link', 'set', s.name, 'master', s.master], d))
    if (s.up) {
      out.push(line(['link', 'set', s.name, 'up'], d))
      if (here) out.push(line(['link', 'set', s.peer!, 'up'], d))
    }
    return out
  }

  /** A veth's other end, in namespace peerNetns: marked as netkit's and brought up there. */
  get peerLines(): BatchLine[] {
    const s = this.spec
    if (s.kind !== 'veth' || !s.peerNetns) return []
    const d = `veth ${s.peer} (the other end of ${s.name})`
    return [line(['link', 'set', s.peer!, 'alias', NETKIT_ALIAS], d), ...(s.up ? [line(['link', 'set', s.peer!, 'up'], d)] : [])]
  }

  override get del(): BatchLine[] {
    return [line(['link', 'del', this.spec.name], this.desc)]
  }

  override get entry(): Record<string, unknown> {
    const s = this.spec
    return clean({
      name: s.name,
      type: s.kind,
      peer: s.peer,
      peerNetns: s.peerNetns,
      vni: s.vni,
      remote: s.remote,
      group: s.group,
      dev: s.dev,
      port: s.kind === 'vxlan' ? s.port : undefined,
      parent: s.parent,
      mode: s.kind === 'macvlan' ? s.mode : undefined,
      mtu: s.mtu,
      master: s.master,
      up: s.up,
    })
  }
}

/** A live link as an object (undefined for kinds apply does not manage), read by link.ts's one parser. `netnsName` names the namespace of a veth's other end. */
export function liveLink(l: IpLink, netnsName: (id: number) => string | undefined = () => undefined): LinkObj | undefined {
  const s = liveSpec(l, netnsName)
  if (!s) return undefined
  const {peerNetnsid, ...spec} = s
  // A veth's other end in an unnamed namespace: named by its id (export leaves those out).
  if (peerNetnsid !== undefined && spec.peerNetns === undefined) spec.peerNetns = `netnsid ${peerNetnsid}`
  // A peer here is known by name; the index only counts for an end elsewhere.
  if (peerNetnsid === undefined) delete spec.peerIndex
  return new LinkObj(spec, l.ifalias === NETKIT_ALIAS)
}

export class AddrObj extends Obj {
  /** Live: an IPv4 secondary address, which the kernel deletes with the primary of its subnet. */
  secondary = false

  get kind() {
    return 'addr' as const
  }

  constructor(
    readonly dev: string,
    readonly cidr: string,
    owned = true,
  ) {
    super(`${dev} ${cidr}`, owned)
  }

  get attrs(): Attrs {
    return {}
  }

  get desc(): string {
    return `address ${this.cidr} on ${this.dev}`
  }

  override get add(): BatchLine[] {
    return [line(['addr', 'add', this.cidr, 'dev', this.dev], this.desc)]
  }

  override get del(): BatchLine[] {
    return [line(['addr', 'del', this.cidr, 'dev', this.dev], this.desc)]
  }

  override get entry(): Record<string, unknown> {
    return {dev: this.dev, address: this.cidr}
  }
}

export class RouteObj extends Obj {
  get kind() {
    return 'route' as const
  }

  constructor(
    readonly spec: RouteSpec,
    owned = true,
  ) {
    super(`${spec.table} ${spec.dst} ${spec.metric ?? (spec.family === 6 ? 1024 : 0)}`, owned)
  }

  get attrs(): Attrs {
    return {via: this.spec.via, dev: this.spec.dev, src: this.spec.src}
  }

  get desc(): string {
    return `route ${this.spec.dst}${this.spec.table === 254 ? '' : ` (table ${this.spec.table})`}`
  }

  override get add(): BatchLine[] {
    return [line(routeArgs('add', this.spec), this.desc)]
  }

  override get del(): BatchLine[] {
    const r = this.spec
    // Only netkit's (protocol 178): undoing an add that failed must not take a foreign route to the same place.
    return [
      line(
        ['route', 'del', dstWord(r), ...(r.metric !== undefined ? ['metric', String(r.metric)] : []), 'proto', String(NETKIT_PROTO), 'table', String(r.table)],
        this.desc,
      ),
    ]
  }

  override get entry(): Record<string, unknown> {
    const r = this.spec
    return clean({to: r.dst, via: r.via, dev: r.dev, table: r.table === 254 ? undefined : r.table, metric: r.metric, src: r.src})
  }
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

export class ProxyObj extends Obj {
  get kind() {
    return 'proxy' as const
  }

  constructor(
    readonly address: string,
    readonly dev: string,
    owned = true,
  ) {
    super(`${address} ${dev}`, owned)
  }

  get attrs(): Attrs {
    return {}
  }

  get desc(): string {
    return `proxy entry ${this.address} on ${this.dev}`
  }

  override get add(): BatchLine[] {
    return [line(['neigh', 'add', 'proxy', this.address, 'dev', this.dev, 'protocol', String(NETKIT_PROTO)], this.desc)]
  }

  override get del(): BatchLine[] {
    return [line(['neigh', 'del', 'proxy', this.address, 'dev', this.dev], this.desc)]
  }

  override get entry(): Record<string, unknown> {
    return {address: this.address, dev: this.dev}
  }
}

const hex = (n: number) => `0x${n.toString(16)}`

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

export class SysctlObj extends Obj {
  get kind() {
    return 'sysctl' as const
  }

  constructor(
    readonly path: string,
    readonly value: string,
    owned = true,
  ) {
    super(path, owned)
  }

  get attrs(): Attrs {
    return {value: this.value}
  }

  get desc(): string {
    return `sysctl ${this.path.replaceAll('/', '.')} = ${this.value}`
  }
}

export class TableObj extends Obj {
  get kind() {
    return 'table' as const
  }

  constructor(
    readonly name: string,
    readonly number: number,
    owned = true,
  ) {
    super(name, owned)
  }

  get attrs(): Attrs {
    return {id: this.number}
  }

  get desc(): string {
    return `table ${this.name} (${this.number})`
  }
}

export class NetnsObj extends Obj {
  get kind() {
    return 'netns' as const
  }

  constructor(name: string, owned = true) {
    super(name, owned)
  }

  get attrs(): Attrs {
    return {}
  }

  get desc(): string {
    return `namespace ${this.key}`
  }
}

/** A tunnel: made and removed by netkit's tunnel service (with its own undo), compared by definition. */
export class TunnelObj extends Obj {
  get kind() {
    return 'tunnel' as const
  }

  constructor(
    readonly def: TunnelDef,
    /** The definition as canonical text, with the PSK's digest (a changed key is a changed tunnel). */
    readonly fingerprint: string,
    /** Where its definition came from: the file (desired: the PSK read from pskFile) or the config (live). */
    readonly psk?: Secret,
    owned = true,
    /** Live: whether its daemon or device is there (charon with the connection loaded, the WireGuard or VXLAN device up). Desired: true. */
    readonly running = true,
  ) {
    super(def.name, owned)
  }

  get attrs(): Attrs {
    return {definition: this.fingerprint, runtime: this.running ? 'running' : 'down'}
  }

  get desc(): string {
    return `${this.def.type} tunnel ${this.def.name}`
  }
}

/**
 * A peer of a WireGuard interface (a tunnel without `remote`): added, changed
 * and removed one at a time (its tunnel's device is not made again), compared
 * by its definition and whether the device has it.
 */
export class PeerObj extends Obj {
  get kind() {
    return 'wg-peer' as const
  }

  constructor(
    readonly tunnel: string,
    readonly name: string,
    readonly peer: WgPeer,
    /** The peer as text (peers.ts peerFingerprint). */
    readonly fingerprint: string,
    owned = true,
    /** Live: whether the device has it. Desired: true. */
    readonly running = true,
  ) {
    super(`${tunnel} ${name}`, owned)
  }

  get attrs(): Attrs {
    return {definition: this.fingerprint, runtime: this.running ? 'running' : 'down'}
  }

  get desc(): string {
    return `peer ${this.name} of WireGuard tunnel ${this.tunnel}`
  }
}

/** The attributes of `desired` that `live` has differently (attributes the file leaves out do not count). */
const LINK_SETTINGS = new Set(['mtu', 'master', 'up'])

/** A link whose type and wiring match, and only its MTU, bridge or state differ: changed in place (else deleted and made again). */
export function settingsOnly(d: Obj, l: Obj): boolean {
  const la = l.attrs
  return Object.entries(d.attrs).every(([k, want]) => want === undefined || LINK_SETTINGS.has(k) || String(la[k] ?? '') === String(want))
}

export function differences(desired: Obj, live: Obj): string[] {
  const out: string[] = []
  const have = live.cmp
  const want = desired.cmp
  for (const k in want) {
    const w = want[k]
    if (w === undefined) continue
    const h = have[k]
    if (h === w || String(h ?? '') === String(w)) continue
    out.push(
      k === 'definition' ? 'its definition differs' : k === 'runtime' ? 'it is down' : k === 'key' ? 'its key differs' : `${k} ${h ?? 'unset'}, not ${w}`,
    )
  }
  return out
}
