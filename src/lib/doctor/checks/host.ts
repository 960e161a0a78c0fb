/**
 * Host settings that silently break tunnels: forwarding, ICMP redirects,
 * strict reverse-path filtering, src_valid_mark for fwmark routing, proxy ARP.
 */
import type {Runner} from '../../runner.js'
import type {TunnelDef} from '../../tunnel/types.js'
import {type Check, type DoctorContext, type Finding, finding, nsFlag, type Remedy} from '../types.js'

const routed = (t: TunnelDef) => t.localSubnets.length > 0 || t.remoteSubnets.length > 0

/** A fix through "netkit sysctl set": the value it replaces is recorded, so "netkit sysctl restore" puts it back. */
function setSysctl(key: string, value: string): Remedy {
  return {
    describe: `sysctl -w ${key}=${value}`,
    apply: async (runner: Runner) => {
      const {resolveKey, setSysctl: set} = await import('../../sysctl.js')
      await set(runner, resolveKey(key.replaceAll('.', '/')), value)
    },
  }
}

/** The devices that carry a tunnel's traffic: its own device and the underlay. */
export function tunnelDevices(t: TunnelDef): string[] {
  const out: string[] = []
  if (t.wireguard) out.push(t.wireguard.ifname)
  if (t.vxlan) out.push(t.vxlan.ifname, t.vxlan.dev)
  if (t.type === 'ipsec') out.push('ipsec0')
  return out
}

export const forwarding: Check = {
  id: 'host.forwarding',
  title: 'IP forwarding',
  group: 'host',
  async run(ctx) {
    const s = await ctx.sysctls()
    const needs = ctx.tunnels.filter(routed)
    const out: Finding[] = []
    const v6 = needs.some((t) => [...t.localSubnets, ...t.remoteSubnets].some((n) => n.includes(':')))
    for (const [key, family, needed] of [['net.ipv4.ip_forward', 'IPv4', needs.length > 0], ['net.ipv6.conf.all.forwarding', 'IPv6', v6]] as const) {
      const value = s.get(key)
      const evidence = {[key]: value ?? null, tunnels: needs.map((t) => t.name)}
      if (value === '1') out.push(finding(this, 'ok', {subject: family, evidence}))
      else if (!needed) out.push(finding(this, 'skip', {subject: family, reason: `no tunnel routes ${family} subnets here`, evidence}))
      else {
        out.push(finding(this, 'fail', {
          subject: family,
          reason: `${family} forwarding is off, so traffic between the tunnel and the subnets behind it is dropped (${needs.map((t) => t.name).join(', ')})`,
          fix: `netkit sysctl set ${key === 'net.ipv4.ip_forward' ? 'ip_forward' : 'ip6_forward'} 1${nsFlag(ctx)}`,
          evidence,
          remedy: setSysctl(key, '1'),
        }))
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
    const devs = [...new Set(ctx.tunnels.flatMap(tunnelDevices))].filter((d) => s.has(`net.ipv4.conf.${d}.send_redirects`))
    const severity = ctx.tunnels.length > 0 ? 'fail' : 'warn'
    const out: Finding[] = []
    const val = (conf: string, knob: string) => s.get(`net.ipv4.conf.${conf}.${knob}`) === '1'
    // What the kernel applies: send_redirects is "all OR interface"; accept_redirects is
    // "all AND interface" on a forwarding interface and "all OR interface" otherwise.
    const effective = (conf: string, knob: 'send_redirects' | 'accept_redirects'): boolean => {
      if (conf === 'all' || conf === 'default') return val(conf, knob)
      if (knob === 'accept_redirects' && val(conf, 'forwarding')) return val('all', knob) && val(conf, knob)
      return val('all', knob) || val(conf, knob)
    }
    for (const knob of ['send_redirects', 'accept_redirects'] as const) {
      // "default" matters for send_redirects (new devices inherit it and "all" is OR-ed in);
      // accepted redirects are governed by "all" on a forwarding host.
      const subjects = devs.length > 0 ? (knob === 'send_redirects' ? [...devs, 'default'] : devs) : ['all', 'default']
      for (const conf of subjects) {
        const evidence = {[`net.ipv4.conf.all.${knob}`]: s.get(`net.ipv4.conf.all.${knob}`) ?? null, [`net.ipv4.conf.${conf}.${knob}`]: s.get(`net.ipv4.conf.${conf}.${knob}`) ?? null}
        if (!effective(conf, knob)) {
          out.push(finding(this, 'ok', {subject: `${knob} (${conf})`, evidence}))
          continue
        }
        const culprits = ['all', conf].filter((c, i, a) => a.indexOf(c) === i && val(c, knob))
        out.push(finding(this, severity, {
          subject: `${knob} (${conf})`,
          reason: knob === 'send_redirects'
            ? `${conf} sends ICMP redirects: a host routing into a tunnel tells peers to bypass it`
            : `${conf} accepts ICMP redirects: a forged or bogus redirect can steer traffic around the tunnel`,
          fix: culprits.map((c) => `netkit sysctl set ${knob}.${c} 0`).join(' && '),
          evidence,
          remedy: {
            describe: culprits.map((c) => `sysctl -w net.ipv4.conf.${c}.${knob}=0`).join('; '),
            apply: async (runner) => {
              for (const c of culprits) await setSysctl(`net.ipv4.conf.${c}.${knob}`, '0').apply(runner)
            },
          },
        }))
      }
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
    if (devs.length === 0) {
      return [finding(this, all === 1 ? 'warn' : 'ok', {
        subject: 'all',
        ...(all === 1 ? {reason: 'strict reverse-path filtering (all=1) drops traffic that arrives through a tunnel but is routed back another way', fix: `netkit sysctl set rp_filter.all 2${nsFlag(ctx)}`} : {}),
        evidence: {'net.ipv4.conf.all.rp_filter': all},
      })]
    }
    return devs.map((dev) => {
      const own = Number(s.get(`net.ipv4.conf.${dev}.rp_filter`) ?? NaN)
      const evidence = {'net.ipv4.conf.all.rp_filter': all, [`net.ipv4.conf.${dev}.rp_filter`]: Number.isNaN(own) ? null : own}
      if (Number.isNaN(own)) return finding(this, 'skip', {subject: dev, reason: `${dev} does not exist (yet)`, evidence})
      // The kernel applies the larger of "all" and the interface's own value.
      const effective = Math.max(all, own)
      if (effective !== 1) return finding(this, 'ok', {subject: dev, evidence: {...evidence, effective}})
      const fixKey = all === 1 ? 'all' : dev
      return finding(this, 'fail', {
        subject: dev,
        reason: `strict reverse-path filtering on ${dev} (effective 1: the larger of all=${all} and ${dev}=${own}) drops tunnel traffic whose return route differs`,
        fix: `netkit sysctl set rp_filter.${fixKey} 2${nsFlag(ctx)}`,
        evidence: {...evidence, effective},
        remedy: setSysctl(`net.ipv4.conf.${fixKey}.rp_filter`, '2'),
      })
    })
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
    if (marked.length === 0) return [finding(this, 'skip', {reason: 'no tunnel routes by firewall mark', evidence: {'net.ipv4.conf.all.src_valid_mark': value ?? null}})]
    if (value === '1') return [finding(this, 'ok', {evidence: {'net.ipv4.conf.all.src_valid_mark': value}})]
    return [finding(this, 'fail', {
      reason: `fwmark routing is used (${marked.map((t) => t.name).join(', ')}) but src_valid_mark is off, so reverse-path checks ignore the mark`,
      fix: `netkit sysctl set src_valid_mark.all 1${nsFlag(ctx)}`,
      evidence: {'net.ipv4.conf.all.src_valid_mark': value ?? null},
      remedy: setSysctl('net.ipv4.conf.all.src_valid_mark', '1'),
    })]
  },
}

export const proxyArp: Check = {
  id: 'host.proxy_arp',
  title: 'Proxy ARP where a tunnel asks for it',
  group: 'host',
  async run(ctx) {
    const wanted = ctx.tunnels.filter((t) => t.proxyArp)
    if (wanted.length === 0) return [finding(this, 'skip', {reason: 'no tunnel uses --proxy-arp', evidence: {}})]
    const s = await ctx.sysctls()
    return wanted.map((t) => {
      const key = `net.ipv4.conf.${t.proxyArp}.proxy_arp`
      const value = s.get(key)
      if (value === '1') return finding(this, 'ok', {subject: t.proxyArp, evidence: {[key]: value}})
      return finding(this, 'fail', {
        subject: t.proxyArp,
        reason: `tunnel ${t.name} needs ${t.proxyArp} to answer ARP for remote addresses, but proxy_arp is ${value ?? 'missing (no such interface)'}`,
        fix: `netkit proxyarp enable ${t.proxyArp}${nsFlag(ctx)}`,
        evidence: {[key]: value ?? null},
        ...(value === undefined ? {} : {remedy: setSysctl(key, '1')}),
      })
    })
  },
}

export const hostChecks = [forwarding, redirects, rpFilter, srcValidMark, proxyArp]

export type {DoctorContext}
