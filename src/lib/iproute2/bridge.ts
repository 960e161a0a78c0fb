/**
 * Bridges and their ports. A bridge is a link (made and deleted through
 * link.ts, with the same "netkit" alias); ports are attached with
 * `ip link set IF master BR` and detached with `nomaster`.
 */
import {NetkitError, UsageError} from '../errors.js'
import type {BatchLine, Runner} from '../runner.js'
import {type IpLink, readLinks} from './json.js'
import {addLink, type AddResult, delLink, inNs, isOwned, mustExist, refuseForeign} from './link.js'
import {netnsFlag} from '../wording.js'

export interface BridgeRow {
  name: string
  owned: boolean
  /** Operational state: UP, DOWN, ... */
  state: string
  /** Port names, sorted. */
  ports: string[]
}

export async function addBridge(runner: Runner, name: string, opts: {mtu?: number; up?: boolean} = {}): Promise<AddResult> {
  return addLink(runner, {name, kind: 'bridge', mtu: opts.mtu, up: opts.up})
}

export async function delBridge(runner: Runner, name: string, opts: {force?: boolean} = {}): Promise<boolean> {
  return delLink(runner, name, {force: opts.force, kind: 'bridge'})
}

/**
 * The line that attaches ifname to bridge, or none when it already is a port of it. E_CONFLICT if it is a port elsewhere,
 * and a refusal (exit 2) if netkit did not make it, unless forced. Pure.
 */
export function planAttach(br: IpLink, l: IpLink, opts: {force?: boolean; netns?: string | null} = {}): BatchLine[] {
  if (l.master === br.ifname) return []
  refuseForeign(l, 'attach', opts.force)
  if (l.master && !opts.force) {
    throw new NetkitError('E_CONFLICT', `link ${l.ifname} is already a port of ${l.master}`, {
      fix: `detach it first ("netkit bridge detach ${l.ifname}${netnsFlag(opts.netns)}"), or pass --force to move it to ${br.ifname}`,
    })
  }
  return [{args: ['link', 'set', l.ifname, 'master', br.ifname], object: `link ${l.ifname}`}]
}

export async function attach(runner: Runner, bridge: string, ifname: string, opts: {force?: boolean} = {}): Promise<boolean> {
  if (bridge === ifname) throw new UsageError(`a bridge cannot be a port of itself (${bridge})`, 'give the bridge first, then the interface')
  const br = await mustExist(runner, bridge, 'the bridge')
  if (br.linkinfo?.info_kind !== 'bridge') throw new UsageError(`link ${bridge} is not a bridge${inNs(runner)}`, 'see "netkit bridge list"')
  const l = await mustExist(runner, ifname)
  const lines = planAttach(br, l, {...opts, netns: runner.netns})
  if (lines.length === 0) return false
  await runner.batch(lines)
  return true
}

/** Takes ifname out of its bridge. False when it is in none. A link netkit did not make is refused (exit 2) unless forced. */
export async function detach(runner: Runner, ifname: string, opts: {force?: boolean} = {}): Promise<{changed: boolean; bridge?: string}> {
  const l = await mustExist(runner, ifname)
  if (!l.master) return {changed: false}
  refuseForeign(l, 'detach', opts.force)
  await runner.batch([{args: ['link', 'set', ifname, 'nomaster'], object: `link ${ifname}`}])
  return {changed: true, bridge: l.master}
}

/** Bridges with their ports, from one `ip -j -d link show`. Pure. */
export function bridgeRows(links: IpLink[]): BridgeRow[] {
  return links
    .filter((l) => l.linkinfo?.info_kind === 'bridge')
    .map((b) => ({
      name: b.ifname,
      owned: isOwned(b),
      state: b.operstate ?? 'UNKNOWN',
      ports: links
        .filter((l) => l.master === b.ifname)
        .map((l) => l.ifname)
        .sort(),
    }))
}

export async function listBridges(runner: Runner, opts: {owned?: boolean} = {}): Promise<BridgeRow[]> {
  return bridgeRows(await readLinks(runner)).filter((b) => !opts.owned || b.owned)
}
