/**
 * Proxy ARP: the proxy_arp switch of an interface (a sysctl) and `ip neigh
 * ... proxy` entries, marked with netkit's protocol, which make a host answer
 * ARP for addresses that live elsewhere (behind a tunnel): the role of
 * Rancher's ARP responder.
 */
import {UsageError} from '../errors.js'
import {isNetkitProto, NETKIT_PROTO} from '../ownership.js'
import type {Runner} from '../runner.js'
import {getSysctls, resolveKey, setSysctl} from '../sysctl.js'
import type {Address} from '../validate.js'
import {ipJsonProbe, requireLink} from './json.js'
import {ensureProtoName} from './tables.js'

/** A neighbour entry as `ip -j neigh show` prints it. */
export interface IpNeigh {
  dst: string
  dev: string
  protocol?: string
}

export interface ProxyRow {
  address: string
  dev: string
  owned: boolean
}

export async function listProxies(runner: Runner, opts: {owned?: boolean} = {}): Promise<ProxyRow[]> {
  // Without -4 or -6, ip shows both families (each entry once).
  const rows = await ipJsonProbe<IpNeigh>(runner, ['neigh', 'show', 'proxy'])
  return proxiesOf(rows).filter((r) => !opts.owned || r.owned)
}

/** The proxy entries of `ip -j neigh show proxy`, one row each. */
export function proxiesOf(rows: IpNeigh[]): ProxyRow[] {
  return rows.map((n) => ({address: n.dst, dev: n.dev, owned: isNetkitProto(n.protocol)}))
}

export async function addProxy(runner: Runner, ip: Address, dev: string): Promise<boolean> {
  await requireLink(runner, dev)
  const found = (await listProxies(runner)).find((p) => p.address === ip.ip && p.dev === dev)
  if (found) return false
  ensureProtoName(runner)
  await runner.batch([{args: ['neigh', 'add', 'proxy', ip.ip, 'dev', dev, 'protocol', String(NETKIT_PROTO)], object: `proxy entry ${ip.ip} on ${dev}`}])
  return true
}

export async function delProxy(runner: Runner, ip: Address, dev: string, opts: {force?: boolean} = {}): Promise<boolean> {
  await requireLink(runner, dev)
  const found = (await listProxies(runner)).find((p) => p.address === ip.ip && p.dev === dev)
  if (!found) return false
  if (!found.owned && !opts.force)
    throw new UsageError(`the proxy entry ${ip.ip} on ${dev} was not added by netkit`, 'pass --force to delete it anyway', 'E_NOT_OWNED')
  await runner.batch([{args: ['neigh', 'del', 'proxy', ip.ip, 'dev', dev], object: `proxy entry ${ip.ip} on ${dev}`}])
  return true
}

/** Turns the proxy_arp switch of an interface on or off (the original value is kept for restore). */
export async function switchProxyArp(runner: Runner, dev: string, on: boolean): Promise<boolean> {
  await requireLink(runner, dev)
  return setSysctl(runner, resolveKey(`proxy_arp.${dev}`), on ? '1' : '0')
}

/** Interfaces with proxy_arp on. */
export async function proxyArpInterfaces(runner: Runner, devs: string[]): Promise<string[]> {
  if (devs.length === 0) return []
  const values = await getSysctls(
    runner,
    devs.map((d) => resolveKey(`proxy_arp.${d}`)),
  ).catch(() => devs.map(() => '0'))
  return devs.filter((_, i) => values[i] === '1')
}
