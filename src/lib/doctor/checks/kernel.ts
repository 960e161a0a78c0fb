/** Kernel support for the data paths, and which one each tunnel type will use here. */
import {espSupport, tunSupport, wireguardSupport, xfrmSupport} from '../../kernel.js'
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

export const kernelChecks = [kernelSupport]
