/**
 * Links (veth, bridge, vxlan, macvlan) as apply sees them: made from a host
 * file's entry or from `ip -j -d link show` (through iproute2/link.ts's one
 * parser), compared, and made or removed with iproute2 lines.
 */
import type {z} from 'zod/v4'

import type {IpLink} from '../iproute2/json.js'
import {addArgs, bridgeMtuArgs, LINK_KINDS, type LinkSpec, liveSpec, MACVLAN_MODES} from '../iproute2/link.js'
import {NETKIT_ALIAS} from '../ownership.js'
import type {BatchLine} from '../runner.js'
import * as v from '../validate.js'
import {type Attrs, clean, line, Obj} from './object.js'
import type {AddIssue, Path, SchemaParts} from './schema-parts.js'

/** A link entry's schema. */
export const linkSchema = ({z, parsed, ifname, ip, port}: SchemaParts) =>
  z.strictObject({
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

export type LinkEntry = z.output<ReturnType<typeof linkSchema>>

/** A link: what its type needs (a veth's peer, a vxlan's vni, dev and remote or group, a macvlan's parent). */
export function checkLinks(links: LinkEntry[], prefix: Path, add: AddIssue): void {
  links.forEach((l, i) => {
    if (l.type === 'veth' && !l.peer) add({path: [...prefix, 'links', i, 'peer'], message: "a veth needs its peer's name"})
    if (l.type !== 'veth' && l.peerNetns) add({path: [...prefix, 'links', i, 'peerNetns'], message: 'only a veth has a peer end to move'})
    if (l.type === 'vxlan' && (!l.vni || !l.dev || Boolean(l.remote) === Boolean(l.group)))
      add({path: [...prefix, 'links', i], message: 'a vxlan needs vni, dev and one of remote or group'})
    if (l.type === 'macvlan' && !l.parent) add({path: [...prefix, 'links', i, 'parent'], message: 'a macvlan needs its parent'})
  })
}

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

/** A host file's link entry as an object. */
export const linkFromEntry = (l: LinkEntry) =>
  new LinkObj({
    name: l.name,
    kind: l.type,
    peer: l.peer,
    peerNetns: l.peerNetns,
    vni: l.vni,
    remote: l.remote?.ip,
    group: l.group?.ip,
    dev: l.dev,
    port: l.port,
    parent: l.parent,
    mode: l.mode,
    mtu: l.mtu,
    master: l.master,
    up: l.up,
  })

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

/** The live links apply manages, from `ip -j -d link show`; `nsById` names the namespaces of `ip netns list-id`. */
export function liveLinks(rows: IpLink[], nsById: Map<number, string | undefined>): LinkObj[] {
  const out: LinkObj[] = []
  for (const l of rows) {
    const o = liveLink(l, (id) => nsById.get(id))
    if (o) out.push(o)
  }
  return out
}

const LINK_SETTINGS = new Set(['mtu', 'master', 'up'])

/** A link whose type and wiring match, and only its MTU, bridge or state differ: changed in place (else deleted and made again). */
export function settingsOnly(d: Obj, l: Obj): boolean {
  const la = l.attrs
  return Object.entries(d.attrs).every(([k, want]) => want === undefined || LINK_SETTINGS.has(k) || String(la[k] ?? '') === String(want))
}
