/**
 * --probe: proves each tunnel's data path. It pings the first host of a
 * remote subnet from this host's address in a local subnet, captures on the
 * underlay meanwhile, and fails if an inner address crosses in clear or if
 * nothing crosses at all.
 */

import type {TunnelDef} from '../../tunnel/types.js'
import * as v from '../../validate.js'
import {type Check, type Finding, finding, ipIn, nsFlag} from '../types.js'
import {peersOf, tunnelEnds} from '../../tunnel/wireguard/peers.js'
import {routeGet} from '../../iproute2/route-get.js'

interface AddrLink {
  addr_info?: {family: string; local: string}[]
}

const ENCAP: Record<TunnelDef['type'], RegExp> = {
  ipsec: /ESP\(spi=|UDP-encap|\.4500 >|\.500 > /,
  wireguard: /UDP, length/,
  vxlan: /VXLAN|\.4789 >/,
}

export const probe: Check = {
  id: 'paths.probe',
  title: 'Traffic crosses the underlay encrypted (--probe)',
  group: 'paths',
  async run(ctx) {
    if (!ctx.probe) return [finding(this, 'skip', {reason: 'run with --probe to send traffic through each tunnel'})]
    const out: Finding[] = []
    const addrs = JSON.parse(await ctx.runner.read({tool: 'ip', args: ['-j', 'addr', 'show']})) as AddrLink[]
    const mine = addrs.flatMap((l) => (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => a.local))
    for (const t of ctx.tunnels) {
      const subnet = t.remoteSubnets.find((s) => !s.includes(':'))
      const src = mine.find((a) => t.localSubnets.some((l) => v.contains(l, a)))
      if (!subnet || !src) {
        out.push(finding(this, 'skip', {subject: t.name, reason: 'no IPv4 remote subnet, or no address of this host in a local subnet, to send a probe from'}))
        continue
      }
      const target = v.firstHost(subnet)
      // A WireGuard interface: the peer whose allowed-ips hold the subnet.
      const remote =
        t.remote ??
        tunnelEnds(t).find((e) =>
          peersOf(t)
            .find((p) => p.name === e.peer)
            ?.allowedIps.includes(subnet),
        )?.remote
      if (!remote) {
        out.push(finding(this, 'skip', {subject: t.name, reason: `the peer behind ${subnet} has no endpoint here to capture toward`}))
        continue
      }
      const dev = (await routeGet(ctx.runner, remote))?.dev
      if (!dev) {
        out.push(
          finding(this, 'fail', {
            subject: t.name,
            reason: `no route to the peer ${remote}: nothing can cross`,
            fix: `check the underlay (${ipIn(ctx)} route get ${remote})`,
          }),
        )
        continue
      }
      const cap = ctx.runner.probe({tool: 'timeout', args: ['5', 'tcpdump', '-lnni', dev, '-c', '30', 'host', remote], timeoutMs: 8000})
      await new Promise((res) => setTimeout(res, 700))
      const ping = await ctx.runner.probe({tool: 'ping', args: ['-c', '3', '-i', '0.2', '-W', '1', '-I', src, target], timeoutMs: 8000})
      const lines = (await cap).stdout.split('\n').filter((l) => l.trim())
      const inner = [src, target]
      const clear = lines.filter((l) => inner.some((a) => new RegExp(`\\b${a.replaceAll('.', '\\.')}\\b`).test(l)))
      const encapsulated = lines.filter((l) => ENCAP[t.type].test(l))
      const evidence = {
        tunnel: t.name,
        underlay: dev,
        from: src,
        to: target,
        answered: ping.exitCode === 0,
        captured: lines.length,
        encapsulated: encapsulated.length,
        inClear: clear.length,
        sample: lines.slice(0, 4),
      }
      if (t.type === 'vxlan') {
        out.push(
          finding(this, encapsulated.length ? 'warn' : 'fail', {
            subject: t.name,
            evidence,
            reason: encapsulated.length ? 'VXLAN carries the traffic, in clear: it does not encrypt' : 'nothing crossed the underlay',
            fix: encapsulated.length ? 'use --type ipsec or wireguard for traffic that must stay private' : `netkit tunnel show ${t.name}${nsFlag(ctx)}`,
          }),
        )
      } else if (clear.length) {
        out.push(
          finding(this, 'fail', {
            subject: t.name,
            evidence,
            reason: `${clear.length} packet(s) with the inner addresses crossed ${dev} in clear`,
            fix: `netkit tunnel up ${t.name}${nsFlag(ctx)}, and check the policies (netkit doctor --check ipsec.spd-sad${nsFlag(ctx)})`,
          }),
        )
      } else if (encapsulated.length === 0) {
        out.push(
          finding(this, 'fail', {
            subject: t.name,
            evidence,
            reason: `the probe to ${target} put nothing on ${dev}: the tunnel carries no traffic`,
            fix: `netkit tunnel show ${t.name}${nsFlag(ctx)}`,
          }),
        )
      } else {
        out.push(finding(this, 'ok', {subject: t.name, evidence}))
      }
    }
    return out.length ? out : [finding(this, 'skip', {reason: 'no tunnel here'})]
  },
}
