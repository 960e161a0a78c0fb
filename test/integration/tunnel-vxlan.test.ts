import assert from 'node:assert/strict'
import {after, describe, it} from 'node:test'

import {cli} from '../helpers/cli.js'
import {dump, ipj, isolatedEnv, sh, skipUnlessRoot} from '../helpers/hosts.js'
import {pingUntil, twoSites} from '../helpers/topology.js'

describe('netkit tunnel --type vxlan (integration)', {skip: skipUnlessRoot}, () => {
  const iso = isolatedEnv()
  after(iso.cleanup)
  const env = iso.env

  it('joins two sites, is idempotent, shows up in list and show, and del removes all of it', async () => {
    const {A, B, CA} = twoSites('vx')
    const add = (ns: string, remote: string, addr: string, peer: string, remoteSubnet: string, localSubnet: string) =>
      cli(['tunnel', 'add', 'ov', '--type', 'vxlan', '--remote', remote, '--vni', '42', '--address', addr, '--peer-address', peer, '--local-subnet', localSubnet, '--remote-subnet', remoteSubnet, '--netns', ns], {env})

    const a = add(A, '192.0.2.2', '10.9.0.1/24', '10.9.0.2', '10.2.0.0/24', '10.1.0.0/24')
    assert.equal(a.code, 0, a.stderr)
    assert.match(a.stderr, /warning: VXLAN does not encrypt/)
    const b = add(B, '192.0.2.1', '10.9.0.2/24', '10.9.0.1', '10.1.0.0/24', '10.2.0.0/24')
    assert.equal(b.code, 0, b.stderr)

    assert.ok(await pingUntil(CA, '10.2.0.2'), 'container A reaches container B through the tunnel')

    const link = ipj(A, ['-d', 'link', 'show', 'vx-ov'])[0]
    assert.equal(link.linkinfo.info_kind, 'vxlan')
    assert.equal(link.linkinfo.info_data.id, 42)
    assert.equal(link.ifalias, 'netkit')
    const routes = ipj(A, ['route', 'show', '10.2.0.0/24'])
    assert.equal(routes[0]?.dev, 'vx-ov')

    const again = add(A, '192.0.2.2', '10.9.0.1/24', '10.9.0.2', '10.2.0.0/24', '10.1.0.0/24')
    assert.equal(again.code, 0)
    assert.match(again.stdout, /already set up.*nothing to do/)

    const conflict = cli(['tunnel', 'add', 'ov', '--type', 'vxlan', '--remote', '192.0.2.2', '--vni', '43', '--netns', A], {env})
    assert.equal(conflict.code, 1)
    assert.match(conflict.stderr, /different definition \(.*vxlan\.vni.*\)/)
    const dryReplace = cli(['tunnel', 'add', 'ov', '--type', 'vxlan', '--remote', '192.0.2.2', '--vni', '43', '--address', '10.9.0.1/24', '--peer-address', '10.9.0.2', '--local-subnet', '10.1.0.0/24', '--remote-subnet', '10.2.0.0/24', '--replace', '--dry-run', '--netns', A], {env})
    assert.equal(dryReplace.code, 0, dryReplace.stderr)
    assert.match(dryReplace.stdout, /link del vx-ov[\s\S]*link add vx-ov type vxlan id 43/)
    assert.equal(ipj(A, ['-d', 'link', 'show', 'vx-ov'])[0].linkinfo.info_data.id, 42, 'a dry run of --replace changes nothing')

    // A second tunnel to the same remote subnet would take its route (and its traffic): refused, nothing changed.
    const before = dump(A)
    const takeover = cli(['tunnel', 'add', 'ov2', '--type', 'vxlan', '--remote', '192.0.2.2', '--vni', '44', '--address', '10.10.0.1/24', '--peer-address', '10.10.0.2', '--remote-subnet', '10.2.0.0/24', '--netns', A], {env})
    assert.equal(takeover.code, 1, takeover.stderr)
    assert.match(takeover.stderr, /^error: route 10\.2\.0\.0\/24 already goes via 10\.9\.0\.2 dev vx-ov \(tunnel ov\): tunnel ov2 would take it over/m)
    assert.equal(dump(A), before)
    assert.equal(ipj(A, ['route', 'show', '10.2.0.0/24'])[0]?.dev, 'vx-ov')

    const list = cli(['tunnel', 'list', '--json', '--netns', A], {env})
    assert.deepEqual(list.json.result.map((r: any) => [r.name, r.type, r.state, r.datapath]), [['ov', 'vxlan', 'up', 'kernel']])
    const show = cli(['tunnel', 'show', 'ov', '--json', '--netns', A], {env})
    assert.equal(show.json.result.status.details.vni, 42)

    for (const ns of [A, B]) {
      const del = cli(['tunnel', 'del', 'ov', '--netns', ns], {env})
      assert.equal(del.code, 0, del.stderr)
      assert.deepEqual(ipj(ns, ['link', 'show', 'type', 'vxlan']), [])
      assert.deepEqual(ipj(ns, ['route', 'show', 'proto', '178']), [])
    }
    assert.deepEqual(cli(['tunnel', 'list', '--json'], {env}).json.result, [])
    assert.equal(cli(['tunnel', 'del', 'ov', '--netns', A], {env}).code, 0, 'del again is a no-op')
  })

  it('a foreign link with the tunnel device name is refused and left alone; everything done is undone', () => {
    const {A} = twoSites('vf')
    sh('ip', ['-n', A, 'link', 'add', 'vx-t1', 'type', 'bridge'])
    const before = dump(A)
    const fwd = sh('ip', ['netns', 'exec', A, 'sysctl', '-n', 'net.ipv4.ip_forward'])
    const r = cli(['tunnel', 'add', 't1', '--type', 'vxlan', '--remote', '192.0.2.2', '--vni', '42', '--address', '10.9.0.1/24', '--peer-address', '10.9.0.2', '--remote-subnet', '10.2.0.0/24', '--netns', A], {env})
    assert.equal(r.code, 1)
    assert.match(r.stderr, /error: a link named vx-t1 already exists .*not netkit's/)
    assert.equal(dump(A), before, 'the host is as it was')
    assert.equal(sh('ip', ['netns', 'exec', A, 'sysctl', '-n', 'net.ipv4.ip_forward']), fwd, 'forwarding restored')
    assert.deepEqual(cli(['tunnel', 'list', '--json', '--netns', A], {env}).json.result, [])
  })

  it('rejects bad input with exit 2 and changes nothing', () => {
    const bad = [
      ['tunnel', 'add', 'x', '--type', 'vxlan', '--remote', '192.0.2.300', '--vni', '1'],
      ['tunnel', 'add', 'x', '--type', 'vxlan', '--remote', '192.0.2.2', '--vni', '16777216'],
      ['tunnel', 'add', 'this-name-is-too-long', '--type', 'vxlan', '--remote', '192.0.2.2', '--vni', '1'],
      ['tunnel', 'add', 'x', '--type', 'vxlan', '--remote', '192.0.2.2', '--vni', '1', '--local', '192.0.2.1', '--dev', 'u0', '--remote-subnet', '10.2.0.1/24'],
      ['tunnel', 'add', 'x', '--type', 'wireguard', '--remote', '192.0.2.2', '--local', '192.0.2.1', '--peer-public-key', 'nope'],
      ['tunnel', 'add', 'x', '--type', 'ipsec', '--remote', '192.0.2.2', '--local', '192.0.2.1', '--psk-file', '/nonexistent/psk'],
    ]
    for (const args of bad) {
      const r = cli(args, {env})
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
    }
    assert.deepEqual(cli(['tunnel', 'list', '--json'], {env}).json.result, [])
  })
})
