/** Kernel support for the data paths, and which one each tunnel type will use here. */
import {espSupport, tunSupport, wireguardSupport, xfrmSupport} from '../../kernel.js'
import {neighbourTables, roomyLimits, type NeighbourTable} from '../../neighbours.js'
import {type Check, finding} from '../types.js'

export const kernelSupport: Check = {
  id: 'kernel.support',
  title: 'Kernel support',
  group: 'kernel',
  async run(ctx) {
    const [xfrm, esp, wg] = await Promise.all([xfrmSupport(ctx.runner), espSupport(ctx.runner), wireguardSupport(ctx.runner)])
    const tun = tunSupport()
    const uses = (type: string) => ctx.tunnels.some((t) => t.type === type)
    return [
      finding(this, xfrm.present ? 'ok' : 'fail', {
        subject: 'XFRM',
        evidence: {how: xfrm.how},
        ...(xfrm.present ? {} : {reason: 'the kernel has no XFRM (IPsec policy) support', fix: 'use a kernel built with CONFIG_XFRM_USER'}),
      }),
      finding(this, esp.present ? 'ok' : uses('ipsec') ? 'warn' : 'ok', {
        subject: 'ESP',
        evidence: {how: esp.how},
        ...(esp.present
          ? {}
          : uses('ipsec')
            ? {
                reason: `no ESP in the kernel (${esp.how}): IPsec runs in userspace (strongSwan kernel-libipsec), slower than the kernel`,
                fix: 'load esp4/esp6 (modprobe esp4) or use a kernel with CONFIG_INET_ESP for the kernel data path',
              }
            : {reason: 'no ESP in the kernel: IPsec would use the userspace data path'}),
      }),
      finding(this, wg.present ? 'ok' : uses('wireguard') ? 'warn' : 'ok', {
        subject: 'WireGuard',
        evidence: {how: wg.how},
        ...(wg.present
          ? {}
          : uses('wireguard')
            ? {
                reason: `no WireGuard module (${wg.how}): WireGuard runs in userspace (wireguard-go), slower than the kernel`,
                fix: 'load the wireguard module (modprobe wireguard) for the kernel data path',
              }
            : {reason: 'no WireGuard module: WireGuard would use wireguard-go'}),
      }),
      finding(this, tun.present ? 'ok' : esp.present && wg.present ? 'warn' : 'fail', {
        subject: 'TUN',
        evidence: {how: tun.how},
        ...(tun.present
          ? {}
          : {
              reason: 'no TUN device: the userspace data paths (kernel-libipsec, wireguard-go) cannot work',
              fix: 'modprobe tun, or create /dev/net/tun (mknod /dev/net/tun c 10 200)',
            }),
      }),
      finding(this, 'ok', {
        subject: 'data paths',
        evidence: {
          ipsec: esp.present ? 'kernel (XFRM with ESP)' : 'userspace (strongSwan kernel-libipsec)',
          wireguard: wg.present ? 'kernel (wireguard module)' : 'userspace (wireguard-go)',
          vxlan: 'kernel',
        },
      }),
    ]
  },
}

/** Share of the limit at which a table is said to be nearly full. */
const NEARLY_FULL = 0.8

/** The fix for a table that is (nearly) full: higher limits, in the root namespace, kept over a reboot. */
function raiseLimits(t: NeighbourTable): string {
  const l = roomyLimits(t)
  const key = (n: number) => `net.ipv${t.family}.neigh.default.gc_thresh${n}`
  const set = `${key(1)}=${l.thresh1} ${key(2)}=${l.thresh2} ${key(3)}=${l.thresh3}`
  return `raise its limits, in the root namespace (one table for the whole machine): sysctl -w ${set}; keep them in /etc/sysctl.d/`
}

/**
 * How full each neighbour table is now. Past overflows alone are history (the
 * counter runs since boot) and said only with a table that is nearly full now.
 */
export const neighbourTable: Check = {
  id: 'kernel.neighbours',
  title: 'Neighbour tables have room',
  group: 'kernel',
  async run(ctx) {
    const tables = await neighbourTables(ctx.runner)
    return tables.map((t) => {
      const subject = t.family === 4 ? 'ARP (IPv4)' : 'NDISC (IPv6)'
      const evidence = {entries: t.entries, limit: t.limit, overflows: t.overflows}
      if (t.entries < t.limit * NEARLY_FULL) return finding(this, 'ok', {subject, evidence})
      const full = t.entries >= t.limit * 0.95 && t.overflows > 0
      const history = t.overflows > 0 ? `; it overflowed ${t.overflows} times since boot` : ''
      return finding(this, full ? 'fail' : 'warn', {
        subject,
        evidence,
        reason: `the kernel's ${subject} neighbour table, one for every namespace, is ${full ? 'full' : 'nearly full'}: ${t.entries} entries of ${t.limit} (gc_thresh3)${history}; when it is full, packets to a new neighbour are dropped ("neighbor table overflow!" in the kernel's log, ping: "No buffer space available")`,
        fix: raiseLimits(t),
      })
    })
  },
}

export const kernelChecks = [kernelSupport, neighbourTable]
