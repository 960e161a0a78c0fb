/** `ip -j ...` read through the runner and parsed: the one way netkit reads iproute2 state. */
import {UsageError} from '../errors.js'
import type {Runner} from '../runner.js'
import {inNamespace, netnsFlag} from '../wording.js'

export async function ipJson<T>(runner: Runner, args: string[]): Promise<T[]> {
  const out = await runner.read({tool: 'ip', args: ['-j', ...args]})
  return out.trim() ? (JSON.parse(out) as T[]) : []
}

/** Like ipJson, but a failure (an object that is not there) is an empty list. */
export async function ipJsonProbe<T>(runner: Runner, args: string[]): Promise<T[]> {
  const r = await runner.probe({tool: 'ip', args: ['-j', ...args]})
  if (r.exitCode !== 0 || !r.stdout.trim()) return []
  try {
    return JSON.parse(r.stdout) as T[]
  } catch {
    return []
  }
}

export interface IpLink {
  ifindex: number
  ifname: string
  link?: string
  /** The peer's ifindex (veth, in its own namespace when link_netnsid is set). */
  link_index?: number
  mtu?: number
  operstate?: string
  flags?: string[]
  address?: string
  master?: string
  ifalias?: string
  link_netnsid?: number
  linkinfo?: {info_kind?: string; info_data?: Record<string, unknown>; info_slave_kind?: string}
}

export async function readLink(runner: Runner, name: string): Promise<IpLink | undefined> {
  return (await ipJsonProbe<IpLink>(runner, ['-d', 'link', 'show', 'dev', name]))[0]
}

export async function readLinks(runner: Runner): Promise<IpLink[]> {
  return ipJson<IpLink>(runner, ['-d', 'link', 'show'])
}

/**
 * Every link with its details and its addresses, in one `ip -j -d addr show`:
 * the read that a run with the read cache (tunnel list, the doctor) shares for
 * all its tunnels and checks.
 */
export const LINKS_WITH_ADDRESSES = ['-j', '-d', 'addr', 'show']

export type IpLinkWithAddresses = IpLink & {addr_info?: {family: string; local: string; prefixlen?: number}[]}

/** A link the user named must exist: otherwise it is bad input (exit 2), and nothing changes. */
export async function requireLink(runner: Runner, name: string, what = 'link'): Promise<IpLink> {
  const l = await readLink(runner, name)
  if (!l)
    throw new UsageError(
      `${what} ${name} does not exist${inNamespace(runner.netns)}`,
      `check the name with "netkit link list${netnsFlag(runner.netns)}"`,
      'E_NO_LINK',
    )
  return l
}
