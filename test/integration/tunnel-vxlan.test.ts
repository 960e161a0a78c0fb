import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {dump, ipj, skipUnlessRoot} from '../helpers/hosts.js'
import {dumpIn, innerNs} from '../helpers/inner.js'
import type {SimHost} from '../helpers/realhost.js'
import {pingUntil, twoHosts} from '../helpers/topology.js'

describe('netkit tunnel --type vxlan (integration)', {skip: skipUnlessRoot}, () => {
  // A and B are simulated hosts (test/helpers/realhost.ts): netkit runs in them with its defaults.
  it('joins two sites, is idempotent, shows up in list and show, and del removes all of it', async () => {
    const {A, B, CA, hA, hB} = twoHosts('vx')
    const add = (h: SimHost, remote: string, addr: string, peer: string, remoteSubnet: string, localSubnet: string) =>
      h.cli([
        'tunnel',
        'add',
        'ov',
        '--type',
        'vxlan',
        '--remote',
        remote,
        '--vni',
        '42',
        '--address',
        addr,
        '--peer-address',
        peer,
        '--local-subnet',
        localSubnet,
        '--remote-subnet',
        remoteSubnet,
      ])

    const a = add(hA, '192.0.2.2', '10.9.0.1/24', '10.9.0.2', '10.2.0.0/24', '10.1.0.0/24')
    assert.equal(a.code, 0, a.stderr)
    assert.match(a.stderr, /warning: VXLAN does not encrypt/)
    const b = add(hB, '192.0.2.1', '10.9.0.2/24', '10.9.0.1', '10.1.0.0/24', '10.2.0.0/24')
    assert.equal(b.code, 0, b.stderr)
    // Scripts get the warning too: in the envelope, not only on stderr.
    const quiet = hB.cli([
      'tunnel',
      'add',
      'ov',
      '--type',
      'vxlan',
      '--remote',
      '192.0.2.1',
      '--vni',
      '42',
      '--address',
      '10.9.0.2/24',
      '--peer-address',
      '10.9.0.1',
      '--local-subnet',
      '10.2.0.0/24',
      '--remote-subnet',
      '10.1.0.0/24',
      '--json',
    ])
    assert.equal(quiet.code, 0, quiet.stderr)
    assert.equal(quiet.stderr, '', 'nothing on stderr with --json')
    assert.match(quiet.json.warnings.join('\n'), /^VXLAN does not encrypt/)

    assert.ok(await pingUntil(CA, '10.2.0.2'), 'container A reaches container B through the tunnel')

    const link = ipj(A, ['-d', 'link', 'show', 'vx-ov'])[0]
    assert.equal(link.linkinfo.info_kind, 'vxlan')
    assert.equal(link.linkinfo.info_data.id, 42)
    assert.equal(link.ifalias, 'netkit')
    const routes = ipj(A, ['route', 'show', '10.2.0.0/24'])
    assert.equal(routes[0]?.dev, 'vx-ov')

    const again = add(hA, '192.0.2.2', '10.9.0.1/24', '10.9.0.2', '10.2.0.0/24', '10.1.0.0/24')
    assert.equal(again.code, 0)
    assert.match(again.stdout, /already set up.*nothing to do/)

    const conflict = hA.cli(['tunnel', 'add', 'ov', '--type', 'vxlan', '--remote', '192.0.2.2', '--vni', '43'])
    assert.equal(conflict.code, 1)
    assert.match(conflict.stderr, /different definition \(.*vxlan\.vni.*\)/)
    const dryReplace = hA.cli([
      'tunnel',
      'add',
      'ov',
      '--type',
      'vxlan',
      '--remote',
      '192.0.2.2',
      '--vni',
      '43',
      '--address',
      '10.9.0.1/24',
      '--peer-address',
      '10.9.0.2',
      '--local-subnet',
      '10.1.0.0/24',
      '--remote-subnet',
      '10.2.0.0/24',
      '--replace',
      '--dry-run',
    ])
    assert.equal(dryReplace.code, 0, dryReplace.stderr)
    assert.match(dryReplace.stdout, /link del vx-ov[\s\S]*link add vx-ov type vxlan id 43/)
    assert.equal(ipj(A, ['-d', 'link', 'show', 'vx-ov'])[0].linkinfo.info_data.id, 42, 'a dry run of --replace changes nothing')

    // A second tunnel to the same remote subnet would take its route (and its traffic): refused, nothing changed.
    const before = dump(A)
    const takeover = hA.cli([
      'tunnel',
      'add',
      'ov2',
      '--type',
      'vxlan',
      '--remote',
      '192.0.2.2',
      '--vni',
      '44',
      '--address',
      '10.10.0.1/24',
      '--peer-address',
      '10.10.0.2',
      '--remote-subnet',
      '10.2.0.0/24',
    ])
    assert.equal(takeover.code, 1, takeover.stderr)
    assert.match(takeover.stderr, /^error: route 10\.2\.0\.0\/24 already goes via 10\.9\.0\.2 dev vx-ov \(tunnel ov\): tunnel ov2 would take it over/m)
    assert.equal(dump(A), before)
    assert.equal(ipj(A, ['route', 'show', '10.2.0.0/24'])[0]?.dev, 'vx-ov')

    const list = hA.cli(['tunnel', 'list', '--json'])
    assert.deepEqual(
      list.json.result.map((r: any) => [r.name, r.type, r.state, r.datapath]),
      [['ov', 'vxlan', 'up', 'kernel']],
    )
    const show = hA.cli(['tunnel', 'show', 'ov', '--json'])
    assert.equal(show.json.result.status.details.vni, 42)

    for (const [ns, h] of [
      [A, hA],
      [B, hB],
    ] as const) {
      const del = h.cli(['tunnel', 'del', 'ov'])
      assert.equal(del.code, 0, del.stderr)
      assert.deepEqual(ipj(ns, ['link', 'show', 'type', 'vxlan']), [])
      assert.deepEqual(ipj(ns, ['route', 'show', 'proto', '178']), [])
      assert.deepEqual(h.cli(['tunnel', 'list', '--json']).json.result, [])
    }
    assert.equal(hA.cli(['tunnel', 'del', 'ov']).code, 0, 'del again is a no-op')
  })

  it('a foreign link with the tunnel device name is refused and left alone; everything done is undone (a namespace the host manages, --netns)', () => {
    const {hA} = twoHosts('vf')
    // X: a namespace inside host A, with its own underlay to the host.
    const X = innerNs(hA, 'vfx')
    hA.sh('ip', ['link', 'add', 'xu0', 'type', 'veth', 'peer', 'name', 'u0', 'netns', X])
    hA.sh('ip', ['link', 'set', 'xu0', 'up'])
    hA.sh('ip', ['-n', X, 'addr', 'add', '192.0.2.1/24', 'dev', 'u0'])
    hA.sh('ip', ['-n', X, 'link', 'set', 'u0', 'up'])
    hA.sh('ip', ['-n', X, 'link', 'add', 'vx-t1', 'type', 'bridge'])
    const before = dumpIn(hA, X)
    const beforeHost = dump(hA.ns)
    const fwd = hA.sh('ip', ['netns', 'exec', X, 'sysctl', '-n', 'net.ipv4.ip_forward'])
    const r = hA.cli([
      'tunnel',
      'add',
      't1',
      '--type',
      'vxlan',
      '--remote',
      '192.0.2.2',
      '--vni',
      '42',
      '--address',
      '10.9.0.1/24',
      '--peer-address',
      '10.9.0.2',
      '--remote-subnet',
      '10.2.0.0/24',
      '--netns',
      X,
    ])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /error: a link named vx-t1 already exists .*not netkit's/)
    assert.equal(dumpIn(hA, X), before, 'the namespace is as it was')
    assert.equal(dump(hA.ns), beforeHost, 'and so is the host')
    assert.equal(hA.sh('ip', ['netns', 'exec', X, 'sysctl', '-n', 'net.ipv4.ip_forward']), fwd, 'forwarding restored')
    assert.deepEqual(hA.cli(['tunnel', 'list', '--json', '--netns', X]).json.result, [])
  })

  it('rejects bad input with exit 2 and changes nothing', () => {
    const {A, hA} = twoHosts('vb')
    const before = dump(A)
    const bad = [
      ['tunnel', 'add', 'x', '--type', 'vxlan', '--remote', '192.0.2.300', '--vni', '1'],
      ['tunnel', 'add', 'x', '--type', 'vxlan', '--remote', '192.0.2.2', '--vni', '16777216'],
      ['tunnel', 'add', 'this-name-is-too-long', '--type', 'vxlan', '--remote', '192.0.2.2', '--vni', '1'],
      ['tunnel', 'add', 'x', '--type', 'vxlan', '--remote', '192.0.2.2', '--vni', '1', '--local', '192.0.2.1', '--dev', 'u0', '--remote-subnet', '10.2.0.1/24'],
      ['tunnel', 'add', 'x', '--type', 'wireguard', '--remote', '192.0.2.2', '--local', '192.0.2.1', '--peer-public-key', 'nope'],
      ['tunnel', 'add', 'x', '--type', 'ipsec', '--remote', '192.0.2.2', '--local', '192.0.2.1', '--psk-file', '/nonexistent/psk'],
    ]
    for (const args of bad) {
      const r = hA.cli(args)
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
    }
    assert.deepEqual(hA.cli(['tunnel', 'list', '--json']).json.result, [])
    assert.equal(dump(A), before)
  })
})
