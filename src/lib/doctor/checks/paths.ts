/**
 * Paths: every remote subnet is routed into its tunnel, and the tunnel's MTU
 * leaves room for the encapsulation on the underlay.
 */
import {tunnelStatus} from '../../tunnel/service.js'
import {underlayOf} from '../../tunnel/underlay.js'
import {probe} from './probe.js'
import type {TunnelDef} from '../../tunnel/types.js'
import * as v from '../../validate.js'
import {type Check, type DoctorContext, type Finding, finding, ipIn, nsFlag} from '../types.js'
import {tunnelEnds} from '../../tunnel/wireguard/peers.js'

/** The device a tunnel's traffic should leave by (kernel IPsec has none: policies catch it). */
function tunnelDevice(t: TunnelDef): string | undefined {
  if (t.wireguard) return t.wireguard.ifname
  if (t.vxlan) return t.vxlan.ifname
  return undefined
}

/** Encapsulation overhead in bytes, worst case for the family. */
export const OVERHEAD: Record<TunnelDef['type'], number> = {wireguard: 80, vxlan: 50, ipsec: 73}

export const routesIntoTunnel: Check = {
  id: 'paths.routes',
  title: 'Remote subnets routed into their tunnel',
  group: 'paths',
  async run(ctx) {
    const out: Finding[] = []
    for (const t of ctx.tunnels) {
      for (const subnet of t.remoteSubnets) out.push(await subnetRoute(this, ctx, t, subnet))
    }
    if (out.length === 0) out.push(finding(this, 'skip', {reason: 'no tunnel routes remote subnets', evidence: {}}))
    return out
  },
}

/** Where traffic to a remote subnet's first host goes: into the tunnel's device, or for IPsec under an outbound policy. */
async function subnetRoute(check: Check, ctx: DoctorContext, t: TunnelDef, subnet: string): Promise<Finding> {
  const dev = tunnelDevice(t) ?? (t.type === 'ipsec' ? 'ipsec0' : undefined)
  const probe = v.firstHost(subnet)
  const got = (await ctx.routeTo(probe)) ?? {}
  const evidence = {tunnel: t.name, subnet, probe, dev: got.dev ?? null, expected: dev ?? null}
  const ns = nsFlag(ctx)
  // Kernel IPsec: the route may use the underlay; an outbound policy (a trap before the SA) encrypts.
  if (t.type === 'ipsec' && got.dev !== 'ipsec0') {
    if ((await tunnelStatus(t, {runner: ctx.runner, configDir: ctx.configDir})).state !== 'up') return ipsecWithoutSa(check, ctx, t, subnet, got.dev, evidence)
    const hasPolicy = await outPolicy(ctx, subnet)
    return finding(check, hasPolicy ? 'ok' : 'fail', {
      subject: `${t.name} ${subnet}`,
      evidence: {...evidence, outPolicy: hasPolicy},
      ...(hasPolicy
        ? {}
        : {
            reason: `traffic to ${subnet} leaves by ${got.dev ?? 'no route'} and no outbound IPsec policy or ipsec0 route covers it: it would go in clear or nowhere`,
            fix: `netkit tunnel up ${t.name}${ns}`,
          }),
    })
  }
  const ok = got.dev === dev
  return finding(check, ok ? 'ok' : 'fail', {
    subject: `${t.name} ${subnet}`,
    evidence,
    ...(ok
      ? {}
      : {
          reason: `traffic to ${subnet} leaves by ${got.dev ?? 'no route'}, not through ${dev}`,
          fix: `netkit tunnel down ${t.name}${ns} && netkit tunnel up ${t.name}${ns} (or remove the route that wins)`,
        }),
  })
}

/** An outbound IPsec policy covers the subnet. */
async function outPolicy(ctx: DoctorContext, subnet: string): Promise<boolean> {
  const pol = await ctx.runner.probe({tool: 'ip', args: ['xfrm', 'policy', 'list', 'dir', 'out', 'dst', subnet]})
  return pol.exitCode === 0 && pol.stdout.includes('dir out')
}

/** An IPsec tunnel without an SA: a failure when traffic to the subnet leaves in clear (no guard route, no policy), else a skip (ipsec.sa says why). */
async function ipsecWithoutSa(
  check: Check,
  ctx: DoctorContext,
  t: TunnelDef,
  subnet: string,
  gotDev: string | undefined,
  evidence: Record<string, unknown>,
): Promise<Finding> {
  const ns = nsFlag(ctx)
  if (gotDev && !(await outPolicy(ctx, subnet))) {
    // No SA, and neither the guard route nor a policy stops the packets: they leave in clear.
    return finding(check, 'fail', {
      subject: `${t.name} ${subnet}`,
      evidence,
      reason: `the tunnel has no SA, and traffic to ${subnet} leaves by ${gotDev} in clear: its guard route (unreachable ${subnet}) is gone`,
      fix: `netkit tunnel down ${t.name}${ns} && netkit tunnel up ${t.name}${ns}`,
    })
  }
  // No SA yet, and nothing leaves meanwhile: charon routes (and polices) the subnets once it is up. ipsec.sa says why not.
  return finding(check, 'skip', {subject: `${t.name} ${subnet}`, reason: 'the tunnel has no SA yet (see ipsec.sa)', evidence})
}

export const mtu: Check = {
  id: 'paths.mtu',
  title: 'Tunnel MTU fits the underlay',
  group: 'paths',
  async run(ctx) {
    const links = await ctx.links()
    const byName = new Map(links.map((l) => [l.ifname, l]))
    const out: Finding[] = []
    for (const t of ctx.tunnels) {
      // IPsec on kernel-libipsec carries its packets through charon's TUN device.
      const dev = tunnelDevice(t) ?? (t.type === 'ipsec' && byName.has('ipsec0') ? 'ipsec0' : undefined)
      if (!dev) continue
      const link = byName.get(dev)
      // A WireGuard interface: the path to its first peer with an endpoint stands for all (they leave by the same device as a rule).
      const end = tunnelEnds(t)[0]
      if (!end) {
        out.push(finding(this, 'skip', {subject: t.name, reason: 'no peer with an endpoint to measure the underlay toward', evidence: {dev}}))
        continue
      }
      const underlay = (await ctx.routeTo(end.remote))?.dev
      const under = underlay ? byName.get(underlay) : undefined
      if (underlay && ctx.tunnels.some((o) => tunnelDevice(o) === underlay)) {
        out.push(
          finding(this, 'skip', {
            subject: t.name,
            reason: `the route to the peer goes through the tunnel device ${underlay} (see wireguard.endpoint-route)`,
            evidence: {dev, underlay},
          }),
        )
        continue
      }
      if (!link?.mtu || !under?.mtu) {
        out.push(finding(this, 'skip', {subject: t.name, reason: `${!link ? dev : 'the underlay'} is not there`, evidence: {dev, underlay: underlay ?? null}}))
        continue
      }
      const max = under.mtu - OVERHEAD[t.type]
      const evidence = {dev, mtu: link.mtu, underlay, underlayMtu: under.mtu, overhead: OVERHEAD[t.type], max}
      out.push(
        finding(this, link.mtu <= max ? 'ok' : 'fail', {
          subject: t.name,
          evidence,
          ...(link.mtu <= max
            ? {}
            : {
                reason: `${dev} has MTU ${link.mtu} but the underlay ${underlay} (${under.mtu}) leaves room for ${max}: big packets fragment or vanish`,
                fix: `netkit link set ${dev} --mtu ${max}${nsFlag(ctx)}`,
              }),
        }),
      )
    }
    if (out.length === 0) out.push(finding(this, 'skip', {reason: 'no tunnel device here', evidence: {}}))
    return out
  },
}

/** The path to each peer: a route over a link that is up (a link set down makes every tunnel over it silent, long before a handshake or DPD says so). */
export const underlayCheck: Check = {
  id: 'paths.underlay',
  title: 'Each peer is reachable over a link that is up',
  group: 'paths',
  async run(ctx) {
    const out: Finding[] = []
    const links = new Map((await ctx.links()).map((l) => [l.ifname, l]))
    for (const t of ctx.tunnels) {
      for (const end of tunnelEnds(t)) {
        const u = underlayOf(await ctx.routeTo(end.remote), (dev) => links.get(dev))
        out.push(
          finding(this, u ? 'ok' : 'fail', {
            subject: end.subject,
            evidence: {remote: end.remote, dev: u?.dev ?? null},
            ...(u
              ? {}
              : {
                  reason: `there is no route to the peer ${end.remote} over a link that is up: tunnel ${t.name} carries nothing${end.peer ? ` to peer ${end.peer}` : ''}`,
                  fix: `bring the underlay up, and check it with: ${ipIn(ctx)} route get ${end.remote}`,
                }),
          }),
        )
      }
    }
    if (out.length === 0) out.push(finding(this, 'skip', {reason: 'no tunnel here', evidence: {}}))
    return out
  },
}

export const pathChecks = [underlayCheck, routesIntoTunnel, mtu, probe]
