/**
 * Addresses. iproute2 6.1 cannot mark an address with a protocol, so what
 * netkit adds is recorded in the ledger (ownership.ts), keyed "IF CIDR" per
 * namespace; `addr del` refuses an address netkit did not add unless forced.
 */
import {NetkitError, UsageError} from '../errors.js'
import {claim, owns, release, scopeOf} from '../ownership.js'
import type {Runner} from '../runner.js'
import * as v from '../validate.js'
import type {Cidr} from '../validate.js'
import {ipJson, requireLink} from './json.js'

/** A link's addresses as `ip -j addr show` prints them. */
export interface IpAddrLink {
  ifname: string
  addr_info?: {family: string; local: string; prefixlen: number; scope?: string; secondary?: boolean}[]
}

export interface AddrRow {
  ifname: string
  address: string
  prefixlen: number
  cidr: string
  family: 4 | 6
  scope: string
  /** An IPv4 address in the subnet of an earlier one on the link: the kernel deletes it with that one (unless promote_secondaries). */
  secondary: boolean
  owned: boolean
}

const key = (ifname: string, cidr: string) => `${ifname} ${cidr}`

export async function listAddrs(runner: Runner, opts: {ifname?: string; owned?: boolean} = {}): Promise<AddrRow[]> {
  if (opts.ifname) await requireLink(runner, opts.ifname)
  const links = await ipJson<IpAddrLink>(runner, ['addr', 'show', ...(opts.ifname ? ['dev', opts.ifname] : [])])
  const scope = scopeOf(runner.netns)
  return addrsOf(links, (ifname, cidr) => owns(scope, 'addr', key(ifname, cidr))).filter((r) => !opts.owned || r.owned)
}

/** The addresses of `ip -j addr show`, one row each; `isOwned`: whether the ledger has it. */
export function addrsOf(links: IpAddrLink[], isOwned: (ifname: string, cidr: string) => boolean): AddrRow[] {
  return links.flatMap((l) =>
    (l.addr_info ?? []).map((a) => {
      const cidr = `${a.local}/${a.prefixlen}`
      return {
        ifname: l.ifname,
        address: a.local,
        prefixlen: a.prefixlen,
        cidr,
        family: (a.family === 'inet6' ? 6 : 4) as 4 | 6,
        scope: a.scope ?? 'global',
        secondary: Boolean(a.secondary),
        owned: isOwned(l.ifname, cidr),
      }
    }),
  )
}

export async function addAddr(runner: Runner, ifname: string, cidr: Cidr): Promise<boolean> {
  await requireLink(runner, ifname)
  const here = await listAddrs(runner, {ifname})
  const same = here.find((a) => a.address === cidr.ip)
  if (same && same.prefixlen === cidr.prefix) return false
  if (same) {
    throw new NetkitError('E_CONFLICT', `${ifname} already has ${same.cidr}, with another prefix than ${cidr.cidr}`, {
      fix: `delete it first ("netkit addr del ${ifname} ${same.cidr}${same.owned ? '' : ' --force'}")`,
    })
  }
  await runner.batch([{args: ['addr', 'add', cidr.cidr, 'dev', ifname], object: `address ${cidr.cidr} on ${ifname}`}])
  if (!runner.dryRun) claim(scopeOf(runner.netns), 'addr', key(ifname, cidr.cidr))
  return true
}

export async function delAddr(runner: Runner, ifname: string, cidr: Cidr, opts: {force?: boolean} = {}): Promise<boolean> {
  await requireLink(runner, ifname)
  const scope = scopeOf(runner.netns)
  const rows = await listAddrs(runner, {ifname})
  const here = rows.find((a) => a.address === cidr.ip && a.prefixlen === cidr.prefix)
  if (!here) {
    if (!runner.dryRun) release(scope, 'addr', key(ifname, cidr.cidr))
    return false
  }
  if (!here.owned && !opts.force)
    throw new UsageError(
      `address ${cidr.cidr} on ${ifname} was not added by netkit`,
      "netkit leaves other tools' addresses alone; pass --force to delete it anyway",
      'E_NOT_OWNED',
    )
  if (!opts.force) await refuseLosingSecondaries(runner, ifname, here, rows)
  await runner.batch([{args: ['addr', 'del', cidr.cidr, 'dev', ifname], object: `address ${cidr.cidr} on ${ifname}`}])
  if (!runner.dryRun) release(scope, 'addr', key(ifname, cidr.cidr))
  return true
}

/**
 * Deleting an IPv4 primary address makes the kernel delete the secondary ones
 * of its subnet too, unless the link promotes them: those may be another
 * tool's, so that is refused (exit 2) unless forced, naming them.
 */
async function refuseLosingSecondaries(runner: Runner, ifname: string, primary: AddrRow, rows: AddrRow[]): Promise<void> {
  if (primary.family !== 4 || primary.secondary) return
  const lost = rows.filter((r) => r.family === 4 && r.secondary && v.networkOf(r.cidr) === v.networkOf(primary.cidr))
  if (lost.length === 0 || (await promotesSecondaries(runner, ifname))) return
  throw new UsageError(
    `deleting ${primary.cidr} on ${ifname} would delete ${lost.map((r) => r.cidr).join(', ')} too (the kernel removes the secondary addresses of a subnet with its primary)`,
    `delete ${lost.length === 1 ? 'that one' : 'those'} first, or set net/ipv4/conf/${ifname}/promote_secondaries to 1, or pass --force`,
    'E_SECONDARIES',
  )
}

/** Whether the link promotes a secondary address when its primary goes (net.ipv4.conf.IF.promote_secondaries). */
export async function promotesSecondaries(runner: Runner, ifname: string): Promise<boolean> {
  const r = await runner.probe({tool: 'sysctl', args: ['-n', `net/ipv4/conf/${ifname}/promote_secondaries`]})
  return r.exitCode === 0 && r.stdout.trim() === '1'
}
