/**
 * Host settings that silently break tunnels: forwarding, ICMP redirects,
 * strict reverse-path filtering, src_valid_mark for fwmark routing, proxy ARP.
 */
import type {Runner} from '../../runner.js'
import {setCommand} from '../../sysctl.js'
import type {HostSetting, SettingKind} from '../../tunnel/host.js'
import type {TunnelDef} from '../../tunnel/types.js'
import {type Check, type DoctorContext, type Finding, finding, type Remedy} from '../types.js'

/** A fix through "netkit sysctl set", as printed (with --netns where the check looked): the value it replaces is recorded, so "netkit sysctl restore" puts it back. */
function setSysctl(ctx: DoctorContext, path: string, value: string): Remedy {
  return {
    describe: setCommand(path, value, ctx.runner.netns),
    apply: async (runner: Runner) => {
      const {resolveKey, setSysctl: set} = await import('../../sysctl.js')
      await set(runner, resolveKey(path), value)
    },
  }
}

/** The fix line and the remedy of a sysctl that needs another value: the same "netkit sysctl set" command. */
function sysctlFix(ctx: DoctorContext, path: string, value: string): {fix: string; remedy: Remedy} {
  return {fix: setCommand(path, value, ctx.runner.netns), remedy: setSysctl(ctx, path, value)}
}

/** The devices that carry a tunnel's traffic: its own device and the underlay. */
export function tunnelDevices(t: TunnelDef): string[] {
  const out: string[] = []
  if (t.wireguard) out.push(t.wireguard.ifname)
  if (t.vxlan) out.push(t.vxlan.ifname, t.vxlan.dev)
  if (t.type === 'ipsec') out.push('ipsec0')
  return out
}

/** Every sysctl (a /proc/sys path) the host checks read: forwarding, "all"'s knobs, each tunnel device's rp_filter, and the settings the tunnels need. */
export function hostSysctls(tunnels: TunnelDef[], needs: {settings: HostSetting[]}[]): string[] {
  return [
    ...new Set([
      'net/ipv4/ip_forward',
      'net/ipv6/conf/all/forwarding',
      'net/ipv4/conf/all/rp_filter',
      'net/ipv4/conf/all/src_valid_mark',
      ...tunnels.flatMap(tunnelDevices).map((dev) => `net/ipv4/conf/${dev}/rp_filter`),
      ...needs.flatMap((n) => n.settings.map((s) => s.path)).filter((p) => /^net\/ipv[46]\//.test(p)),
    ]),
  ]
}

/** The host settings the checked tunnels need (tunnel/host.ts, what "tunnel add" makes), each with the tunnels that need it. */
async function needed(ctx: DoctorContext, kind: SettingKind): Promise<{path: string; value: string; why: string; tunnels: string[]}[]> {
  const byPath = new Map<string, {path: string; value: string; why: string; tunnels: string[]}>()
  for (const {tunnel, settings} of await ctx.hostSettings()) {
    for (const s of settings.filter((x) => x.kind === kind)) {
      const e = byPath.get(s.path) ?? {path: s.path, value: s.value, why: s.why, tunnels: []}
      e.tunnels.push(tunnel)
      byPath.set(s.path, e)
    }
  }
  return [...byPath.values()]
}

const dotted = (path: string) => path.replaceAll('/', '.')

export const forwarding: Check = {
  id: 'host.forwarding',
  title: 'IP forwarding',
  group: 'host',
  async run(ctx) {
    const s = await ctx.sysctls()
    const needs = await needed(ctx, 'forwarding')
    const out: Finding[] = []
    for (const [path, family] of [
      ['net/ipv4/ip_forward', 'IPv4'],
      ['net/ipv6/conf/all/forwarding', 'IPv6'],
    ] as const) {
      const key = dotted(path)
      const need = needs.find((n) => n.path === path)
      const value = s.get(key)
      const evidence = {[key]: value ?? null, tunnels: need?.tunnels ?? []}
      if (value === '1') out.push(finding(this, 'ok', {subject: family, evidence}))
      else if (!need) out.push(finding(this, 'skip', {subject: family, reason: `no tunnel routes ${family} subnets here`, evidence}))
      else {
        out.push(
          finding(this, 'fail', {
            subject: family,
            reason: `${family} forwarding is off, so traffic between the tunnel and the subnets behind it is dropped (${need.tunnels.join(', ')})`,
            evidence,
            ...sysctlFix(ctx, path, '1'),
          }),
        )
      }
    }
    return out
  },
}

export const redirects: Check = {
  id: 'host.redirects',
  title: 'ICMP redirects off',
  group: 'host',
  async run(ctx) {
    const s = await ctx.sysctls()
    const needs = await needed(ctx, 'redirects')
    if (needs.length === 0)
      return [finding(this, 'skip', {reason: 'no tunnel here routes subnets (a host that forwards nothing sends no redirects)', evidence: {}})]
    const out: Finding[] = []
    for (const n of needs) {
      const key = dotted(n.path)
      const [, conf, knob] = /^net\/ipv4\/conf\/(.+)\/([a-z_]+)$/.exec(n.path) ?? [, key, key]
      const subject = `${knob} (${conf})`
      const value = s.get(key)
      const evidence = {[key]: value ?? null, tunnels: n.tunnels}
      if (knob === 'accept_redirects' && s.get('net.ipv4.ip_forward') !== '1') {
        // Turning forwarding on turns accepting redirects off (the kernel does it): host.forwarding's fix is the one.
        out.push(finding(this, 'skip', {subject, reason: 'forwarding is off (see host.forwarding); turning it on turns accepting redirects off', evidence}))
        continue
      }
      if (value === n.value) {
        out.push(finding(this, 'ok', {subject, evidence}))
        continue
      }
      out.push(
        finding(this, 'fail', {
          subject,
          reason:
            knob === 'send_redirects'
              ? `${conf} sends ICMP redirects (${n.why}; tunnels ${n.tunnels.join(', ')})`
              : `the host forwards (tunnels ${n.tunnels.join(', ')}) but accepts ICMP redirects: a forged one can steer traffic around the tunnel`,
          evidence,
          ...sysctlFix(ctx, n.path, n.value),
        }),
      )
    }
    return out
  },
}

export const rpFilter: Check = {
  id: 'host.rp_filter',
  title: 'Reverse-path filter not strict on tunnel interfaces',
  group: 'host',
  async run(ctx) {
    const s = await ctx.sysctls()
    const devs = [...new Set(ctx.tunnels.flatMap(tunnelDevices))]
    const all = Number(s.get('net.ipv4.conf.all.rp_filter') ?? 0)
    const allPath = 'net/ipv4/conf/all/rp_filter'
    if (devs.length === 0) {
      return [
        finding(this, all === 1 ? 'warn' : 'ok', {
          subject: 'all',
          ...(all === 1
            ? {
                reason: 'strict reverse-path filtering (all=1) drops traffic that arrives through a tunnel but is routed back another way',
                fix: setCommand(allPath, '2', ctx.runner.netns),
              }
            : {}),
          evidence: {'net.ipv4.conf.all.rp_filter': all},
        }),
      ]
    }
    const out: Finding[] = []
    const strictByAll: string[] = []
    for (const dev of devs) {
      const own = Number(s.get(`net.ipv4.conf.${dev}.rp_filter`) ?? NaN)
      const evidence = {'net.ipv4.conf.all.rp_filter': all, [`net.ipv4.conf.${dev}.rp_filter`]: Number.isNaN(own) ? null : own}
      if (Number.isNaN(own)) {
        out.push(finding(this, 'skip', {subject: dev, reason: `${dev} does not exist (yet)`, evidence}))
        continue
      }
      // The kernel applies the larger of "all" and the interface's own value.
      const effective = Math.max(all, own)
      if (effective !== 1) out.push(finding(this, 'ok', {subject: dev, evidence: {...evidence, effective}}))
      else if (all === 1) strictByAll.push(dev)
      else {
        const path = `net/ipv4/conf/${dev}/rp_filter`
        out.push(
          finding(this, 'fail', {
            subject: dev,
            reason: `strict reverse-path filtering on ${dev} (rp_filter 1) drops tunnel traffic whose return route differs`,
            evidence: {...evidence, effective},
            ...sysctlFix(ctx, path, '2'),
          }),
        )
      }
    }
    // "all" makes it strict everywhere: one finding, one fix.
    if (strictByAll.length) {
      out.push(
        finding(this, 'fail', {
          subject: 'all',
          reason: `strict reverse-path filtering on all (rp_filter 1; the kernel applies the larger of all and the interface's value) drops tunnel traffic whose return route differs, on ${strictByAll.join(', ')}`,
          evidence: {'net.ipv4.conf.all.rp_filter': all, interfaces: strictByAll},
          ...sysctlFix(ctx, allPath, '2'),
        }),
      )
    }
    return out
  },
}

export const srcValidMark: Check = {
  id: 'host.src_valid_mark',
  title: 'src_valid_mark for fwmark routing',
  group: 'host',
  async run(ctx) {
    const marked = ctx.tunnels.filter((t) => t.wireguard?.fwmark !== undefined && t.table !== undefined)
    const s = await ctx.sysctls()
    const value = s.get('net.ipv4.conf.all.src_valid_mark')
    const path = 'net/ipv4/conf/all/src_valid_mark'
    if (marked.length === 0)
      return [finding(this, 'skip', {reason: 'no tunnel routes by firewall mark', evidence: {'net.ipv4.conf.all.src_valid_mark': value ?? null}})]
    if (value === '1') return [finding(this, 'ok', {evidence: {'net.ipv4.conf.all.src_valid_mark': value}})]
    return [
      finding(this, 'fail', {
        reason: `fwmark routing is used (${marked.map((t) => t.name).join(', ')}) but src_valid_mark is off, so reverse-path checks ignore the mark`,
        evidence: {'net.ipv4.conf.all.src_valid_mark': value ?? null},
        ...sysctlFix(ctx, path, '1'),
      }),
    ]
  },
}

export const proxyArp: Check = {
  id: 'host.proxy_arp',
  title: 'Proxy ARP where a tunnel asks for it',
  group: 'host',
  async run(ctx) {
    const wanted = await needed(ctx, 'proxy_arp')
    if (wanted.length === 0) return [finding(this, 'skip', {reason: 'no tunnel uses --proxy-arp', evidence: {}})]
    const s = await ctx.sysctls()
    return wanted.map((n) => {
      const ifname = n.path.split('/')[3]
      const key = dotted(n.path)
      const value = s.get(key)
      if (value === n.value) return finding(this, 'ok', {subject: ifname, evidence: {[key]: value}})
      return finding(this, 'fail', {
        subject: ifname,
        reason: `tunnel${n.tunnels.length > 1 ? 's' : ''} ${n.tunnels.join(', ')} need${n.tunnels.length > 1 ? '' : 's'} ${ifname} to answer ARP for remote addresses, but proxy_arp is ${value ?? 'missing (no such interface)'}`,
        fix:
          value === undefined ? `give the tunnel an interface that exists (--proxy-arp), or create ${ifname}` : setCommand(n.path, n.value, ctx.runner.netns),
        evidence: {[key]: value ?? null},
        ...(value === undefined ? {} : {remedy: setSysctl(ctx, n.path, n.value)}),
      })
    })
  },
}

export const hostChecks = [forwarding, redirects, rpFilter, srcValidMark, proxyArp]

export type {DoctorContext}
