import assert from 'node:assert/strict'
import {mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {skipUnlessRoot} from '../helpers/hosts.js'
import {hostForFile} from '../helpers/realhost.js'

describe('netkit host primitives (integration)', {skip: skipUnlessRoot}, () => {
  // One simulated host (realhost.ts): netkit runs there with its defaults; the test's namespaces are the host's own.
  const H = hostForFile('pr')
  const {nk, sh, tryRun, ipj, dump, makeNs} = H
  const rxPackets = (ns: string, dev: string): number => ipj(ns, ['-s', 'link', 'show', dev])[0].stats64.rx.packets
  const scratch = mkdtempSync(join(tmpdir(), 'netkit-test-'))
  after(() => rmSync(scratch, {recursive: true, force: true}))

  it('links: veth (peer in another namespace), bridge, vxlan, macvlan; idempotent, conflicts named, foreign links left alone', () => {
    const A = makeNs('la')
    const B = makeNs('lb')
    let r = nk('link', 'add', 'v0', '--type', 'veth', '--peer', 'v1', '--peer-netns', B, '--up', '--netns', A)
    assert.equal(r.code, 0, r.stderr)
    const v0 = ipj(A, ['-d', 'link', 'show', 'v0'])[0]
    assert.equal(v0.linkinfo.info_kind, 'veth')
    assert.equal(v0.ifalias, 'netkit')
    assert.equal(ipj(B, ['-d', 'link', 'show', 'v1'])[0].ifalias, 'netkit', 'the peer is marked too')
    r = nk('link', 'add', 'v0', '--type', 'veth', '--peer', 'v1', '--peer-netns', B, '--up', '--netns', A)
    assert.equal(r.code, 0)
    assert.match(r.stdout, /already exists; nothing to do/)

    assert.equal(nk('bridge', 'add', 'br0', '--netns', A).code, 0)
    assert.equal(nk('bridge', 'attach', 'br0', 'v0', '--netns', A).code, 0)
    assert.match(nk('bridge', 'attach', 'br0', 'v0', '--netns', A).stdout, /already a port of br0; nothing to do/)
    assert.deepEqual(
      nk('bridge', 'list', '--json', '--netns', A).json.result,
      [{name: 'br0', state: 'UP', owned: true, ports: ['v0']}].map((b) => ({...b, state: ipj(A, ['link', 'show', 'br0'])[0].operstate})),
    )
    r = nk('link', 'set', 'v0', '--mtu', '1400', '--master', 'br0', '--netns', A)
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual([ipj(A, ['link', 'show', 'v0'])[0].mtu, ipj(A, ['link', 'show', 'v0'])[0].master], [1400, 'br0'])
    assert.match(nk('link', 'set', 'v0', '--mtu', '1400', '--netns', A).stdout, /already as asked; nothing to do/)
    assert.equal(nk('bridge', 'detach', 'v0', '--netns', A).code, 0)
    assert.equal(ipj(A, ['link', 'show', 'v0'])[0].master, undefined)

    assert.equal(nk('addr', 'add', 'v0', '192.0.2.1/24', '--netns', A).code, 0)
    r = nk('link', 'add', 'vx42', '--type', 'vxlan', '--vni', '42', '--remote', '192.0.2.2', '--dev', 'v0', '--netns', A)
    assert.equal(r.code, 0, r.stderr)
    const vx = ipj(A, ['-d', 'link', 'show', 'vx42'])[0]
    assert.deepEqual([vx.linkinfo.info_data.id, vx.linkinfo.info_data.remote, vx.linkinfo.info_data.port], [42, '192.0.2.2', 4789])
    r = nk('link', 'add', 'vx42', '--type', 'vxlan', '--vni', '43', '--remote', '192.0.2.2', '--dev', 'v0', '--netns', A)
    assert.equal(r.code, 1)
    assert.match(r.stderr, /^error: link vx42 already exists in namespace \S+ and differs: VNI 42, not 43/)

    r = nk('link', 'add', 'mv0', '--type', 'macvlan', '--parent', 'v0', '--netns', A)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(ipj(A, ['-d', 'link', 'show', 'mv0'])[0].linkinfo.info_data.mode, 'bridge')

    const list = nk('link', 'list', '--owned', '--json', '--netns', A).json.result
    assert.deepEqual(list.map((l: any) => [l.name, l.type]).sort(), [
      ['br0', 'bridge'],
      ['mv0', 'macvlan'],
      ['v0', 'veth'],
      ['vx42', 'vxlan'],
    ])

    const dry = nk('link', 'del', 'vx42', '--dry-run', '--netns', A)
    assert.equal(dry.stdout, `ip -n ${A} link del vx42\n`)
    assert.equal(tryRun('ip', ['-n', A, 'link', 'show', 'vx42']).code, 0, 'a dry run changes nothing')
    for (const l of ['vx42', 'mv0', 'br0', 'v0']) assert.equal(nk('link', 'del', l, '--netns', A).code, 0)
    assert.match(nk('link', 'del', 'v0', '--netns', A).stdout, /already absent; nothing to do/)
    assert.notEqual(tryRun('ip', ['-n', B, 'link', 'show', 'v1']).code, 0, 'the peer went with it')

    sh('ip', ['-n', A, 'link', 'add', 'foreign0', 'type', 'bridge'])
    r = nk('link', 'del', 'foreign0', '--netns', A)
    assert.equal(r.code, 2)
    assert.match(r.stderr, /^error: link foreign0 was not created by netkit; .*--force/)
    assert.equal(tryRun('ip', ['-n', A, 'link', 'show', 'foreign0']).code, 0)
  })

  it('addresses, sysctls and proxy ARP: a namespace answers ARP for an address that lives elsewhere', () => {
    const P = makeNs('pp')
    const Q = makeNs('pq')
    sh('ip', ['-n', P, 'link', 'add', 'vp', 'type', 'veth', 'peer', 'name', 'vq', 'netns', Q])
    sh('ip', ['-n', P, 'link', 'set', 'vp', 'up'])
    sh('ip', ['-n', Q, 'link', 'set', 'vq', 'up'])
    assert.equal(nk('addr', 'add', 'vp', '10.9.0.1/24', '--netns', P).code, 0)
    assert.match(nk('addr', 'add', 'vp', '10.9.0.1/24', '--netns', P).stdout, /already has 10\.9\.0\.1\/24; nothing to do/)
    let r = nk('addr', 'add', 'vp', '10.9.0.1/16', '--netns', P)
    assert.equal(r.code, 1)
    assert.match(r.stderr, /already has 10\.9\.0\.1\/24, with another prefix/)
    sh('ip', ['-n', Q, 'addr', 'add', '10.9.0.2/24', 'dev', 'vq'])
    const addrs = nk('addr', 'list', 'vp', '--json', '--netns', P).json.result
    assert.deepEqual(
      addrs.filter((a: any) => a.family === 4),
      [{ifname: 'vp', address: '10.9.0.1', prefixlen: 24, cidr: '10.9.0.1/24', family: 4, scope: 'global', secondary: false, owned: true}],
    )

    // sysctl inside the namespace, the root namespace untouched
    const rootFwd = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim()
    assert.equal(nk('sysctl', 'set', 'ip_forward', '1', '--netns', P).code, 0)
    assert.equal(nk('sysctl', 'get', 'ip_forward', '--json', '--netns', P).json.result[0].value, '1')
    assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(), rootFwd, 'the root namespace is untouched')
    assert.deepEqual(nk('sysctl', 'list', '--json', '--netns', P).json.result, [{key: 'net.ipv4.ip_forward', value: '1', original: '0'}])
    assert.equal(nk('sysctl', 'set', 'rp_filter.vp', '2', '--netns', P).code, 0)
    assert.equal(sh('ip', ['netns', 'exec', P, 'sysctl', '-n', 'net.ipv4.conf.vp.rp_filter']).trim(), '2')

    // 10.9.0.50 lives "behind" P (on its lo); P answers ARP for it on vp
    sh('ip', ['-n', P, 'addr', 'add', '10.9.0.50/32', 'dev', 'lo'])
    sh('ip', ['netns', 'exec', P, 'sysctl', '-qw', 'net.ipv4.conf.all.arp_ignore=0'])
    assert.equal(nk('proxyarp', 'enable', 'vp', '--netns', P).code, 0)
    assert.equal(nk('proxyarp', 'add', '10.9.0.50', '--dev', 'vp', '--netns', P).code, 0)
    assert.equal(ipj(P, ['neigh', 'show', 'proxy'])[0].protocol, 'netkit', "ip names netkit's protocol on a host where netkit registered it")
    const pl = nk('proxyarp', 'list', '--json', '--netns', P).json.result
    assert.deepEqual(pl, {interfaces: ['vp'], entries: [{address: '10.9.0.50', dev: 'vp', owned: true}]})
    sh('ip', ['netns', 'exec', Q, 'ping', '-c', '1', '-W', '2', '10.9.0.50'])
    const mac = ipj(P, ['link', 'show', 'vp'])[0].address
    assert.equal(ipj(Q, ['neigh', 'show', '10.9.0.50'])[0].lladdr, mac, "Q learned P's MAC for 10.9.0.50")

    // An IPv6 entry is listed once (ip shows both families without -4/-6).
    assert.equal(nk('proxyarp', 'add', '2001:db8::5', '--dev', 'vp', '--netns', P).code, 0)
    assert.deepEqual(
      nk('proxyarp', 'list', '--json', '--netns', P)
        .json.result.entries.map((e: any) => e.address)
        .sort(),
      ['10.9.0.50', '2001:db8::5'],
    )
    assert.equal(nk('proxyarp', 'del', '2001:db8::5', '--dev', 'vp', '--netns', P).code, 0)
    assert.equal(nk('proxyarp', 'del', '10.9.0.50', '--dev', 'vp', '--netns', P).code, 0)
    // An interface name with a dot (a VLAN-style name), and one deleted after its setting was changed.
    sh('ip', ['-n', P, 'link', 'add', 'd.1', 'type', 'veth', 'peer', 'name', 'd.2'])
    sh('ip', ['-n', P, 'link', 'add', 'q0', 'type', 'veth', 'peer', 'name', 'q1'])
    const rpDot = sh('ip', ['netns', 'exec', P, 'sysctl', '-n', 'net/ipv4/conf/d.1/rp_filter']).trim()
    assert.equal(nk('sysctl', 'set', 'rp_filter.d.1', '2', '--netns', P).code, 0)
    assert.equal(sh('ip', ['netns', 'exec', P, 'sysctl', '-n', 'net/ipv4/conf/d.1/rp_filter']).trim(), '2')
    assert.equal(nk('sysctl', 'set', 'rp_filter.q0', '2', '--netns', P).code, 0)
    sh('ip', ['-n', P, 'link', 'del', 'q0'])
    const listed = nk('sysctl', 'list', '--json', '--netns', P).json.result
    assert.equal(listed.find((x: any) => x.key === 'net.ipv4.ip_forward')?.value, '1', 'a gone key does not hide the others')
    assert.equal(nk('sysctl', 'restore', '--all', '--netns', P).code, 0)
    assert.equal(sh('ip', ['netns', 'exec', P, 'sysctl', '-n', 'net/ipv4/conf/d.1/rp_filter']).trim(), rpDot, 'the dotted one restored')
    assert.deepEqual(nk('sysctl', 'list', '--json', '--netns', P).json.result, [], 'and nothing left to restore')
    sh('ip', ['-n', P, 'link', 'del', 'd.1'])
    assert.equal(sh('ip', ['netns', 'exec', P, 'sysctl', '-n', 'net.ipv4.conf.vp.rp_filter']).trim(), '0', 'restored')
    assert.equal(sh('ip', ['netns', 'exec', P, 'sysctl', '-n', 'net.ipv4.ip_forward']).trim(), '0', 'restored')
    // Another tool's secondary address in the same subnet: deleting netkit's primary would take it too.
    sh('ip', ['-n', P, 'addr', 'add', '10.9.0.7/24', 'dev', 'vp'])
    r = nk('addr', 'del', 'vp', '10.9.0.1/24', '--netns', P)
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /^error: deleting 10\.9\.0\.1\/24 on vp would delete 10\.9\.0\.7\/24 too .*promote_secondaries/)
    assert.deepEqual(
      ipj(P, ['-4', 'addr', 'show', 'vp'])[0].addr_info.map((a: any) => a.local),
      ['10.9.0.1', '10.9.0.7'],
      'both still there',
    )
    sh('ip', ['-n', P, 'addr', 'del', '10.9.0.7/24', 'dev', 'vp'])
    assert.equal(nk('addr', 'del', 'vp', '10.9.0.1/24', '--netns', P).code, 0)
    r = nk('addr', 'del', 'vq', '10.9.0.2/24', '--netns', Q)
    assert.equal(r.code, 2, 'an address netkit did not add is refused')
  })

  it('policy routing: a rule and a route in a named table send a ping out the expected veth', () => {
    const R = makeNs('rr')
    const X = makeNs('rx')
    const Y = makeNs('ry')
    for (const [peer, dev, net] of [
      [X, 'rX', '10.10.1'],
      [Y, 'rY', '10.10.2'],
    ] as const) {
      sh('ip', ['-n', R, 'link', 'add', dev, 'type', 'veth', 'peer', 'name', 'up0', 'netns', peer])
      sh('ip', ['-n', R, 'addr', 'add', `${net}.1/24`, 'dev', dev])
      sh('ip', ['-n', R, 'link', 'set', dev, 'up'])
      sh('ip', ['-n', peer, 'addr', 'add', `${net}.2/24`, 'dev', 'up0'])
      sh('ip', ['-n', peer, 'addr', 'add', '198.51.100.7/32', 'dev', 'lo'])
      sh('ip', ['-n', peer, 'link', 'set', 'up0', 'up'])
      sh('ip', ['-n', peer, 'route', 'add', '10.77.0.0/24', 'via', `${net}.1`])
    }
    sh('ip', ['-n', R, 'addr', 'add', '10.77.0.1/32', 'dev', 'lo'])
    assert.equal(nk('route', 'add', '198.51.100.7/32', '--via', '10.10.1.2', '--netns', R).code, 0)
    assert.equal(nk('table', 'add', 'viay', '142').code, 0)
    const tfile = join(H.host().iproute2Dir, 'rt_tables.d', 'netkit.conf')
    assert.match(readFileSync(tfile, 'utf8'), /^142\tviay$/m)
    assert.equal(statSync(tfile).mode & 0o777, 0o644)
    let r = nk('route', 'add', '198.51.100.7/32', '--via', '10.10.2.2', '--dev', 'rY', '--table', 'viay', '--netns', R)
    assert.equal(r.code, 0, r.stderr)
    const inTable = ipj(R, ['route', 'show', 'table', '142'])
    assert.deepEqual(
      inTable.map((x: any) => [x.dst, x.gateway, x.dev, x.protocol]),
      [['198.51.100.7', '10.10.2.2', 'rY', 'netkit']],
    )
    r = nk('route', 'add', '198.51.100.7/32', '--via', '10.10.1.2', '--table', 'viay', '--netns', R)
    assert.equal(r.code, 1)
    assert.match(r.stderr, /already exists and goes via 10\.10\.2\.2 dev rY; delete it first, or pass --replace/)

    const ping = () => sh('ip', ['netns', 'exec', R, 'ping', '-c', '3', '-i', '0.2', '-W', '1', '-I', '10.77.0.1', '198.51.100.7'])
    let x0 = rxPackets(X, 'up0')
    let y0 = rxPackets(Y, 'up0')
    ping()
    assert.ok(rxPackets(X, 'up0') - x0 >= 3 && rxPackets(Y, 'up0') - y0 < 3, 'without the rule the main table sends it to X')

    r = nk('rule', 'add', '--from', '10.77.0.1/32', '--table', 'viay', '--netns', R)
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(
      ipj(R, ['rule', 'show'])
        .filter((x: any) => x.protocol === 'netkit')
        .map((x: any) => [x.priority, x.src, x.table]),
      [[1000, '10.77.0.1', 'viay']],
    )
    assert.match(nk('rule', 'add', '--from', '10.77.0.1/32', '--table', 'viay', '--netns', R).stdout, /already exists; nothing to do/)
    x0 = rxPackets(X, 'up0')
    y0 = rxPackets(Y, 'up0')
    ping()
    assert.ok(rxPackets(Y, 'up0') - y0 >= 3, 'with the rule the ping leaves by rY')
    assert.ok(rxPackets(X, 'up0') - x0 < 3, 'and not by rX')

    const routes = nk('route', 'list', '--table', 'all', '--owned', '--json', '--netns', R).json.result
    assert.deepEqual(routes.map((x: any) => [x.dst, x.table, x.tableName]).sort(), [
      ['198.51.100.7/32', 142, 'viay'],
      ['198.51.100.7/32', 254, 'main'],
    ])
    assert.equal(nk('rule', 'del', '--from', '10.77.0.1/32', '--table', 'viay', '--netns', R).code, 0)
    assert.equal(nk('route', 'del', '198.51.100.7/32', '--table', 'viay', '--netns', R).code, 0)
    assert.deepEqual(
      ipj(R, ['rule', 'show']).filter((x: any) => x.protocol === 'netkit'),
      [],
    )

    // A /0 is the default route (and "from all" for a rule), as the kernel shows them: a re-run is a no-op, del finds it.
    sh('ip', ['-n', R, '-6', 'addr', 'add', 'fd00:77::1/64', 'dev', 'rX', 'nodad'])
    for (const [dest, via] of [
      ['0.0.0.0/0', '10.10.1.2'],
      ['::/0', 'fd00:77::2'],
    ]) {
      assert.equal(nk('route', 'add', dest, '--via', via, '--table', 'viay', '--netns', R).code, 0)
      assert.match(nk('route', 'add', dest, '--via', via, '--table', 'viay', '--netns', R).stdout, /already .*nothing to do/)
    }
    assert.deepEqual(
      nk('route', 'list', '--table', 'viay', '--json', '--netns', R)
        .json.result.map((x: any) => [x.dst, x.family, x.via])
        .sort(),
      [
        ['default', 4, '10.10.1.2'],
        ['default', 6, 'fd00:77::2'],
      ],
    )
    assert.equal(nk('route', 'del', '::/0', '--table', 'viay', '--netns', R).code, 0)
    assert.deepEqual(
      nk('route', 'list', '--table', 'viay', '--json', '--netns', R).json.result.map((x: any) => [x.dst, x.family]),
      [['default', 4]],
      'only the IPv6 default went',
    )
    assert.equal(nk('route', 'del', '0.0.0.0/0', '--table', 'viay', '--netns', R).code, 0)
    assert.deepEqual(nk('route', 'list', '--table', 'viay', '--json', '--netns', R).json.result, [])
    assert.equal(nk('rule', 'add', '--from', '0.0.0.0/0', '--table', 'viay', '--priority', '3000', '--netns', R).code, 0)
    assert.match(nk('rule', 'add', '--from', '0.0.0.0/0', '--table', 'viay', '--priority', '3000', '--netns', R).stdout, /already exists; nothing to do/)
    assert.equal(nk('rule', 'del', '--from', '0.0.0.0/0', '--table', 'viay', '--priority', '3000', '--netns', R).code, 0)
    assert.deepEqual(
      ipj(R, ['rule', 'show']).filter((x: any) => x.protocol === 'netkit'),
      [],
    )

    sh('ip', ['-n', R, 'route', 'add', '203.0.113.0/24', 'via', '10.10.1.2'])
    r = nk('route', 'del', '203.0.113.0/24', '--netns', R)
    assert.equal(r.code, 2)
    assert.match(r.stderr, /was not made by netkit \(protocol boot\)/)
    r = nk('route', 'add', '203.0.113.0/24', '--via', '10.10.2.2', '--replace', '--netns', R)
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /^error: route 203\.0\.113\.0\/24 exists and was not made by netkit \(protocol boot\): --replace changes only netkit's routes/)
    assert.equal(ipj(R, ['route', 'show', '203.0.113.0/24'])[0].gateway, '10.10.1.2', 'the foreign route is untouched')
    assert.equal(nk('table', 'del', 'viay').code, 0)
    assert.doesNotMatch(readFileSync(tfile, 'utf8'), /viay/)
  })

  it('xfrm: policies made, read back, idempotent, foreign ones left; an SA on a kernel without ESP fails cleanly and leaks no key', () => {
    const N = makeNs('xf')
    const pol = [
      'xfrm',
      'policy',
      'add',
      '--src',
      '10.1.0.0/24',
      '--dst',
      '10.2.0.0/24',
      '--dir',
      'out',
      '--tmpl-src',
      '192.0.2.1',
      '--tmpl-dst',
      '192.0.2.2',
      '--reqid',
      '7',
      '--mark',
      '0x5/0xff',
      '--netns',
      N,
    ]
    let r = nk(...pol)
    assert.equal(r.code, 0, r.stderr)
    const text = sh('ip', ['-n', N, 'xfrm', 'policy', 'list'])
    assert.match(
      text,
      /src 10\.1\.0\.0\/24 dst 10\.2\.0\.0\/24 \n\tdir out priority 1780 ptype main \n\tmark 0x5\/0xff \n\ttmpl src 192\.0\.2\.1 dst 192\.0\.2\.2\n\t\tproto esp reqid 7 mode tunnel/,
    )
    assert.match(nk(...pol).stdout, /already exists; nothing to do/)
    const list = nk('xfrm', 'policy', 'list', '--json', '--netns', N).json.result
    assert.deepEqual(list, [
      {
        src: '10.1.0.0/24',
        dst: '10.2.0.0/24',
        dir: 'out',
        priority: 1780,
        action: 'allow',
        ptype: 'main',
        mark: '0x5/0xff',
        tmpls: [{src: '192.0.2.1', dst: '192.0.2.2', proto: 'esp', reqid: 7, mode: 'tunnel'}],
        owned: true,
      },
    ])
    r = nk('xfrm', 'policy', 'add', '--src', '10.1.0.0/24', '--dst', '10.2.0.0/24', '--dir', 'out', '--mark', '0x5/0xff', '--action', 'block', '--netns', N)
    assert.equal(r.code, 1)
    assert.match(r.stderr, /already exists .*pass --replace/)
    sh('ip', ['-n', N, 'xfrm', 'policy', 'add', 'src', '10.3.0.0/24', 'dst', '10.4.0.0/24', 'dir', 'in'])
    r = nk('xfrm', 'policy', 'del', '--src', '10.3.0.0/24', '--dst', '10.4.0.0/24', '--dir', 'in', '--netns', N)
    assert.equal(r.code, 2)
    assert.match(sh('ip', ['-n', N, 'xfrm', 'policy', 'list']), /10\.3\.0\.0\/24/, 'the foreign policy stays')
    assert.equal(nk('xfrm', 'policy', 'del', '--src', '10.1.0.0/24', '--dst', '10.2.0.0/24', '--dir', 'out', '--mark', '0x5/0xff', '--netns', N).code, 0)

    const key = join(scratch, 'sa.hex')
    const hexKey = 'a1'.repeat(36)
    writeFileSync(key, `0x${hexKey}\n`, {mode: 0o600})
    const before = dump(N)
    for (const extra of [[], ['--verbose'], ['--json'], ['--dry-run']]) {
      r = nk(
        'xfrm',
        'state',
        'add',
        '--src',
        '192.0.2.1',
        '--dst',
        '192.0.2.2',
        '--spi',
        '0x1000',
        '--aead',
        'rfc4106(gcm(aes))',
        '--aead-key-file',
        key,
        '--icv',
        '128',
        '--reqid',
        '7',
        '--netns',
        N,
        ...extra,
      )
      assert.ok(!(r.stdout + r.stderr).includes(hexKey), `the key is not shown (${extra.join(' ')})`)
      if (extra[0] === '--dry-run') continue
      assert.equal(r.code, 1, r.stderr)
      assert.match(r.stderr + r.stdout, /no ESP support \(CONFIG_INET_ESP\)[\s\S]*kernel-libipsec/)
    }
    assert.equal(dump(N), before, 'nothing left behind')
    assert.deepEqual(nk('xfrm', 'state', 'list', '--owned', '--json', '--netns', N).json.result, [])
  })

  it('--dry-run on every mutating primitive prints the commands and changes nothing', () => {
    const N = makeNs('dry')
    sh('ip', ['-n', N, 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1'])
    const before = dump(N)
    const fwd = sh('ip', ['netns', 'exec', N, 'sysctl', '-n', 'net.ipv4.ip_forward'])
    const cases: [string[], RegExp][] = [
      [['link', 'add', 'br9', '--type', 'bridge'], /link add br9 type bridge/],
      [['link', 'set', 'd0', '--mtu', '1400', '--up', '--force'], /link set d0 mtu 1400 up/], // d0 is not netkit's (made by ip above)
      [['bridge', 'add', 'br9'], /link add br9 type bridge/],
      [['addr', 'add', 'd0', '10.8.0.1/24'], /addr add 10\.8\.0\.1\/24 dev d0/],
      [['route', 'add', '10.7.0.0/24', '--dev', 'd0'], /route add 10\.7\.0\.0\/24 dev d0 proto 178 table 254/],
      [['rule', 'add', '--from', '10.8.0.0/24', '--table', '100'], /rule add from 10\.8\.0\.0\/24 table 100 priority 1000 protocol 178/],
      [['proxyarp', 'add', '10.8.0.50', '--dev', 'd0'], /neigh add proxy 10\.8\.0\.50 dev d0 protocol 178/],
      [['proxyarp', 'enable', 'd0'], /sysctl -q -w net\/ipv4\/conf\/d0\/proxy_arp=1/],
      [['sysctl', 'set', 'ip_forward', '1'], /sysctl -q -w net\/ipv4\/ip_forward=1/],
      [
        ['xfrm', 'policy', 'add', '--src', '10.8.0.0/24', '--dst', '10.9.0.0/24', '--dir', 'out'],
        /xfrm policy add src 10\.8\.0\.0\/24 dst 10\.9\.0\.0\/24 dir out/,
      ],
    ]
    for (const [args, re] of cases) {
      const r = nk(...args, '--netns', N, '--dry-run')
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stdout, re, args.join(' '))
      assert.doesNotMatch(r.stdout, /^\[#\]/m, 'printed, not run')
    }
    assert.equal(dump(N), before, 'nothing changed')
    assert.equal(sh('ip', ['netns', 'exec', N, 'sysctl', '-n', 'net.ipv4.ip_forward']), fwd)
    assert.deepEqual(nk('sysctl', 'list', '--json', '--netns', N).json.result, [], 'no ledger entry from a dry run')
  })

  it('bad input exits 2 with one line, and changes nothing', () => {
    const N = makeNs('bad')
    sh('ip', ['-n', N, 'link', 'add', 'e0', 'type', 'veth', 'peer', 'name', 'e1'])
    const weak = join(scratch, 'weak.hex')
    writeFileSync(weak, `0x${'b2'.repeat(36)}\n`, {mode: 0o644})
    const short = join(scratch, 'short.hex')
    writeFileSync(short, '0xabcd\n', {mode: 0o600})
    const empty = join(scratch, 'empty.hex')
    writeFileSync(empty, '', {mode: 0o600})
    const sa = ['xfrm', 'state', 'add', '--src', '192.0.2.1', '--dst', '192.0.2.2', '--aead', 'rfc4106(gcm(aes))']
    const cases: string[][] = [
      ['link', 'add', 'a-name-of-16-chr', '--type', 'bridge'],
      ['link', 'add', 'a/b', '--type', 'bridge'],
      ['link', 'add', 'a b', '--type', 'bridge'],
      ['link', 'add', 'x;rm', '--type', 'bridge'],
      ['link', 'add', '$(id)', '--type', 'bridge'],
      ['link', 'add', 'vx1', '--type', 'vxlan', '--vni', '0', '--remote', '192.0.2.2', '--dev', 'e0'],
      ['link', 'add', 'vx1', '--type', 'vxlan', '--vni', '16777216', '--remote', '192.0.2.2', '--dev', 'e0'],
      ['link', 'add', 'vx1', '--type', 'vxlan', '--vni', '5', '--remote', '192.0.2.2', '--dev', 'nope0'],
      ['link', 'add', 'mv1', '--type', 'macvlan', '--parent', 'nope0'],
      ['link', 'set', 'e0', '--mtu', '70000'],
      ['link', 'set', 'nope0', '--up'],
      ['addr', 'add', 'e0', '10.0.0.300/24'],
      ['addr', 'add', 'nope0', '10.0.0.1/24'],
      ['addr', 'add', 'e0', '0.0.0.0/0'],
      ['addr', 'add', 'e0', '10.0.0.1/0'],
      ['addr', 'add', 'e0', '224.0.0.1/24'],
      ['addr', 'add', 'e0', '::/64'],
      ['route', 'add', '10.1.0.1/24', '--dev', 'e0'],
      ['route', 'add', '300.1.1.0/24', '--dev', 'e0'],
      ['route', 'add', '10.1.0.0/24', '--dev', 'e0', '--table', 'no-such-table'],
      ['route', 'add', '10.1.0.0/24', '--dev', 'nope0'],
      ['route', 'add', '10.1.0.0/24', '--dev', 'e0', '--metric', '-1'],
      ['rule', 'add', '--from', '10.1.0.0/24', '--table', '100', '--priority', '4294967296'],
      ['rule', 'add', '--fwmark', '0x1ffffffff', '--table', '100'],
      ['rule', 'add', '--from', '10.1.0.1/24', '--table', '100'],
      ['sysctl', 'set', 'no_such_thing', '1'],
      ['sysctl', 'set', 'rp_filter.e0', '3'],
      ['xfrm', 'policy', 'add', '--src', '10.1.0.0/24', '--dst', '10.2.0.0/24', '--dir', 'sideways'],
      ['xfrm', 'policy', 'add', '--src', '10.1.0.0/24', '--dst', '10.2.0.0/24', '--dir', 'out', '--priority', '4294967296'],
      ['xfrm', 'policy', 'add', '--src', '10.1.0.0/24', '--dst', '10.2.0.0/24', '--dir', 'out', '--mark', '4294967296'],
      [...sa, '--spi', '0x1', '--aead-key-file', short],
      [...sa, '--spi', '0x1ffffffff', '--aead-key-file', short],
      [...sa, '--spi', '0x1000', '--aead-key-file', weak],
      [...sa, '--spi', '0x1000', '--aead-key-file', short],
      [...sa, '--spi', '0x1000', '--aead-key-file', empty],
      [...sa, '--spi', '0x1000', '--aead-key-file', '/nonexistent/key'],
      ['ns', 'list', '--netns', 'nkt-no-such-ns'],
    ]
    const before = dump(N)
    for (const c of cases) {
      const r = nk(...c, ...(c.includes('--netns') ? [] : ['--netns', N]))
      assert.equal(r.code, 2, `${c.join(' ')}: ${r.stderr}`)
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${c.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, /^error: /)
      assert.ok(!r.stderr.includes('b2b2b2'), 'no key in the message')
    }
    assert.equal(dump(N), before, 'nothing changed')
  })
})
