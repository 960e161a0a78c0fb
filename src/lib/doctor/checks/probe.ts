/**
 * --probe: proves each tunnel's data path. It pings the first host of a
 * remote subnet from this host's address in a local subnet, captures on the
 * underlay meanwhile, and fails if an inner address crosses in clear or if
 * nothing crosses at all.
 */

import type {TunnelDef} from '../../tunnel/types.js'
import * as v from '../../validate.js'
import {type Check, type DoctorContext, type Finding, finding, ipIn, nsFlag} from '../types.js'
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
    const mine = await ipv4Addresses(ctx)
    for (const t of ctx.tunnels) out.push(await probeTunnel(this, ctx, t, mine))
    return out.length ? out : [finding(this, 'skip', {reason: 'no tunnel here'})]
  },
}

/** This host's IPv4 addresses (a probe's source is one of them). */
async function ipv4Addresses(ctx: DoctorContext): Promise<string[]> {
  const addrs = JSON.parse(await ctx.runner.read({tool: 'ip', args: ['-j', 'addr', 'show']})) as AddrLink[]
  return addrs.flatMap((l) => (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => a.local))
}

/** One tunnel probed: a ping from a local subnet to the first host of a remote one, with a capture on the underlay toward the peer. */
async function probeTunnel(check: Check, ctx: DoctorContext, t: TunnelDef, mine: string[]): Promise<Finding> {
  const subnet = t.remoteSubnets.find((s) => !s.includes(':'))
  const src = mine.find((a) => t.localSubnets.some((l) => v.contains(l, a)))
  if (!subnet || !src) {
    return finding(check, 'skip', {subject: t.name, reason: 'no IPv4 remote subnet, or no address of this host in a local subnet, to send a probe from'})
  }
  const target = v.firstHost(subnet)
  const remote = peerBehind(t, subnet)
  if (!remote) {
    return finding(check, 'skip', {subject: t.name, reason: `the peer behind ${subnet} has no endpoint here to capture toward`})
  }
  const dev = (await routeGet(ctx.runner, remote))?.dev
  if (!dev) {
    return finding(check, 'fail', {
      subject: t.name,
      reason: `no route to the peer ${remote}: nothing can cross`,
      fix: `check the underlay (${ipIn(ctx)} route get ${remote})`,
    })
  }
  const {lines, answered} = await pingWhileCapturing(ctx, dev, remote, src, target)
  const inner = [src, target]
  const clear = lines.filter((l) => inner.some((a) => new RegExp(`\\b${a.replaceAll('.', '\\.')}\\b`).test(l)))
  const encapsulated = lines.filter((l) => ENCAP[t.type].test(l))
  const evidence = {
    tunnel: t.name,
    underlay: dev,
    from: src,
    to: target,
    answered,
    captured: lines.length,
    encapsulated: encapsulated.length,
    inClear: clear.length,
    sample: lines.slice(0, 4),
  }
  return probeVerdict(check, ctx, t, evidence)
}

/** The peer's underlay address: the tunnel's remote, or for a WireGuard interface the peer whose allowed-ips hold the subnet. */
function peerBehind(t: TunnelDef, subnet: string): string | undefined {
  return (
    t.remote ??
    tunnelEnds(t).find((e) =>
      peersOf(t)
        .find((p) => p.name === e.peer)
        ?.allowedIps.includes(subnet),
    )?.remote
  )
}

/** Three pings from src to target while tcpdump captures on dev toward the peer: the captured lines, and whether the pings were answered. */
async function pingWhileCapturing(ctx: DoctorContext, dev: string, remote: string, src: string, target: string): Promise<{lines: string[]; answered: boolean}> {
  const cap = ctx.runner.probe({tool: 'timeout', args: ['5', 'tcpdump', '-lnni', dev, '-c', '30', 'host', remote], timeoutMs: 8000})
  await new Promise((res) => setTimeout(res, 700))
  const ping = await ctx.runner.probe({tool: 'ping', args: ['-c', '3', '-i', '0.2', '-W', '1', '-I', src, target], timeoutMs: 8000})
  const lines = (await cap).stdout.split('\n').filter((l) => l.trim())
  return {lines, answered: ping.exitCode === 0}
}

/** What the capture says: VXLAN crossing is a warning (it does not encrypt); inner addresses in clear, or nothing at all, fail. */
function probeVerdict(
  check: Check,
  ctx: DoctorContext,
  t: TunnelDef,
  evidence: {underlay: string; to: string; encapsulated: number; inClear: number},
): Finding {
  const {underlay: dev, to: target, encapsulated, inClear: clear} = evidence
  if (t.type === 'vxlan') {
    return finding(check, encapsulated ? 'warn' : 'fail', {
      subject: t.name,
      evidence,
      reason: encapsulated ? 'VXLAN carries the traffic, in clear: it does not encrypt' : 'nothing crossed the underlay',
      fix: encapsulated ? 'use --type ipsec or wireguard for traffic that must stay private' : `netkit tunnel show ${t.name}${nsFlag(ctx)}`,
    })
  }
  if (clear) {
    return finding(check, 'fail', {
      subject: t.name,
      evidence,
      reason: `${clear} packet(s) with the inner addresses crossed ${dev} in clear`,
      fix: `netkit tunnel up ${t.name}${nsFlag(ctx)}, and check the policies (netkit doctor --check ipsec.spd-sad${nsFlag(ctx)})`,
    })
  }
  if (encapsulated === 0) {
    return finding(check, 'fail', {
      subject: t.name,
      evidence,
      reason: `the probe to ${target} put nothing on ${dev}: the tunnel carries no traffic`,
      fix: `netkit tunnel show ${t.name}${nsFlag(ctx)}`,
    })
  }
  return finding(check, 'ok', {subject: t.name, evidence})
}
