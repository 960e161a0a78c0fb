/**
 * Links: veth pairs, bridges, VXLAN and macvlan. Every link netkit makes
 * carries the alias "netkit" (both ends of a veth), which is how netkit knows
 * its own: `link del` refuses a link without it unless forced.
 */
import {NetkitError, UsageError} from '../errors.js'
import {NETKIT_ALIAS} from '../ownership.js'
import type {BatchLine, Runner} from '../runner.js'
import {netnsExists} from './netns.js'
import {type IpLink, readLink, readLinks, requireLink} from './json.js'

export const LINK_KINDS = ['veth', 'bridge', 'vxlan', 'macvlan'] as const
export type LinkKind = (typeof LINK_KINDS)[number]
export const MACVLAN_MODES = ['bridge', 'private', 'vepa', 'passthru'] as const

export interface LinkSpec {
  name: string
  kind: LinkKind
  peer?: string
  peerNetns?: string
  vni?: number
  remote?: string
  group?: string
  dev?: string
  port?: number
  parent?: string
  mode?: (typeof MACVLAN_MODES)[number]
  mtu?: number
  up?: boolean
}

export interface LinkRow {
  name: string
  type: string
  state: string
  mtu: number | null
  mac: string | null
  master: string | null
  owned: boolean
  /** veth: the peer's name; vxlan/macvlan: the lower device. */
  peer: string | null
  vni: number | null
}

const inNs = (r: Runner) => (r.netns ? ` in namespace ${r.netns}` : '')

export function linkRow(l: IpLink): LinkRow {
  const data = l.linkinfo?.info_data ?? {}
  return {
    name: l.ifname,
    type: l.linkinfo?.info_kind ?? (l.ifname === 'lo' ? 'loopback' : 'device'),
    state: l.operstate ?? 'UNKNOWN',
    mtu: l.mtu ?? null,
    mac: l.address ?? null,
    master: l.master ?? null,
    owned: l.ifalias === NETKIT_ALIAS,
    peer: l.link ?? null,
    vni: typeof data.id === 'number' ? data.id : null,
  }
}

/** What differs between a link that exists and the one asked for (empty: the same). */
export function linkDiff(l: IpLink, spec: LinkSpec): string[] {
  const out: string[] = []
  const kind = l.linkinfo?.info_kind
  if (kind !== spec.kind) return [`it is a ${kind ?? 'plain device'}, not a ${spec.kind}`]
  const d = (l.linkinfo?.info_data ?? {}) as Record<string, unknown>
  if (spec.kind === 'veth' && spec.peer && !spec.peerNetns && l.link !== spec.peer) out.push(`its peer is ${l.link ?? 'elsewhere'}, not ${spec.peer}`)
  if (spec.kind === 'vxlan') {
    if (d.id !== spec.vni) out.push(`VNI ${String(d.id)}, not ${spec.vni}`)
    if (spec.remote && d.remote !== spec.remote) out.push(`remote ${String(d.remote ?? 'none')}, not ${spec.remote}`)
    if (spec.group && d.group !== spec.group) out.push(`group ${String(d.group ?? 'none')}, not ${spec.group}`)
    if (d.port !== (spec.port ?? 4789)) out.push(`port ${String(d.port)}, not ${spec.port ?? 4789}`)
    if (spec.dev && l.link !== spec.dev) out.push(`device ${l.link ?? 'none'}, not ${spec.dev}`)
  }
  if (spec.kind === 'macvlan') {
    if (spec.parent && l.link !== spec.parent) out.push(`parent ${l.link ?? 'none'}, not ${spec.parent}`)
    if (d.mode !== (spec.mode ?? 'bridge')) out.push(`mode ${String(d.mode)}, not ${spec.mode ?? 'bridge'}`)
  }
  if (spec.mtu !== undefined && l.mtu !== spec.mtu) out.push(`MTU ${l.mtu}, not ${spec.mtu}`)
  return out
}

/** Checks what the spec refers to (lower devices, the peer's namespace) before anything changes. */
async function checkReferents(runner: Runner, spec: LinkSpec): Promise<void> {
  if (spec.kind === 'veth') {
    if (!spec.peer) throw new UsageError('a veth pair needs --peer NAME', 'e.g. netkit link add veth0 --type veth --peer veth1')
    if (spec.peer === spec.name && !spec.peerNetns) throw new UsageError('the two ends of a veth pair need different names', 'give --peer another name, or --peer-netns')
    if (spec.peerNetns && !netnsExists(spec.peerNetns)) throw new UsageError(`network namespace ${spec.peerNetns} does not exist`, `create it with "netkit ns add ${spec.peerNetns}"`, 'E_NO_NETNS')
  }
  if (spec.kind === 'vxlan') {
    if (spec.vni === undefined) throw new UsageError('a VXLAN link needs --vni N', 'pick a VNI from 1 to 16777215')
    if (Boolean(spec.remote) === Boolean(spec.group)) throw new UsageError('a VXLAN link needs exactly one of --remote IP and --group IP', 'use --remote for one peer, --group for a multicast group')
    if (!spec.dev) throw new UsageError('a VXLAN link needs --dev IF (the underlay device)', 'e.g. --dev eth0')
    await requireLink(runner, spec.dev, 'underlay device')
  }
  if (spec.kind === 'macvlan') {
    if (!spec.parent) throw new UsageError('a macvlan link needs --parent IF', 'e.g. --parent eth0')
    await requireLink(runner, spec.parent, 'parent device')
  }
}

export function addArgs(spec: LinkSpec): string[] {
  const head = ['link', 'add', spec.name, ...(spec.mtu ? ['mtu', String(spec.mtu)] : [])]
  switch (spec.kind) {
    case 'veth':
      return [...head, 'type', 'veth', 'peer', 'name', spec.peer!, ...(spec.peerNetns ? ['netns', spec.peerNetns] : [])]
    case 'bridge':
      return [...head, 'type', 'bridge']
    case 'vxlan':
      return [...head, 'type', 'vxlan', 'id', String(spec.vni), ...(spec.remote ? ['remote', spec.remote] : ['group', spec.group!]), 'dev', spec.dev!, 'dstport', String(spec.port ?? 4789)]
    case 'macvlan':
      return [...head, 'link', spec.parent!, 'type', 'macvlan', 'mode', spec.mode ?? 'bridge']
  }
}

/** Adds a link. False when an identical one is already there; E_CONFLICT when a different one is. */
export async function addLink(runner: Runner, spec: LinkSpec): Promise<boolean> {
  await checkReferents(runner, spec)
  const existing = await readLink(runner, spec.name)
  if (existing) {
    const diff = linkDiff(existing, spec)
    if (diff.length === 0) return false
    throw new NetkitError('E_CONFLICT', `link ${spec.name} already exists${inNs(runner)} and differs: ${diff.join('; ')}`, {
      fix: `delete it first ("netkit link del ${spec.name}${existing.ifalias === NETKIT_ALIAS ? '' : ' --force'}"), or choose another name`,
    })
  }
  if (spec.kind === 'veth' && !spec.peerNetns && (await readLink(runner, spec.peer!))) {
    throw new NetkitError('E_CONFLICT', `link ${spec.peer} (the --peer) already exists${inNs(runner)}`, {fix: 'choose another --peer name'})
  }
  const object = `link ${spec.name}`
  const lines: BatchLine[] = [
    {args: addArgs(spec), object},
    {args: ['link', 'set', spec.name, 'alias', NETKIT_ALIAS], object},
  ]
  if (spec.kind === 'veth' && !spec.peerNetns) lines.push({args: ['link', 'set', spec.peer!, 'alias', NETKIT_ALIAS], object: `link ${spec.peer}`})
  if (spec.up) {
    lines.push({args: ['link', 'set', spec.name, 'up'], object})
    if (spec.kind === 'veth' && !spec.peerNetns) lines.push({args: ['link', 'set', spec.peer!, 'up'], object: `link ${spec.peer}`})
  }
  try {
    await runner.batch(lines)
    if (spec.kind === 'veth' && spec.peerNetns) {
      const peer = runner.in(spec.peerNetns)
      await peer.batch([
        {args: ['link', 'set', spec.peer!, 'alias', NETKIT_ALIAS], object: `link ${spec.peer}`},
        ...(spec.up ? [{args: ['link', 'set', spec.peer!, 'up'], object: `link ${spec.peer}`}] : []),
      ])
    }
  } catch (error) {
    // Undo: the link goes (a veth takes its peer with it).
    if (!runner.dryRun && (await readLink(runner, spec.name))) await runner.batch([{args: ['link', 'del', spec.name], object}]).catch(() => {})
    throw error
  }
  return true
}

export interface LinkChange {
  up?: boolean
  down?: boolean
  mtu?: number
  master?: string
  nomaster?: boolean
  toNetns?: string
}

/** Changes only what differs. False when nothing did. */
export async function setLink(runner: Runner, name: string, change: LinkChange): Promise<boolean> {
  if (change.up && change.down) throw new UsageError('--up and --down together', 'choose one')
  if (change.master && change.nomaster) throw new UsageError('--master and --nomaster together', 'choose one')
  const l = await requireLink(runner, name)
  if (change.master) {
    const m = await requireLink(runner, change.master, 'bridge')
    if (m.linkinfo?.info_kind !== 'bridge') throw new UsageError(`${change.master} is not a bridge`, 'give a bridge as --master ("netkit bridge list")')
  }
  if (change.toNetns && !netnsExists(change.toNetns)) throw new UsageError(`network namespace ${change.toNetns} does not exist`, `create it with "netkit ns add ${change.toNetns}"`, 'E_NO_NETNS')
  const args: string[] = []
  if (change.mtu !== undefined && l.mtu !== change.mtu) args.push('mtu', String(change.mtu))
  if (change.master && l.master !== change.master) args.push('master', change.master)
  if (change.nomaster && l.master) args.push('nomaster')
  const isUp = Boolean(l.flags?.includes('UP'))
  if (change.up && !isUp) args.push('up')
  if (change.down && isUp) args.push('down')
  const lines: BatchLine[] = []
  if (args.length) lines.push({args: ['link', 'set', name, ...args], object: `link ${name}`})
  if (change.toNetns) lines.push({args: ['link', 'set', name, 'netns', change.toNetns], object: `link ${name}`})
  if (lines.length === 0) return false
  await runner.batch(lines)
  return true
}

/** Deletes a link netkit made. False if it was not there. */
export async function delLink(runner: Runner, name: string, opts: {force?: boolean; kind?: LinkKind} = {}): Promise<boolean> {
  const l = await readLink(runner, name)
  if (!l) return false
  if (opts.kind && l.linkinfo?.info_kind !== opts.kind) throw new UsageError(`${name} is a ${l.linkinfo?.info_kind ?? 'plain device'}, not a ${opts.kind}`, 'use "netkit link del" for other links')
  if (l.ifalias !== NETKIT_ALIAS && !opts.force) {
    throw new UsageError(`link ${name} was not created by netkit`, `netkit leaves other tools' links alone; pass --force to delete it anyway`, 'E_NOT_OWNED')
  }
  await runner.batch([{args: ['link', 'del', name], object: `link ${name}`}])
  return true
}

export async function listLinks(runner: Runner, opts: {owned?: boolean; kind?: string} = {}): Promise<LinkRow[]> {
  return (await readLinks(runner)).map(linkRow).filter((r) => (!opts.owned || r.owned) && (!opts.kind || r.type === opts.kind))
}

// ---- bridges ----

export interface BridgeRow {
  name: string
  state: string
  owned: boolean
  ports: string[]
}

export async function attach(runner: Runner, bridge: string, ifname: string, opts: {force?: boolean} = {}): Promise<boolean> {
  const br = await requireLink(runner, bridge, 'bridge')
  if (br.linkinfo?.info_kind !== 'bridge') throw new UsageError(`${bridge} is not a bridge`, 'see "netkit bridge list"')
  const l = await requireLink(runner, ifname)
  if (l.master === bridge) return false
  if (l.master && !opts.force) {
    throw new NetkitError('E_CONFLICT', `${ifname} is already a port of ${l.master}`, {fix: `detach it first ("netkit bridge detach ${ifname}"), or pass --force to move it`})
  }
  await runner.batch([{args: ['link', 'set', ifname, 'master', bridge], object: `link ${ifname}`}])
  return true
}

export async function detach(runner: Runner, ifname: string): Promise<boolean> {
  const l = await requireLink(runner, ifname)
  if (!l.master) return false
  await runner.batch([{args: ['link', 'set', ifname, 'nomaster'], object: `link ${ifname}`}])
  return true
}

export async function listBridges(runner: Runner, opts: {owned?: boolean} = {}): Promise<BridgeRow[]> {
  const links = await readLinks(runner)
  return links
    .filter((l) => l.linkinfo?.info_kind === 'bridge')
    .map((b) => ({name: b.ifname, state: b.operstate ?? 'UNKNOWN', owned: b.ifalias === NETKIT_ALIAS, ports: links.filter((l) => l.master === b.ifname).map((l) => l.ifname)}))
    .filter((b) => !opts.owned || b.owned)
}
