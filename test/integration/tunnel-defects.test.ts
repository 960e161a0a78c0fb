/**
 * Tunnel defects of issue 14, each as a user meets it on a real host
 * (test/helpers/realhost.ts: netkit with its defaults, no NETKIT_* variables):
 * one IKE SA per pair of IPsec hosts, a second subnet pair between the same
 * hosts, a subnet another tunnel carries, the wizard's certificates after
 * del, and a wg failure that was ignored.
 */
import assert from 'node:assert/strict'
import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {dump, filesUnder, makeNs, sh, skipUnlessRoot} from '../helpers/hosts.js'
import type {SimHost} from '../helpers/realhost.js'
import {pingUntil, twoHosts} from '../helpers/topology.js'

const work = mkdtempSync(join(tmpdir(), 'netkit-defects-'))
const pskFile = join(work, 'site.psk')
writeFileSync(pskFile, 'correct horse battery staple 2026\n', {mode: 0o600})

/** A container behind a host on a subnet of its own: NET.1 on the host (dev DEV), NET.2 in the container. */
function container(host: string, dev: string, net: string): string {
  const ctr = makeNs('ct')
  sh('ip', ['-n', host, 'link', 'add', dev, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ctr])
  sh('ip', ['-n', host, 'addr', 'add', `${net}.1/24`, 'dev', dev])
  sh('ip', ['-n', host, 'link', 'set', dev, 'up'])
  sh('ip', ['-n', ctr, 'addr', 'add', `${net}.2/24`, 'dev', 'eth0'])
  sh('ip', ['-n', ctr, 'link', 'set', 'eth0', 'up'])
  sh('ip', ['-n', ctr, 'route', 'add', 'default', 'via', `${net}.1`])
  return ctr
}

const ipsecAdd = (h: SimHost, name: string, remote: string, local: string, remoteSubnet: string, extra: string[] = []) =>
  h.cli([
    'tunnel',
    'add',
    name,
    '--type',
    'ipsec',
    '--remote',
    remote,
    '--psk-file',
    pskFile,
    '--local-subnet',
    local,
    '--remote-subnet',
    remoteSubnet,
    '--timeout',
    '30',
    ...extra,
  ])

/** tunnel show --json's IKE SAs, as [state, [child state...]]. */
const sasOf = (h: SimHost, name: string) => {
  const r = h.cli(['tunnel', 'show', name, '--json'])
  assert.equal(r.code, 0, r.stderr)
  return (r.json.result.status.details.ikeSas as any[]).map((s) => [s.state, s.children.map((c: any) => c.state)])
}

/** What a host has left of netkit's IPsec: charon, its files, routes, rules, xfrm. */
function ipsecLeft(h: SimHost): Record<string, unknown> {
  return {
    processes: h.processes(),
    files: filesUnder(h.configDir),
    table220: h.ipj(['route', 'show', 'table', '220']),
    netkitRoutes: h.ipj(['-N', 'route', 'show', 'table', 'all', 'proto', '178']),
    rules: h.ipj(['rule', 'show']).filter((r: any) => !['local', 'main', 'default'].includes(r.table)),
    xfrm: h.sh('ip', ['xfrm', 'policy']) + h.sh('ip', ['xfrm', 'state']),
    tun: h.ipj(['link', 'show']).filter((l: any) => l.ifname === 'ipsec0'),
    daemons: filesUnder(join(h.stateDir, 'daemons')),
  }
}
const NOTHING = {processes: [], files: [], table220: [], netkitRoutes: [], rules: [], xfrm: '', tun: [], daemons: []}

describe('tunnel defects (issue 14) on real hosts', {skip: skipUnlessRoot}, () => {
  after(() => rmSync(work, {recursive: true, force: true}))

  it('IPsec: one IKE SA and one CHILD_SA per tunnel on each side, also after one end restarts; the doctor warns about a duplicate and its fix ends it', async () => {
    const {CA, hA, hB} = twoHosts('d1')
    const a = ipsecAdd(hA, 'site', '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait'])
    assert.equal(a.code, 0, a.stderr)
    const b = ipsecAdd(hB, 'site', '192.0.2.1', '10.2.0.0/24', '10.1.0.0/24')
    assert.equal(b.code, 0, b.stderr)
    assert.ok(await pingUntil(CA, '10.2.0.2'), 'traffic crosses')
    // Both ends used to start an SA: the second one appeared right after the first.
    await new Promise((r) => setTimeout(r, 3000))
    for (const h of [hA, hB]) assert.deepEqual(sasOf(h, 'site'), [['ESTABLISHED', ['INSTALLED']]], `one IKE SA with one CHILD_SA on ${h.ns}`)

    // B (the answering end) restarts: still one SA each, and traffic.
    assert.equal(hB.cli(['tunnel', 'down', 'site']).code, 0)
    const up = hB.cli(['tunnel', 'up', 'site', '--timeout', '30'])
    assert.equal(up.code, 0, up.stderr)
    assert.ok(await pingUntil(CA, '10.2.0.2'), 'traffic crosses after B restarted')
    await new Promise((r) => setTimeout(r, 2000))
    for (const h of [hA, hB]) assert.deepEqual(sasOf(h, 'site'), [['ESTABLISHED', ['INSTALLED']]], `one IKE SA after the restart on ${h.ns}`)
    for (const h of [hA, hB]) {
      const doc = h.cli(['doctor', '--json']).json.result.checks.filter((c: any) => c.id === 'ipsec.duplicates')
      assert.deepEqual(
        doc.map((c: any) => c.result),
        ['ok'],
      )
    }

    // Duplicates as a configuration from an older netkit made them (no uniqueness policy, both ends starting): loaded on
    // both hosts, and a second IKE SA started from B.
    const conf = '/etc/netkit/ipsec/swanctl/conf.d/site.conf'
    const uri = 'unix:///etc/netkit/ipsec/charon.vici'
    for (const h of [hA, hB]) {
      h.sh('sed', ['-i', 's/unique = replace/unique = never/', conf])
      h.sh('swanctl', ['--load-conns', '--file', '/etc/netkit/ipsec/swanctl/swanctl.conf', '--uri', uri])
    }
    hB.sh('swanctl', ['--initiate', '--ike', 'netkit-192_0_2_2-192_0_2_1', '--child', 'netkit-site', '--timeout', '10', '--uri', uri])
    // The doctor of each host warns, and its fix (on each, as it says) leaves one IKE SA.
    for (const h of [hB, hA]) {
      assert.equal(sasOf(h, 'site').length, 2, `a duplicate IKE SA on ${h.ns}`)
      const doctor = h.cli(['doctor', '--json'])
      assert.equal(doctor.code, 0, 'a duplicate is a warning, not a failure')
      const [dup] = doctor.json.result.checks.filter((c: any) => c.id === 'ipsec.duplicates')
      assert.equal(dup.result, 'warn')
      assert.match(dup.reason, /^2 IKE SAs with 192\.0\.2\.[12] for tunnel site, each with its CHILD_SAs: only one carries the traffic/)
      assert.equal(dup.fix, 'netkit tunnel down site && netkit tunnel up site')
    }
    for (const h of [hB, hA]) {
      for (const cmd of 'netkit tunnel down site && netkit tunnel up site'.split(' && ')) {
        const r = h.cli(cmd.split(' ').slice(1))
        assert.equal(r.code, 0, `${cmd}: ${r.stderr}`)
      }
    }
    assert.ok(await pingUntil(CA, '10.2.0.2'), 'traffic crosses after the fix')
    await new Promise((r) => setTimeout(r, 2000))
    for (const h of [hA, hB]) {
      assert.deepEqual(sasOf(h, 'site'), [['ESTABLISHED', ['INSTALLED']]], `the fix leaves one IKE SA on ${h.ns}`)
      assert.equal(h.cli(['doctor', '--json']).json.result.checks.find((c: any) => c.id === 'ipsec.duplicates').result, 'ok')
    }
    for (const h of [hA, hB]) assert.equal(h.cli(['tunnel', 'del', 'site']).code, 0)
  })

  it('IPsec: a second subnet pair between the same two hosts works by default; del of one leaves the other working, del of both leaves nothing', async () => {
    const {A, B, CA, hA, hB} = twoHosts('d2')
    const CA2 = container(A, 'c2', '10.1.9')
    container(B, 'c2', '10.2.9')
    assert.equal(ipsecAdd(hA, 'site', '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait']).code, 0)
    assert.equal(ipsecAdd(hB, 'site', '192.0.2.1', '10.2.0.0/24', '10.1.0.0/24').code, 0)
    const a2 = ipsecAdd(hA, 'site2', '192.0.2.2', '10.1.9.0/24', '10.2.9.0/24', ['--no-wait'])
    assert.equal(a2.code, 0, a2.stderr)
    const b2 = ipsecAdd(hB, 'site2', '192.0.2.1', '10.2.9.0/24', '10.1.9.0/24', ['--json'])
    assert.equal(b2.code, 0, b2.stderr)
    assert.equal(b2.json.result.state, 'up')
    assert.ok(await pingUntil(CA, '10.2.0.2'), 'the first pair carries traffic')
    assert.ok(await pingUntil(CA2, '10.2.9.2'), 'the second pair carries traffic')
    for (const h of [hA, hB]) {
      for (const t of ['site', 'site2'])
        assert.deepEqual(sasOf(h, t), [['ESTABLISHED', ['INSTALLED']]], `${t} on ${h.ns}: one IKE SA (shared), its own CHILD_SA`)
    }

    for (const h of [hA, hB]) assert.equal(h.cli(['tunnel', 'del', 'site2']).code, 0)
    assert.equal(hA.cli(['tunnel', 'show', 'site2']).code, 2, 'site2 is gone')
    assert.ok(await pingUntil(CA, '10.2.0.2'), 'site still carries traffic')
    for (const h of [hA, hB]) assert.deepEqual(sasOf(h, 'site'), [['ESTABLISHED', ['INSTALLED']]])
    assert.ok(!(await pingUntil(CA2, '10.2.9.2', 2)), 'the second pair no longer crosses')

    for (const h of [hA, hB]) {
      assert.equal(h.cli(['tunnel', 'del', 'site']).code, 0)
      assert.deepEqual(ipsecLeft(h), NOTHING, `nothing left on ${h.ns}`)
    }
  })

  it("a subnet an IPsec tunnel carries (charon's table 220, or no route yet) is refused to a WireGuard tunnel, and the other way round; nothing changes", async () => {
    const {A, CA, hA, hB} = twoHosts('d3')
    assert.equal(ipsecAdd(hA, 'hb', '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait']).code, 0)
    const key = sh('wg', ['pubkey'], sh('wg', ['genkey']))
    const wg = (name: string, subnet: string) =>
      hA.cli([
        'tunnel',
        'add',
        name,
        '--type',
        'wireguard',
        '--remote',
        '192.0.2.2',
        '--peer-public-key',
        key.trim(),
        '--listen-port',
        '51821',
        '--remote-subnet',
        subnet,
        '--no-wait',
      ])
    const refused = (r: {code: number; stderr: string}, re: RegExp) => {
      assert.equal(r.code, 1, r.stderr)
      assert.match(r.stderr, re)
      assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('error:')).length, 1)
    }
    const state = () => [dump(A), filesUnder(hA.configDir).sort().join(), hA.processes().join()]

    // No SA yet: only the guard route in main. The definition says who carries it.
    let before = state()
    refused(wg('wb2', '10.2.0.0/24'), /^error: tunnel hb \(ipsec\) already carries 10\.2\.0\.0\/24: tunnel wb2 would take it over/m)
    assert.deepEqual(state(), before, 'nothing changed')

    // With the SA up: charon routes 10.2.0.0/24 in table 220.
    assert.equal(ipsecAdd(hB, 'hb', '192.0.2.1', '10.2.0.0/24', '10.1.0.0/24').code, 0)
    assert.ok(await pingUntil(CA, '10.2.0.2'))
    assert.equal(hA.ipj(['route', 'show', 'table', '220'])[0]?.dst, '10.2.0.0/24')
    before = state()
    const r = wg('wb2', '10.2.0.0/24')
    refused(r, /^error: route 10\.2\.0\.0\/24 in table 220 already goes dev ipsec0 \(tunnel hb\): tunnel wb2 would take it over/m)
    assert.match(r.stderr, /remove tunnel hb first \("netkit tunnel del hb"\)/)
    assert.deepEqual(state(), before, 'nothing changed')
    const doctor = hA.cli(['doctor', '--json']).json.result.checks.filter((c: any) => c.id === 'paths.routes')
    assert.deepEqual(
      doctor.map((c: any) => c.result),
      ['ok'],
      'and the doctor is content',
    )

    // The other way round: a subnet a WireGuard tunnel carries is refused to an IPsec tunnel.
    assert.equal(wg('wb3', '10.2.7.0/24').code, 0)
    before = state()
    refused(
      ipsecAdd(hA, 'hb2', '192.0.2.2', '10.1.0.0/24', '10.2.7.0/24', ['--no-wait']),
      /^error: route 10\.2\.7\.0\/24 already goes dev wg-wb3 \(tunnel wb3\): tunnel hb2 would take it over/m,
    )
    assert.deepEqual(state(), before, 'nothing changed')
    for (const t of ['wb3', 'hb']) assert.equal(hA.cli(['tunnel', 'del', t]).code, 0)
    assert.equal(hB.cli(['tunnel', 'del', 'hb']).code, 0)
  })

  it('tunnel del removes the certificates the wizard made for that tunnel, and only those', () => {
    const {hA} = twoHosts('d4')
    const answers = join(work, 'mesh.yaml')
    writeFileSync(
      answers,
      'role: mesh\nlocal: 192.0.2.1\nlocalSubnets: [10.1.0.0/24]\npeers:\n  - {name: east, address: 192.0.2.2, subnets: [10.2.0.0/24]}\n  - {name: west, address: 192.0.2.3, subnets: [10.3.0.0/24]}\nauth: {method: x509-generate}\n',
    )
    const r = hA.cli(['wizard', '--answers', answers, '--json'])
    assert.equal(r.code, 0, r.stdout + r.stderr)
    const pki = () =>
      filesUnder(join(hA.configDir, 'pki'))
        .map((f) => f.slice(join(hA.configDir, 'pki').length + 1))
        .sort()
    assert.deepEqual(pki(), ['ca.crt', 'ca.key', 'east-peer.crt', 'east-peer.key', 'host.crt', 'host.key', 'west-peer.crt', 'west-peer.key'])
    // A key of the operator's own in the same scope is not netkit's to remove.
    const own = join(hA.configDir, 'mine.key')
    writeFileSync(own, "not netkit's\n", {mode: 0o600})
    assert.equal(hA.cli(['tunnel', 'del', 'east']).code, 0)
    assert.deepEqual(pki(), ['ca.crt', 'ca.key', 'host.crt', 'host.key', 'west-peer.crt', 'west-peer.key'], "east's are gone; what west still uses stays")
    assert.equal(hA.cli(['tunnel', 'del', 'west']).code, 0)
    assert.deepEqual(filesUnder(hA.configDir), [own], "with the last tunnel, the CA and this host's go too")
  })

  it('WireGuard: a failed "wg set ... persistent-keepalive 0" fails the add in wg\'s name, and the add is undone', () => {
    const {A, hA, hB} = twoHosts('d5')
    // A wg that cannot take the keepalive back (everything else it does as wg does).
    const bin = join(work, 'bin')
    sh('mkdir', ['-p', bin])
    writeFileSync(
      join(bin, 'wg'),
      '#!/bin/sh\ncase "$*" in *"persistent-keepalive 0"*) echo "Unable to modify interface: Resource temporarily unavailable" >&2; exit 1;; esac\nexec /usr/bin/wg "$@"\n',
    )
    chmodSync(join(bin, 'wg'), 0o755)
    const ka = hA.cli(['tunnel', 'pubkey', 'wk']).stdout.trim()
    const kb = hB.cli(['tunnel', 'pubkey', 'wk']).stdout.trim()
    const add = (h: SimHost, remote: string, key: string, address: string, extra: string[] = [], env?: Record<string, string>) =>
      h.cli(['tunnel', 'add', 'wk', '--type', 'wireguard', '--remote', remote, '--peer-public-key', key, '--address', address, '--timeout', '10', ...extra], {
        env,
      })
    assert.equal(add(hB, '192.0.2.1', ka, '10.99.0.2/24', ['--no-wait']).code, 0)
    const before = dump(A)
    const r = add(hA, '192.0.2.2', kb, '10.99.0.1/24', [], {PATH: `${bin}:${process.env.PATH}`})
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /^error: wg failed on WireGuard device wg-wk: Unable to modify interface/m)
    assert.doesNotMatch(r.stderr, /nsenter/)
    assert.equal(dump(A), before, 'the add is undone: no device, no address, no route')
    assert.deepEqual(hA.processes(), [], 'no wireguard-go left')
    assert.equal(hB.cli(['tunnel', 'del', 'wk']).code, 0)
  })
})
