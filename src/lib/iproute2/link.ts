/**
 * Links: veth pairs, bridges, VXLAN and macvlan. Every link netkit makes
 * carries the alias "netkit" (both ends of a veth), which is how netkit knows
 * its own: `link del` refuses a link without it unless forced. The alias is
 * read back from `ip -j -d link` ("ifalias"); nothing is kept in the ledger.
 *
 * Flow of every change: check the spec (pure), check what it refers to
 * (lower devices, namespaces), read the live link, decide (decideAdd /
 * planSet: pure, unit-tested), then one `ip -batch` per namespace touched.
 */
import {NetkitError, UsageError} from '../errors.js'
import {NETKIT_ALIAS} from '../ownership.js'
import type {BatchError, BatchLine, Runner} from '../runner.js'
import {type IpLink, ipJsonProbe, readLink, readLinks} from './json.js'
import {netnsExists} from './netns.js'
import {inNamespace, netnsFlag} from '../wording.js'

export const LINK_KINDS = ['veth', 'bridge', 'vxlan', 'macvlan'] as const
export type LinkKind = (typeof LINK_KINDS)[number]
export const MACVLAN_MODES = ['bridge', 'private', 'vepa', 'passthru'] as const
export type MacvlanMode = (typeof MACVLAN_MODES)[number]
export const VXLAN_PORT = 4789
export const VNI_MAX = 16_777_215

export interface LinkSpec {
  name: string
  kind: LinkKind
  /** veth: the other end. */
  peer?: string
  /** veth: the namespace the other end goes to (default: the same as this end). */
  peerNetns?: string
  /** vxlan */
  vni?: number
  remote?: string
  group?: string
  dev?: string
  port?: number
  /** macvlan */
  parent?: string
  mode?: MacvlanMode
  mtu?: number
  up?: boolean
}

export const inNs = (r: Runner): string => inNamespace(r.netns)
const nsFlag = (r: Runner): string => netnsFlag(r.netns)
const isUp = (l: IpLink): boolean => Boolean(l.flags?.includes('UP'))
export const isOwned = (l: IpLink): boolean => l.ifalias === NETKIT_ALIAS

/**
 * netkit changes only the links it made: any change to another tool's link
 * (delete, up or down, MTU, bridge, namespace) is refused as bad input (exit 2),
 * before anything runs, unless forced. `verb` is what would be done to it.
 */
export function refuseForeign(l: IpLink, verb: string, force?: boolean): void {
  if (isOwned(l) || force) return
  throw new UsageError(`link ${l.ifname} was not created by netkit`, `netkit leaves other tools' links alone; pass --force to ${verb} it anyway`, 'E_NOT_OWNED')
}

/** A link the user named must exist: otherwise it is bad input (exit 2), and nothing changes. */
export async function mustExist(runner: Runner, name: string, role?: string): Promise<IpLink> {
  const l = await readLink(runner, name)
  if (!l) {
    throw new UsageError(`link ${name}${role ? ` (${role})` : ''} does not exist${inNs(runner)}`, `see "netkit link list${nsFlag(runner)}"`, 'E_NO_LINK')
  }
  return l
}

function noNetns(ns: string, flag: string): UsageError {
  return new UsageError(`network namespace ${ns} (${flag}) does not exist`, `create it with "netkit ns add ${ns}" or check "netkit ns list"`, 'E_NO_NETNS')
}

/** Checks the flags of `link add` against each other, before anything is read. Pure. */
export function checkSpec(spec: LinkSpec): void {
  const only = (flag: string, kind: LinkKind, set: unknown) => {
    if (set !== undefined && spec.kind !== kind) throw new UsageError(`${flag} applies only to --type ${kind}`, `remove ${flag}, or use --type ${kind}`)
  }
  only('--peer', 'veth', spec.peer)
  only('--peer-netns', 'veth', spec.peerNetns)
  only('--vni', 'vxlan', spec.vni)
  only('--remote', 'vxlan', spec.remote)
  only('--group', 'vxlan', spec.group)
  only('--dev', 'vxlan', spec.dev)
  only('--port', 'vxlan', spec.port)
  only('--parent', 'macvlan', spec.parent)
  only('--mode', 'macvlan', spec.mode)
  switch (spec.kind) {
    case 'veth':
      if (!spec.peer) throw new UsageError('a veth pair needs --peer NAME', `e.g. netkit link add ${spec.name} --type veth --peer ${spec.name}p`)
      if (spec.peer === spec.name && !spec.peerNetns)
        throw new UsageError('the two ends of a veth pair need different names', 'give --peer another name, or put it in another namespace with --peer-netns')
      break
    case 'vxlan':
      if (spec.vni === undefined) throw new UsageError('a VXLAN link needs --vni N', `pick a VNI from 1 to ${VNI_MAX}`)
      if (spec.vni < 1 || spec.vni > VNI_MAX || !Number.isInteger(spec.vni))
        throw new UsageError(`--vni ${spec.vni} is out of range`, `give a whole number from 1 to ${VNI_MAX}`)
      if (Boolean(spec.remote) === Boolean(spec.group))
        throw new UsageError('a VXLAN link needs exactly one of --remote IP and --group IP', 'use --remote for one peer, --group for a multicast group')
      if (!spec.dev) throw new UsageError('a VXLAN link needs --dev IF (the underlay device)', 'e.g. --dev eth0')
      if (spec.dev === spec.name) throw new UsageError('a VXLAN link cannot be its own underlay device', 'give another --dev')
      break
    case 'macvlan':
      if (!spec.parent) throw new UsageError('a macvlan link needs --parent IF', 'e.g. --parent eth0')
      if (spec.parent === spec.name) throw new UsageError('a macvlan link cannot be its own parent', 'give another --parent')
      break
    case 'bridge':
      break
  }
}

/** Checks what the spec refers to (lower devices, the peer's namespace): missing ones are bad input (exit 2). */
async function checkReferents(runner: Runner, spec: LinkSpec): Promise<void> {
  if (spec.peerNetns && !netnsExists(spec.peerNetns)) throw noNetns(spec.peerNetns, '--peer-netns')
  if (spec.kind === 'vxlan') await mustExist(runner, spec.dev!, 'the --dev of the VXLAN')
  if (spec.kind === 'macvlan') await mustExist(runner, spec.parent!, 'the --parent of the macvlan')
}

/** The `ip link add` arguments for a spec (both ends of a veth get the MTU). */
export function addArgs(spec: LinkSpec): string[] {
  // A bridge's MTU is set after it is made (bridgeMtuArgs).
  const mtu = spec.mtu && spec.kind !== 'bridge' ? ['mtu', String(spec.mtu)] : []
  const head = ['link', 'add', spec.name, ...mtu]
  switch (spec.kind) {
    case 'veth':
      return [...head, 'type', 'veth', 'peer', 'name', spec.peer!, ...mtu, ...(spec.peerNetns ? ['netns', spec.peerNetns] : [])]
    case 'bridge':
      return [...head, 'type', 'bridge']
    case 'vxlan':
      return [
        ...head,
        'type',
        'vxlan',
        'id',
        String(spec.vni),
        ...(spec.remote ? ['remote', spec.remote] : ['group', spec.group!]),
        'dev',
        spec.dev!,
        'dstport',
        String(spec.port ?? VXLAN_PORT),
      ]
    case 'macvlan':
      return [...head, 'link', spec.parent!, 'type', 'macvlan', 'mode', spec.mode ?? 'bridge']
  }
}

/**
 * A bridge keeps an MTU only when it is set after the bridge is made: one
 * given to "ip link add" yields to its ports' as soon as one joins. The line
 * that sets it, for a bridge with an MTU (else none).
 */
export function bridgeMtuArgs(spec: LinkSpec): string[][] {
  return spec.kind === 'bridge' && spec.mtu ? [['link', 'set', spec.name, 'mtu', String(spec.mtu)]] : []
}

/** What is known of a veth's other end when it lives in another namespace. */
export interface RemotePeer {
  /** The namespace the live link's peer is in, by name (from `ip -j netns list-id`); undefined if unnamed or local. */
  netns?: string
  /** The link named --peer (in --peer-netns, or here), if there is one. */
  link?: IpLink
}

/** A live link as the spec that makes it: what `ip -j -d link` says, read in one place. */
export interface LiveLinkSpec extends LinkSpec {
  master?: string
  /** veth: the other end is in another namespace (its id here; `peerNetns` is its name, when known). */
  peerNetnsid?: number
  /** veth: the other end's ifindex (in its own namespace when peerNetnsid is set). */
  peerIndex?: number
}

/**
 * The one reading of a live link of a kind netkit makes (undefined for other
 * kinds): a VXLAN's underlay is info_data.link (the top-level "link" is only
 * there for links with a parent), its remote and group info_data's remote(6)
 * and group(6). `link list`, `link add` and `apply` all read links through it. Pure.
 */
export function liveSpec(l: IpLink, netnsName: (id: number) => string | undefined = () => undefined): LiveLinkSpec | undefined {
  const kind = l.linkinfo?.info_kind
  if (!(LINK_KINDS as readonly string[]).includes(kind ?? '')) return undefined
  const d = (l.linkinfo?.info_data ?? {}) as Record<string, unknown>
  const str = (x: unknown) => (typeof x === 'string' ? x : undefined)
  const num = (x: unknown) => (typeof x === 'number' ? x : undefined)
  const spec: LiveLinkSpec = {name: l.ifname, kind: kind as LinkKind, mtu: l.mtu, master: l.master, up: isUp(l)}
  if (kind === 'veth') {
    if (l.link_netnsid !== undefined && l.link === undefined)
      Object.assign(spec, {peerNetns: netnsName(l.link_netnsid), peerNetnsid: l.link_netnsid, peerIndex: l.link_index})
    else Object.assign(spec, {peer: l.link, peerIndex: l.link_index})
  } else if (kind === 'vxlan') {
    Object.assign(spec, {vni: num(d.id), remote: str(d.remote ?? d.remote6), group: str(d.group ?? d.group6), dev: str(d.link ?? l.link), port: num(d.port)})
  } else if (kind === 'macvlan') {
    Object.assign(spec, {parent: l.link, mode: str(d.mode) as MacvlanMode | undefined})
  }
  return spec
}

/** What differs between a link that exists and the one asked for (empty: the same). Pure. */
export function linkDiff(l: IpLink, spec: LinkSpec, remote: RemotePeer = {}): string[] {
  const out: string[] = []
  const kind = l.linkinfo?.info_kind
  if (kind !== spec.kind) return [`it is ${kind ? `a ${kind}` : 'a plain device'}, not a ${spec.kind}`]
  const live = liveSpec(l)!
  if (spec.kind === 'veth') {
    if (!spec.peerNetns) {
      if (l.link_netnsid !== undefined && l.link === undefined)
        out.push(`its peer is in ${remote.netns ? `namespace ${remote.netns}` : 'another namespace'}, not here`)
      else if (l.link !== spec.peer) out.push(`its peer is ${l.link ?? 'unknown'}, not ${spec.peer}`)
    } else if (l.link !== undefined) {
      out.push(`its peer is ${l.link} in this namespace, not ${spec.peer} in namespace ${spec.peerNetns}`)
    } else if (remote.netns !== spec.peerNetns) {
      out.push(`its peer is in ${remote.netns ? `namespace ${remote.netns}` : 'another namespace'}, not in ${spec.peerNetns}`)
    } else if (!remote.link || remote.link.link_index !== l.ifindex || l.link_index !== remote.link.ifindex) {
      out.push(`its peer in namespace ${spec.peerNetns} is not ${spec.peer}`)
    }
  }
  if (spec.kind === 'vxlan') {
    const {vni, remote: remoteIp, group, port, dev} = live
    if (vni !== spec.vni) out.push(`VNI ${String(vni)}, not ${spec.vni}`)
    if ((spec.remote ?? null) !== (remoteIp ?? null)) out.push(`remote ${remoteIp ?? 'none'}, not ${spec.remote ?? 'none'}`)
    if ((spec.group ?? null) !== (group ?? null)) out.push(`group ${group ?? 'none'}, not ${spec.group ?? 'none'}`)
    if (port !== (spec.port ?? VXLAN_PORT)) out.push(`port ${String(port)}, not ${spec.port ?? VXLAN_PORT}`)
    if (dev !== spec.dev) out.push(`device ${dev ?? 'none'}, not ${spec.dev}`)
  }
  if (spec.kind === 'macvlan') {
    if (live.parent !== spec.parent) out.push(`parent ${live.parent ?? 'none'}, not ${spec.parent}`)
    if (live.mode !== (spec.mode ?? 'bridge')) out.push(`mode ${String(live.mode)}, not ${spec.mode ?? 'bridge'}`)
  }
  if (spec.mtu !== undefined && l.mtu !== spec.mtu) out.push(`MTU ${l.mtu}, not ${spec.mtu}`)
  return out
}

export type AddDecision =
  {action: 'create'} | {action: 'none'; owned: boolean} | {action: 'up'; owned: boolean} | {action: 'conflict'; reasons: string[]; owned: boolean}

/** Whether to make the link, leave it, only bring it up, or refuse. Pure. */
export function decideAdd(existing: IpLink | undefined, spec: LinkSpec, remote: RemotePeer = {}): AddDecision {
  if (!existing) return {action: 'create'}
  const owned = isOwned(existing)
  const reasons = linkDiff(existing, spec, remote)
  if (reasons.length) return {action: 'conflict', reasons, owned}
  const peerDown = spec.kind === 'veth' && remote.link !== undefined && !isUp(remote.link)
  if (spec.up && (!isUp(existing) || peerDown)) return {action: 'up', owned}
  return {action: 'none', owned}
}

/** The batches that make a link: [namespace runner, lines] in order. Pure. */
export function addBatches(runner: Runner, spec: LinkSpec): [Runner, BatchLine[]][] {
  const object = `link ${spec.name}`
  const peerObject = `link ${spec.peer}`
  const here: BatchLine[] = [
    {args: addArgs(spec), object},
    ...bridgeMtuArgs(spec).map((args) => ({args, object})),
    {args: ['link', 'set', spec.name, 'alias', NETKIT_ALIAS], object},
  ]
  const there: BatchLine[] = []
  if (spec.kind === 'veth') (spec.peerNetns ? there : here).push({args: ['link', 'set', spec.peer!, 'alias', NETKIT_ALIAS], object: peerObject})
  if (spec.up) {
    here.push({args: ['link', 'set', spec.name, 'up'], object})
    if (spec.kind === 'veth') (spec.peerNetns ? there : here).push({args: ['link', 'set', spec.peer!, 'up'], object: peerObject})
  }
  const out: [Runner, BatchLine[]][] = [[runner, here]]
  if (there.length) out.push([runner.in(spec.peerNetns!), there])
  return out
}

/** Names of the namespaces this one knows by id (`ip -j netns list-id`): for veth peers elsewhere. */
export async function netnsIds(runner: Runner): Promise<Map<number, string>> {
  const rows = await ipJsonProbe<{nsid: number; name?: string}>(runner, ['netns', 'list-id'])
  return new Map(rows.filter((r) => r.name).map((r) => [r.nsid, r.name!]))
}

async function remotePeer(runner: Runner, existing: IpLink | undefined, spec: LinkSpec): Promise<RemotePeer> {
  if (!existing || spec.kind !== 'veth') return {}
  if (existing.link_netnsid === undefined || existing.link !== undefined)
    return existing.link === spec.peer && !spec.peerNetns ? {link: await readLink(runner, spec.peer!)} : {}
  const netns = (await netnsIds(runner)).get(existing.link_netnsid)
  const link = spec.peerNetns && netns === spec.peerNetns ? await readLink(runner.in(spec.peerNetns), spec.peer!) : undefined
  return {netns, link}
}

export interface AddResult {
  outcome: 'created' | 'exists' | 'brought-up'
  /** The link carries the netkit alias (false: an identical link someone else made, left as it is). */
  owned: boolean
}

/**
 * Adds a link: 'exists' when an identical one is already there (nothing done; not claimed if it is not netkit's),
 * 'brought-up' when it was there but down and --up was asked, E_CONFLICT when a
 * different one is in the way.
 */
export async function addLink(runner: Runner, spec: LinkSpec): Promise<AddResult> {
  checkSpec(spec)
  await checkReferents(runner, spec)
  const existing = await readLink(runner, spec.name)
  const remote = await remotePeer(runner, existing, spec)
  const decision = decideAdd(existing, spec, remote)
  if (decision.action === 'conflict') {
    throw new NetkitError('E_CONFLICT', `link ${spec.name} already exists${inNs(runner)} and differs: ${decision.reasons.join('; ')}`, {
      fix: `delete it first ("netkit link del ${spec.name}${nsFlag(runner)}${decision.owned ? '' : ' --force'}"), or choose another name`,
    })
  }
  if (decision.action === 'none') return {outcome: 'exists', owned: decision.owned}
  if (decision.action === 'up') {
    const lines: BatchLine[] = isUp(existing!) ? [] : [{args: ['link', 'set', spec.name, 'up'], object: `link ${spec.name}`}]
    const peerUp: BatchLine[] = remote.link && !isUp(remote.link) ? [{args: ['link', 'set', spec.peer!, 'up'], object: `link ${spec.peer}`}] : []
    if (spec.peerNetns) {
      await runner.batch(lines)
      await runner.in(spec.peerNetns).batch(peerUp)
    } else {
      await runner.batch([...lines, ...peerUp])
    }
    return {outcome: 'brought-up', owned: decision.owned}
  }
  if (spec.kind === 'veth') {
    const peerRunner = spec.peerNetns ? runner.in(spec.peerNetns) : runner
    if (await readLink(peerRunner, spec.peer!)) {
      throw new NetkitError('E_CONFLICT', `link ${spec.peer} (the --peer) already exists${inNs(peerRunner)}`, {fix: 'choose another --peer name'})
    }
  }
  const batches = addBatches(runner, spec)
  let made = false
  try {
    for (const [i, [r, lines]] of batches.entries()) {
      try {
        await r.batch(lines)
      } catch (error) {
        // ip -batch stops at the first failed line: if that was the add, nothing was made.
        if (i > 0 || (error as Partial<BatchError>).failedIndex !== 0) made = true
        throw error
      }
      made = true
    }
  } catch (error) {
    // Undo: the link goes (a veth takes its peer with it).
    if (made && !runner.dryRun) await runner.batch([{args: ['link', 'del', spec.name], object: `link ${spec.name}`}]).catch(() => {})
    throw error
  }
  return {outcome: 'created', owned: true}
}

export interface LinkChange {
  up?: boolean
  down?: boolean
  mtu?: number
  master?: string
  nomaster?: boolean
  /** Move the link to this namespace. */
  toNetns?: string
  /** Change it even if netkit did not make it. */
  force?: boolean
}

/** The `ip link set` lines that bring a live link to what was asked (empty: nothing differs). Pure. */
export function planSet(l: IpLink, change: LinkChange, opts: {move?: boolean} = {}): BatchLine[] {
  const name = l.ifname
  const args: string[] = []
  if (opts.move && change.toNetns) args.push('netns', change.toNetns)
  if (change.mtu !== undefined && l.mtu !== change.mtu) args.push('mtu', String(change.mtu))
  if (change.master && l.master !== change.master) args.push('master', change.master)
  if (change.nomaster && l.master) args.push('nomaster')
  // A link moved to another namespace arrives down.
  const upNow = isUp(l) && !opts.move
  if (change.up && !upNow) args.push('up')
  if (change.down && upNow) args.push('down')
  return args.length ? [{args: ['link', 'set', name, ...args], object: `link ${name}`}] : []
}

/** `ip link set` arguments that put back what `change` would change on `l`. */
function restoreArgs(l: IpLink, change: LinkChange): string[] {
  const args: string[] = []
  if (change.mtu !== undefined && l.mtu !== change.mtu) args.push('mtu', String(l.mtu))
  if ((change.master && l.master !== change.master) || (change.nomaster && l.master)) args.push(...(l.master ? ['master', l.master] : ['nomaster']))
  if ((change.up && !isUp(l)) || (change.down && isUp(l))) args.push(isUp(l) ? 'up' : 'down')
  return args
}

export function checkChange(name: string, change: LinkChange): void {
  if (!change.up && !change.down && change.mtu === undefined && !change.master && !change.nomaster && !change.toNetns) {
    throw new UsageError('nothing to change', 'give --up, --down, --mtu N, --master BR, --nomaster or --to-netns NS')
  }
  if (change.up && change.down) throw new UsageError('--up and --down together', 'choose one')
  if (change.master && change.nomaster) throw new UsageError('--master and --nomaster together', 'choose one')
  if (change.master === name) throw new UsageError(`link ${name} cannot be its own master`, 'give a bridge as --master')
  if (change.toNetns && (change.master || change.nomaster)) {
    throw new UsageError(
      '--master/--nomaster cannot be combined with --to-netns (a moved link leaves its bridge)',
      'move it first, then run "netkit link set NAME --master BR --netns NS"',
    )
  }
}

export interface SetResult {
  changed: boolean
  /** Where the link is now (the namespace it was moved to, or found in). */
  netns?: string
}

/** Changes only what differs; with --to-netns, a link already moved is changed where it is. */
export async function setLink(runner: Runner, name: string, change: LinkChange): Promise<SetResult> {
  checkChange(name, change)
  if (change.toNetns && !netnsExists(change.toNetns)) throw noNetns(change.toNetns, '--to-netns')
  let here = runner
  let l = await readLink(runner, name)
  let move = Boolean(change.toNetns) && change.toNetns !== runner.netns
  if (!l && change.toNetns) {
    // Already moved (a second run of the same command): change it where it is.
    const there = runner.in(change.toNetns)
    const lt = await readLink(there, name)
    if (lt) [here, l, move] = [there, lt, false]
  }
  if (!l) l = await mustExist(runner, name)
  if (change.master) {
    const m = await mustExist(here, change.master, 'the --master')
    if (m.linkinfo?.info_kind !== 'bridge')
      throw new UsageError(`link ${change.master} is not a bridge`, `give a bridge as --master (see "netkit bridge list${nsFlag(here)}")`)
  }
  if (move && (await readLink(runner.in(change.toNetns!), name))) {
    throw new NetkitError('E_CONFLICT', `namespace ${change.toNetns} already has a link named ${name}`, {fix: 'rename or remove that one first'})
  }
  const lines = planSet(l, change, {move})
  if (lines.length === 0) return {changed: false, netns: here.netns}
  refuseForeign(l, 'change', change.force)
  try {
    await here.batch(lines)
  } catch (error) {
    // The kernel takes a link's settings one by one: what it took before the one it refused is put back.
    const back = move ? [] : restoreArgs(l, change)
    if (back.length) await here.batch([{args: ['link', 'set', name, ...back], object: `link ${name}`}], undefined, {force: true}).catch(() => {})
    throw error
  }
  return {changed: true, netns: move ? change.toNetns : here.netns}
}

/** Deletes a link netkit made. False if it was not there. A foreign link is refused (exit 2) unless forced. */
export async function delLink(runner: Runner, name: string, opts: {force?: boolean; kind?: LinkKind} = {}): Promise<boolean> {
  const l = await readLink(runner, name)
  if (!l) return false
  if (opts.kind && l.linkinfo?.info_kind !== opts.kind) {
    throw new UsageError(
      `link ${name} is ${l.linkinfo?.info_kind ? `a ${l.linkinfo.info_kind}` : 'a plain device'}, not a ${opts.kind}`,
      `use "netkit link del ${name}" for other links`,
    )
  }
  refuseForeign(l, 'delete', opts.force)
  await runner.batch([{args: ['link', 'del', name], object: `link ${name}`}])
  return true
}

/**
 * One row of `link list --json`. Every key is always there (null when it does
 * not apply), so the shape is stable.
 */
export interface LinkRow {
  name: string
  /** info_kind (veth, bridge, vxlan, macvlan, ...), or "loopback" / "device" for links without one. */
  type: string
  /** Operational state: UP, DOWN, LOWERLAYERDOWN, UNKNOWN, ... */
  state: string
  /** Administratively up (ip link set NAME up). */
  up: boolean
  mtu: number | null
  mac: string | null
  master: string | null
  owned: boolean
  /** veth: the other end's name, when it is in the same namespace. */
  peer: string | null
  /** veth: the namespace the other end is in, when it is elsewhere (null if here or unnamed). */
  peerNetns: string | null
  /** vxlan: the underlay device; macvlan: the parent. */
  lower: string | null
  vni: number | null
  remote: string | null
  group: string | null
  port: number | null
  /** macvlan mode. */
  mode: string | null
}

/** A live link as a row. Pure. */
export function linkRow(l: IpLink, nsNames: Map<number, string> = new Map()): LinkRow {
  const kind = l.linkinfo?.info_kind
  const s = liveSpec(l, (id) => nsNames.get(id))
  return {
    name: l.ifname,
    type: kind ?? (l.ifname === 'lo' ? 'loopback' : 'device'),
    state: l.operstate ?? 'UNKNOWN',
    up: isUp(l),
    mtu: l.mtu ?? null,
    mac: l.address ?? null,
    master: l.master ?? null,
    owned: isOwned(l),
    peer: s?.peer ?? null,
    peerNetns: s?.peerNetns ?? null,
    lower: s?.dev ?? s?.parent ?? null,
    vni: s?.vni ?? null,
    remote: s?.remote ?? null,
    group: s?.group ?? null,
    port: s?.port ?? null,
    mode: s?.mode ?? null,
  }
}

/** A link type as the kernel names kinds (veth, bridge, vxlan, tun, ...), or "loopback"/"device". */
export function linkType(value: string): string {
  if (!/^[a-z][a-z0-9_-]{0,15}$/.test(value))
    throw new UsageError(`link type "${value}" is not a link type`, 'give a kind such as veth, bridge, vxlan, macvlan, tun, loopback or device')
  return value
}

export async function listLinks(runner: Runner, opts: {owned?: boolean; kind?: string} = {}): Promise<LinkRow[]> {
  const links = await readLinks(runner)
  const names = links.some((l) => l.link_netnsid !== undefined && l.link === undefined) ? await netnsIds(runner) : new Map<number, string>()
  return links.map((l) => linkRow(l, names)).filter((r) => (!opts.owned || r.owned) && (!opts.kind || r.type === opts.kind))
}
