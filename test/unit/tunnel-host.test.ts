import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {remedies} from '../../src/lib/doctor/run.js'
import type {Finding} from '../../src/lib/doctor/types.js'
import {setCommand, shortName} from '../../src/lib/sysctl.js'
import {hostSettings, hostSteps, kernelFollows} from '../../src/lib/tunnel/host.js'
import type {TunnelContext, TunnelDef} from '../../src/lib/tunnel/types.js'
import {Recorder} from '../helpers/recorder.js'

const base = {
  version: 1 as const,
  local: '192.0.2.1',
  remote: '192.0.2.2',
  localSubnets: [] as string[],
  remoteSubnets: [] as string[],
  datapath: 'auto' as const,
}
const wgOnly: TunnelDef = {
  ...base,
  name: 'wa',
  type: 'wireguard',
  wireguard: {ifname: 'wg-wa', listenPort: 51820, peerPublicKey: 'x', endpoint: '192.0.2.2:51820', address: '10.99.0.1/24'},
}
const wgSites: TunnelDef = {...wgOnly, localSubnets: ['10.1.0.0/24'], remoteSubnets: ['10.2.0.0/24']}
const ipsecSites: TunnelDef = {...base, name: 'ia', type: 'ipsec', localSubnets: ['10.1.0.0/24'], remoteSubnets: ['10.2.0.0/24']}
const v6Sites: TunnelDef = {...wgOnly, localSubnets: ['fd00:1::/64'], remoteSubnets: ['fd00:2::/64']}

const paths = (def: TunnelDef, datapath: 'kernel' | 'userspace', underlay?: string) =>
  hostSettings(def, {datapath, underlay}).map((s) => `${s.path}=${s.value}`)

describe('what a tunnel needs of its host (tunnel/host.ts)', () => {
  it('a tunnel that routes no subnet needs nothing', () => {
    assert.deepEqual(paths(wgOnly, 'userspace'), [])
    assert.deepEqual(paths({...base, name: 'ih', type: 'ipsec'}, 'kernel', 'u0'), [])
  })

  it('routing IPv4 subnets: forwarding, and a forwarding host takes no redirects; its own device means no redirects to send', () => {
    const fwd = ['net/ipv4/ip_forward=1', 'net/ipv4/conf/all/accept_redirects=0']
    assert.deepEqual(paths(wgSites, 'userspace'), fwd)
    assert.deepEqual(paths(wgSites, 'kernel'), fwd)
    assert.deepEqual(paths(ipsecSites, 'userspace'), fwd, 'kernel-libipsec routes through ipsec0')
  })

  it('kernel IPsec forwards out of the underlay: send_redirects off on all and on the underlay', () => {
    assert.deepEqual(paths(ipsecSites, 'kernel', 'u0'), [
      'net/ipv4/ip_forward=1',
      'net/ipv4/conf/all/accept_redirects=0',
      'net/ipv4/conf/all/send_redirects=0',
      'net/ipv4/conf/u0/send_redirects=0',
    ])
  })

  it('IPv6 subnets: IPv6 forwarding only', () => {
    assert.deepEqual(paths(v6Sites, 'userspace'), ['net/ipv6/conf/all/forwarding=1'])
  })

  it('proxy ARP where asked', () => {
    assert.deepEqual(paths({...wgOnly, proxyArp: 'br0'}, 'userspace'), ['net/ipv4/conf/br0/proxy_arp=1'])
  })

  it('knows what the kernel does by itself when ip_forward changes', () => {
    assert.deepEqual(kernelFollows('net/ipv4/ip_forward', '1'), {'net/ipv4/conf/all/accept_redirects': '0'})
    assert.deepEqual(kernelFollows('net/ipv4/ip_forward', '0'), {'net/ipv4/conf/all/accept_redirects': '1'})
    assert.deepEqual(kernelFollows('net/ipv4/conf/all/rp_filter', '2'), {})
  })

  it('a dry run prints what the real run does: no accept_redirects change that turning forwarding on makes by itself', async () => {
    const values: Record<string, string> = {'net/ipv4/ip_forward': '0', 'net/ipv4/conf/all/accept_redirects': '1'}
    const rec = new Recorder().on('sysctl -n', (c) => ({stdout: `${values[c.args.at(-1)!]}\n`}))
    const runner = rec.runner({netns: 'ns1', dryRun: true})
    const ctx = {runner, configDir: '/nonexistent', datapath: 'userspace', datapathReason: '', timeoutMs: 1000, wait: false} as TunnelContext
    for (const step of await hostSteps(wgSites, ctx)) await step.apply()
    assert.deepEqual(
      runner.journal.filter((l) => l.includes('sysctl')),
      ['ip netns exec ns1 sysctl -q -w net/ipv4/ip_forward=1'],
    )
  })
})

describe('fix lines for sysctls', () => {
  it('use the short name netkit sysctl set takes, and the namespace', () => {
    assert.equal(shortName('net/ipv4/ip_forward'), 'ip_forward')
    assert.equal(shortName('net/ipv6/conf/all/forwarding'), 'ip6_forward')
    assert.equal(shortName('net/ipv4/conf/eth0.100/send_redirects'), 'send_redirects.eth0.100')
    assert.equal(shortName('net/ipv4/conf/all/rp_filter'), 'rp_filter.all')
    assert.equal(shortName('net/ipv4/tcp_syncookies'), 'net/ipv4/tcp_syncookies')
    assert.equal(setCommand('net/ipv4/conf/u0/send_redirects', '0', 'n1'), 'netkit sysctl set send_redirects.u0 0 --netns n1')
    assert.equal(setCommand('net/ipv4/ip_forward', '1'), 'netkit sysctl set ip_forward 1')
  })

  it('--fix applies each command once, however many findings share it', () => {
    const f = (subject: string, describe: string): Finding => ({
      id: 'host.x',
      title: 'x',
      group: 'host',
      result: 'fail',
      subject,
      evidence: {},
      remedy: {describe, apply: async () => {}},
    })
    const report = {
      findings: [
        f('a', 'netkit sysctl set rp_filter.all 2 --netns n1'),
        f('b', 'netkit sysctl set rp_filter.all 2 --netns n1'),
        f('c', 'netkit sysctl set ip_forward 1 --netns n1'),
      ],
      summary: {ok: 0, warn: 0, fail: 3, skip: 0},
    }
    assert.deepEqual(
      remedies(report).map((x) => x.subject),
      ['a', 'c'],
    )
  })
})
