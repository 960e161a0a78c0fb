/**
 * Addresses. iproute2 6.1 cannot mark an address with a protocol, so what
 * netkit adds is recorded in the ledger (ownership.ts), keyed "IF CIDR" per
 * namespace; `addr del` refuses an address netkit did not add unless forced.
 */
import {NetkitError, UsageError} from '../errors.js'
import {claim, owns, release, scopeOf} from '../ownership.js'
import type {Runner} from '../runner.js'
import type {Cidr} from '../validate.js'
import {ipJson, requireLink} from './json.js'

interface IpAddrLink {
  ifname: string
  addr_info?: {family: string; local: string; prefixlen: number; scope?: string}[]
}

export interface AddrRow {
  ifname: string
  address: string
  prefixlen: number
  cidr: string
  family: 4 | 6
  scope: string
  owned: boolean
}

const key = (ifname: string, cidr: string) => `${ifname} ${cidr}`

export async function listAddrs(runner: Runner, opts: {ifname?: string; owned?: boolean} = {}): Promise<AddrRow[]> {
  if (opts.ifname) await requireLink(runner, opts.ifname)
  const links = await ipJson<IpAddrLink>(runner, ['addr', 'show', ...(opts.ifname ? ['dev', opts.ifname] : [])])
  const scope = scopeOf(runner.netns)
  return links
    .flatMap((l) => (l.addr_info ?? []).map((a) => {
      const cidr = `${a.local}/${a.prefixlen}`
      return {ifname: l.ifname, address: a.local, prefixlen: a.prefixlen, cidr, family: (a.family === 'inet6' ? 6 : 4) as 4 | 6, scope: a.scope ?? 'global', owned: owns(scope, 'addr', key(l.ifname, cidr))}
    }))
    .filter((r) => !opts.owned || r.owned)
}

export async function addAddr(runner: Runner, ifname: string, cidr: Cidr): Promise<boolean> {
  await requireLink(runner, ifname)
  const here = await listAddrs(runner, {ifname})
  const same = here.find((a) => a.address === cidr.ip)
  if (same && same.prefixlen === cidr.prefix) return false
  if (same) {
    throw new NetkitError('E_CONFLICT', `${ifname} already has ${same.cidr}, with another prefix than ${cidr.cidr}`, {fix: `delete it first ("netkit addr del ${ifname} ${same.cidr}${same.owned ? '' : ' --force'}")`})
  }
  await runner.batch([{args: ['addr', 'add', cidr.cidr, 'dev', ifname], object: `address ${cidr.cidr} on ${ifname}`}])
  if (!runner.dryRun) claim(scopeOf(runner.netns), 'addr', key(ifname, cidr.cidr))
  return true
}

export async function delAddr(runner: Runner, ifname: string, cidr: Cidr, opts: {force?: boolean} = {}): Promise<boolean> {
  await requireLink(runner, ifname)
  const scope = scopeOf(runner.netns)
  const here = (await listAddrs(runner, {ifname})).find((a) => a.address === cidr.ip && a.prefixlen === cidr.prefix)
  if (!here) {
    if (!runner.dryRun) release(scope, 'addr', key(ifname, cidr.cidr))
    return false
  }
  if (!here.owned && !opts.force) throw new UsageError(`address ${cidr.cidr} on ${ifname} was not added by netkit`, 'netkit leaves other tools\' addresses alone; pass --force to delete it anyway', 'E_NOT_OWNED')
  await runner.batch([{args: ['addr', 'del', cidr.cidr, 'dev', ifname], object: `address ${cidr.cidr} on ${ifname}`}])
  if (!runner.dryRun) release(scope, 'addr', key(ifname, cidr.cidr))
  return true
}
