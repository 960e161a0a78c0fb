import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import ipaddr from 'ipaddr.js'

import type {TunnelObj} from '../../src/lib/kinds/index.js'
import {scopeObjects} from '../../src/lib/apply/desired.js'
import {digestOf, type LiveRead} from '../../src/lib/apply/live.js'
import {parseHostFile} from '../../src/lib/apply/schema.js'
import {UsageError} from '../../src/lib/errors.js'
import * as v from '../../src/lib/validate.js'
import {Recorder} from '../helpers/recorder.js'

const fails = (fn: () => unknown) => {
  try {
    fn()
  } catch (error) {
    assert.ok(error instanceof UsageError, String(error))
    return error.what
  }
  assert.fail('expected a UsageError')
}

describe('host file', () => {
  it('takes IPv4 addresses exactly as ipaddr.js does (the fast path agrees with the library)', () => {
    const cases = [
      '1.2.3.4',
      '0.0.0.0',
      '255.255.255.255',
      '01.2.3.4',
      '1.2.3.04',
      '1.2.3',
      '1.2.3.4.5',
      '256.1.1.1',
      '1..2.3',
      '1.2.3.',
      '.1.2.3',
      '0x1.2.3.4',
      '1.2.3.-4',
      '1e1.2.3.4',
      ' 1.2.3.4',
      '1.2.3.4 ',
      '1.2.3.4/24',
      '',
      '1.2.3.999',
      '10.0.0.00',
    ]
    for (const c of cases) {
      const lib = ipaddr.IPv4.isValidFourPartDecimal(c.trim())
      let ours = true
      try {
        assert.equal(v.ipAddress(c).ip, c.trim())
      } catch {
        ours = false
      }
      assert.equal(ours, lib, `"${c}"`)
    }
    // Host bits: the same answer as ipaddr.js for every prefix of a few addresses.
    for (const ip of ['10.1.2.3', '10.0.0.0', '192.168.255.0', '255.255.255.255', '0.0.0.0', '128.0.0.0']) {
      for (let p = 0; p <= 32; p++) {
        const base = ipaddr.IPv4.networkAddressFromCIDR(`${ip}/${p}`).toString()
        if (base === ip) assert.equal(v.network(`${ip}/${p}`).cidr, `${ip}/${p}`)
        else
          assert.match(
            fails(() => v.network(`${ip}/${p}`)),
            /host bits set/,
            `${ip}/${p}`,
          )
      }
    }
    assert.match(
      fails(() => v.network('10.1.2.3/24')),
      /has host bits set/,
    )
    assert.equal(v.network('2001:db8::/32').cidr, '2001:db8::/32')
  })

  it('names the place of each error in the file', () => {
    const cases: [string, RegExp][] = [
      [
        'tunnels:\n  site-b: {type: ipsec, remote: 10.0.0.300, pskFile: /k}\n',
        /^h\.yaml: tunnels\.site-b\.remote: address "10\.0\.0\.300" is not an IP address$/,
      ],
      [
        'namespaces:\n  c1:\n    routes:\n      - {to: 10.2.0.1/24, dev: eth0}\n',
        /^h\.yaml: namespaces\.c1\.routes\.0\.to: route destination "10\.2\.0\.1\/24" has host bits set$/,
      ],
      ['namespaces:\n  c1:\n    bogus: 1\n', /^h\.yaml: namespaces\.c1: Unrecognized key/],
      ['links:\n  - {name: c0, type: veth, peer: eth0, peerNetns: c9}\n', /^h\.yaml: links\.0\.peerNetns: namespace c9 is not in this file's namespaces$/],
      ['tunnels:\n  b: {type: ipsec, remote: 192.0.2.2}\n', /^h\.yaml: tunnels\.b: an IPsec tunnel in a host file needs pskFile/],
      ['tunnels:\n  b: {type: wireguard, remote: 192.0.2.2}\n', /^h\.yaml: tunnels\.b\.peerPublicKey: /],
      ['namespaces:\n  c1:\n    tunnels:\n      b: {type: vxlan, remote: 192.0.2.2}\n', /^h\.yaml: namespaces\.c1\.tunnels\.b\.vni: a VXLAN tunnel needs vni$/],
      ['routes: [{to: 10.2.0.0/24}]\n', /^h\.yaml: routes\.0: a route needs via or dev$/],
      ['sysctls: {ip_forward: 5}\n', /^h\.yaml: sysctls\.ip_forward: net\.ipv4\.ip_forward cannot be "5"$/],
      ['sysctls: {ip_froward: 1}\n', /^h\.yaml: sysctls\.ip_froward: unknown sysctl "ip_froward"$/],
    ]
    for (const [text, re] of cases)
      assert.match(
        fails(() => parseHostFile(`version: 1\n${text}`, 'h.yaml')),
        re,
      )
    // What lost its content (an empty pipe, a truncated copy) is not "nothing": that would remove all that apply made.
    for (const empty of ['', '# only a comment\n', 'null\n', '---\n'])
      assert.match(
        fails(() => parseHostFile(empty, 'h.yaml')),
        /^h\.yaml is empty$/,
      )
    assert.match(
      fails(() => parseHostFile('links: []\n', 'h.yaml')),
      /^h\.yaml: version: missing: a host file starts with "version: 1"$/,
    )
    assert.match(
      fails(() => parseHostFile('{}', 'h.json')),
      /^h\.json: version: missing/,
    )
    assert.match(
      fails(() => parseHostFile('version: 2\n', 'h.yaml')),
      /^h\.yaml: version: netkit reads version 1 host files$/,
    )
  })

  it('parses addresses once into their normal form, and an empty namespace entry means an empty namespace', () => {
    const f = parseHostFile('version: 1\nroutes: [{to: "2001:db8:0::/48", via: "fe80::1", dev: eth0}]\nnamespaces:\n  c1:\n', 'h.yaml')
    assert.deepEqual(f.routes[0].to, {cidr: '2001:db8::/48', ip: '2001:db8::', prefix: 48, family: 6})
    assert.equal(f.routes[0].via?.ip, 'fe80::1')
    assert.deepEqual(f.namespaces.c1.routes, [])
  })
})

describe('the state digest behind the no-op shortcut', () => {
  const read = (ip: string[], extra: Partial<LiveRead> = {}): LiveRead => ({
    recipe: {fresh: false, xfrm: false, sysctls: [], tunnels: false},
    ip,
    xfrm: '',
    sad: '',
    tables: [],
    netns: [],
    sysctls: [],
    tunnels: [],
    ...extra,
  })
  const br = (timer: number, mtu = 1500) =>
    `[{"ifname":"br0","mtu":${mtu},"linkinfo":{"info_kind":"bridge","info_data":{"gc_timer":${timer},"hello_timer":0.00,"stp_state":0}}}]`
  const addr = (left: number) =>
    `[{"ifname":"v0","addr_info":[{"local":"fd00::1","prefixlen":64,"valid_life_time":${left},"preferred_life_time":${left - 100}}]}]`

  it('ignores what counts down by itself (bridge timers, address lifetimes, route expiry)', () => {
    assert.equal(
      digestOf([read([br(298.5), addr(300), '[{"dst":"fd00::/64","expires":298}]'])]),
      digestOf([read([br(12.04), addr(297), '[{"dst":"fd00::/64","expires":3}]'])]),
    )
  })

  it('ignores an IPv6 address finishing duplicate address detection (a link that just came up)', () => {
    const ll = (tentative: boolean) =>
      `[{"ifname":"d0","addr_info":[{"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link",${tentative ? '"tentative":true,' : ''}"valid_life_time":4294967295}]}]`
    assert.equal(digestOf([read([br(1), ll(true)])]), digestOf([read([br(1), ll(false)])]))
  })

  it('sees every other difference', () => {
    const base = digestOf([read([br(1), addr(300)])])
    assert.notEqual(digestOf([read([br(1, 1400), addr(300)])]), base, 'an MTU')
    assert.notEqual(digestOf([read([br(1), addr(300)], {xfrm: 'src 10.0.0.0/24 dst 10.1.0.0/24\n\tdir out priority 0\n'})]), base, 'an xfrm policy')
    assert.notEqual(digestOf([read([br(1), addr(300)], {sysctls: ['0']})]), base, 'a sysctl')
    assert.notEqual(digestOf([read([br(1), addr(300)], {netns: ['c1']})]), base, 'a namespace')
    assert.notEqual(digestOf([read([br(1), addr(300)], {recipe: {fresh: false, xfrm: true, sysctls: [], tunnels: false}})]), base, 'what was read')
  })
})

describe("a tunnel's local address from the host file", () => {
  const KEY = 'IvFPWvrQfXD1CJRJ5I+TEVdP7aT9eewTvCeP/Cg04Gk='
  const tunnelIn = async (scope: string) => {
    const f = parseHostFile(`version: 1\nnamespaces:\n  c1:\n${scope}`, 'h.yaml')
    // No route anywhere: the kernel cannot tell (the namespace does not exist yet).
    const rec = new Recorder().on('route get', {exitCode: 2, stderr: 'Cannot find device'})
    const objs = await scopeObjects(f.namespaces.c1, {}, rec.runner(), 'c1', 'namespaces.c1.')
    return objs.find((o) => o.kind === 'tunnel') as TunnelObj
  }

  it('is the address on the peer subnet, or on the subnet of the gateway towards the peer; vxlan takes its device too', async () => {
    const onLink = await tunnelIn(
      `    addresses: [{dev: eth0, address: 192.0.2.10/24}, {dev: eth1, address: 198.51.100.1/24}]\n    tunnels: {t1: {type: wireguard, remote: 192.0.2.20, address: 10.99.0.1/24, peerPublicKey: "${KEY}"}}\n`,
    )
    assert.equal(onLink.def.local, '192.0.2.10')
    const viaGw = await tunnelIn(
      `    addresses: [{dev: eth0, address: 192.0.2.10/24}, {dev: eth1, address: 198.51.100.1/24}]\n    routes: [{to: default, via: 192.0.2.1}, {to: 203.0.113.0/24, via: 198.51.100.254}]\n    tunnels: {t1: {type: vxlan, remote: 203.0.113.7, vni: 5}}\n`,
    )
    assert.deepEqual([viaGw.def.local, viaGw.def.vxlan?.dev], ['198.51.100.1', 'eth1'], 'the most specific route wins over the default')
  })

  it('nothing in the file says: the error names the entry and the key to give', async () => {
    await assert.rejects(
      tunnelIn(
        `    addresses: [{dev: eth0, address: 198.51.100.1/24}]\n    tunnels: {t1: {type: wireguard, remote: 192.0.2.20, address: 10.99.0.1/24, peerPublicKey: "${KEY}"}}\n`,
      ),
      (e: unknown) => {
        assert.ok(e instanceof UsageError)
        assert.match(e.what, /^host file: namespaces\.c1\.tunnels\.t1: there is no route to 192\.0\.2\.20/)
        assert.match(e.fix!, /give "local"/)
        return true
      },
    )
  })
})
