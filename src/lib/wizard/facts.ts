/**
 * Good defaults read from the host: the local address (the source of the
 * route to the peer, or of the default route) and the local subnets (the
 * networks of bridges and other non-uplink interfaces).
 */
import ipaddr from 'ipaddr.js'

import type {Runner} from '../runner.js'
import {routeGet} from '../iproute2/route-get.js'

export async function localAddressFor(runner: Runner, peer?: string): Promise<string | undefined> {
  for (const target of [peer, '192.0.2.1'].filter(Boolean) as string[]) {
    const src = (await routeGet(runner, target))?.prefsrc
    if (src) return src
  }
  return undefined
}

interface AddrInfo {
  ifname: string
  link_type?: string
  addr_info?: {family: string; local: string; prefixlen: number; scope?: string}[]
}

/** Subnets on this host other than the uplink's (the interface that leads to the peer). */
export async function localSubnets(runner: Runner, uplinkAddress?: string): Promise<string[]> {
  const r = await runner.probe({tool: 'ip', args: ['-j', 'addr', 'show']})
  if (r.exitCode !== 0) return []
  const out: string[] = []
  for (const link of JSON.parse(r.stdout) as AddrInfo[]) {
    if (link.link_type === 'loopback') continue
    for (const a of link.addr_info ?? []) {
      if (a.family !== 'inet' || a.scope === 'host' || a.local === uplinkAddress) continue
      const cidr = `${a.local}/${a.prefixlen}`
      out.push(`${ipaddr.IPv4.networkAddressFromCIDR(cidr).toString()}/${a.prefixlen}`)
    }
  }
  return [...new Set(out)]
}
