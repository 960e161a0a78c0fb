import assert from 'node:assert/strict'
import {before, describe, it} from 'node:test'

import {sh, skipUnlessRoot} from '../helpers/hosts.js'
import {innerNs} from '../helpers/inner.js'
import type {SimHost} from '../helpers/realhost.js'
import {type TwoHosts, twoHosts} from '../helpers/topology.js'

/** The findings of a doctor run that are not ok or skip. */
function problems(json: any): string[] {
  return json.result.checks
    .filter((c: any) => c.result === 'fail' || c.result === 'warn')
    .map((c: any) => `${c.result} ${c.id}${c.subject ? ` ${c.subject}` : ''}`)
}

describe('netkit doctor (integration)', {skip: skipUnlessRoot}, () => {
  // A and B are simulated hosts (test/helpers/realhost.ts): netkit runs in them with its defaults.
  let w: TwoHosts
  const doctor = (...args: string[]) => w.hA.cli(['doctor', '--json', ...args])
  const sysctl = (ns: string, kv: string) => sh('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', kv])

  before(() => {
    w = twoHosts('dr')
    // A clean host: redirects off everywhere that matters.
    for (const ns of [w.A, w.B]) {
      for (const conf of ['all', 'default', 'u0']) {
        sysctl(ns, `net.ipv4.conf.${conf}.send_redirects=0`)
        sysctl(ns, `net.ipv4.conf.${conf}.accept_redirects=0`)
      }
    }
    const add = (h: SimHost, remote: string, addr: string, peer: string, rs: string, ls: string) =>
      h.cli([
        'tunnel',
        'add',
        'ov',
        '--type',
        'vxlan',
        '--remote',
        remote,
        '--vni',
        '7',
        '--address',
        addr,
        '--peer-address',
        peer,
        '--local-subnet',
        ls,
        '--remote-subnet',
        rs,
      ])
    for (const r of [
      add(w.hA, '192.0.2.2', '10.9.0.1/24', '10.9.0.2', '10.2.0.0/24', '10.1.0.0/24'),
      add(w.hB, '192.0.2.1', '10.9.0.2/24', '10.9.0.1', '10.1.0.0/24', '10.2.0.0/24'),
    ])
      assert.equal(r.code, 0, r.stderr)
    for (const conf of ['vx-ov']) {
      sysctl(w.A, `net.ipv4.conf.${conf}.send_redirects=0`)
      sysctl(w.A, `net.ipv4.conf.${conf}.accept_redirects=0`)
    }
  })

  it('passes on a healthy host', () => {
    const r = doctor()
    assert.deepEqual(problems(r.json), [])
    assert.equal(r.code, 0, r.stderr)
  })

  it('forwarding off: only host.forwarding fails, with the fix; --fix --yes repairs it', () => {
    sysctl(w.A, 'net.ipv4.ip_forward=0')
    const r = doctor()
    assert.equal(r.code, 1)
    // Turning forwarding off makes the kernel accept redirects again (all.accept_redirects=1), and
    // turning it on again turns them off: one problem, one fix.
    assert.deepEqual(problems(r.json), ['fail host.forwarding IPv4'])
    const f = r.json.result.checks.find((c: any) => c.id === 'host.forwarding' && c.result === 'fail')
    assert.equal(f.fix, 'netkit sysctl set ip_forward 1', 'the fix acts where the check looked: the host itself')
    assert.equal(f.evidence['net.ipv4.ip_forward'], '0')
    const fixed = doctor('--fix', '--yes')
    assert.equal(fixed.code, 0, fixed.stdout)
    assert.deepEqual(problems(fixed.json), [])
    assert.equal(sh('ip', ['netns', 'exec', w.A, 'sysctl', '-n', 'net.ipv4.ip_forward']).trim(), '1')
    const recorded = w.hA.cli(['sysctl', 'list', '--json']).json.result.find((x: any) => x.key === 'net.ipv4.ip_forward')
    assert.equal(recorded?.original, '0', 'the fix is recorded: "netkit sysctl restore" can put it back')
  })

  it('redirects: a forwarding host that accepts them fails host.redirects with the fix; sending them is no matter for a tunnel with its own device', () => {
    sysctl(w.A, 'net.ipv4.conf.all.accept_redirects=1')
    const r = doctor('--check', 'host.redirects')
    assert.deepEqual(problems(r.json), ['fail host.redirects accept_redirects (all)'])
    assert.equal(r.json.result.checks[0].fix, 'netkit sysctl set accept_redirects.all 0')
    sysctl(w.A, 'net.ipv4.conf.all.accept_redirects=0')
    // The VXLAN tunnel forwards between c0 and vx-ov, never out of the interface a packet came in on: no redirect to send.
    sysctl(w.A, 'net.ipv4.conf.u0.send_redirects=1')
    assert.deepEqual(problems(doctor('--check', 'host.redirects').json), [])
    sysctl(w.A, 'net.ipv4.conf.u0.send_redirects=0')
  })

  it('strict rp_filter on all: fails once, naming the tunnel interfaces (the kernel takes the larger value)', () => {
    sysctl(w.A, 'net.ipv4.conf.all.rp_filter=1')
    const r = doctor('--check', 'host.rp_filter')
    assert.deepEqual(problems(r.json).sort(), ['fail host.rp_filter all'])
    const f = r.json.result.checks.find((c: any) => c.result === 'fail')
    assert.equal(f.fix, 'netkit sysctl set rp_filter.all 2')
    assert.match(f.reason, /on vx-ov, u0$/)
    sysctl(w.A, 'net.ipv4.conf.all.rp_filter=0')
  })

  it('a tunnel MTU above what the underlay allows fails paths.mtu', () => {
    // The underlay shrinks under a tunnel made for 1500.
    sh('ip', ['-n', w.A, 'link', 'set', 'u0', 'mtu', '1400'])
    const r = doctor('--check', 'paths.mtu')
    sh('ip', ['-n', w.A, 'link', 'set', 'u0', 'mtu', '1500'])
    assert.deepEqual(problems(r.json), ['fail paths.mtu ov'])
    assert.match(r.json.result.checks[0].fix, /--mtu 1350/)
    assert.deepEqual(problems(doctor('--check', 'paths.mtu').json), [])
  })

  it('an underlay link set down fails paths.underlay at once (not only when a handshake or DPD times out)', () => {
    sh('ip', ['-n', w.A, 'link', 'set', 'u0', 'down'])
    const r = doctor('--check', 'paths.underlay')
    sh('ip', ['-n', w.A, 'link', 'set', 'u0', 'up'])
    assert.equal(r.code, 1)
    assert.deepEqual(problems(r.json), ['fail paths.underlay ov'])
    assert.match(r.json.result.checks[0].reason, /no route to the peer 192\.0\.2\.2 over a link that is up/)
    // The kernel reports the link up (operstate) up to a second after "link set up" (linkwatch): as an operator would, wait for it.
    const deadline = Date.now() + 5000
    while (JSON.parse(sh('ip', ['-n', w.A, '-j', 'link', 'show', 'u0']))[0].operstate !== 'UP' && Date.now() < deadline) sh('sleep', ['0.1'])
    assert.deepEqual(problems(doctor('--check', 'paths.underlay').json), [])
  })

  it('a route that bypasses the tunnel fails paths.routes', () => {
    sh('ip', ['-n', w.A, 'route', 'add', '10.2.0.0/25', 'via', '192.0.2.2'])
    const r = doctor('--check', 'paths.routes')
    assert.equal(r.code, 1)
    assert.deepEqual(problems(r.json), ['fail paths.routes ov 10.2.0.0/24'])
    sh('ip', ['-n', w.A, 'route', 'del', '10.2.0.0/25'])
  })

  it('a leftover tunnel link netkit owns is reported, and --fix removes it', () => {
    sh('ip', ['-n', w.A, 'link', 'add', 'vx-gone', 'type', 'vxlan', 'id', '9', 'remote', '192.0.2.2', 'dstport', '4789', 'dev', 'u0'])
    sh('ip', ['-n', w.A, 'link', 'set', 'vx-gone', 'alias', 'netkit'])
    const r = doctor('--check', 'leftovers.tunnel-objects')
    assert.deepEqual(problems(r.json), ['warn leftovers.tunnel-objects vx-gone'])
    assert.equal(doctor('--check', 'leftovers.tunnel-objects', '--strict').code, 1, '--strict fails on warnings')
    const fixed = doctor('--check', 'leftovers.tunnel-objects', '--fix', '--yes')
    assert.deepEqual(problems(fixed.json), [])
    assert.equal(
      JSON.parse(sh('ip', ['-n', w.A, '-j', 'link', 'show'])).some((l: any) => l.ifname === 'vx-gone'),
      false,
    )
  })

  it('bad usage exits 2', () => {
    assert.equal(doctor('--check', 'no.such.check').code, 2)
    assert.equal(doctor('--tunnel', 'nope').code, 2)
    const noTty = w.hA.cli(['doctor', '--fix'])
    assert.ok(noTty.code === 2 || noTty.code === 0, 'without a TTY --fix asks for --yes (or has nothing to fix)')
  })

  it('a namespace the host manages (--netns): the fix names it, and --fix repairs it, not the host', () => {
    const X = innerNs(w.hA, 'drx')
    w.hA.sh('ip', ['link', 'add', 'xu0', 'type', 'veth', 'peer', 'name', 'u0', 'netns', X])
    w.hA.sh('ip', ['link', 'set', 'xu0', 'up'])
    w.hA.sh('ip', ['-n', X, 'addr', 'add', '192.0.2.1/24', 'dev', 'u0'])
    w.hA.sh('ip', ['-n', X, 'link', 'set', 'u0', 'up'])
    const t = w.hA.cli([
      'tunnel',
      'add',
      'ox',
      '--type',
      'vxlan',
      '--remote',
      '192.0.2.2',
      '--vni',
      '8',
      '--address',
      '10.8.0.1/24',
      '--peer-address',
      '10.8.0.2',
      '--remote-subnet',
      '10.2.0.0/24',
      '--netns',
      X,
    ])
    assert.equal(t.code, 0, t.stderr)
    w.hA.sh('ip', ['netns', 'exec', X, 'sysctl', '-qw', 'net.ipv4.ip_forward=0'])
    sysctl(w.A, 'net.ipv4.ip_forward=0')
    try {
      const r = w.hA.cli(['doctor', '--netns', X, '--json', '--check', 'host.forwarding'])
      assert.equal(r.code, 1, r.stderr)
      const f = r.json.result.checks.find((c: any) => c.id === 'host.forwarding' && c.result === 'fail')
      assert.equal(f?.fix, `netkit sysctl set ip_forward 1 --netns ${X}`, 'the fix names the namespace it is for')
      const fixed = w.hA.cli(['doctor', '--netns', X, '--json', '--check', 'host.forwarding', '--fix', '--yes'])
      assert.equal(fixed.code, 0, fixed.stdout + fixed.stderr)
      assert.equal(w.hA.sh('ip', ['netns', 'exec', X, 'sysctl', '-n', 'net.ipv4.ip_forward']).trim(), '1', 'the namespace is repaired')
      assert.equal(sh('ip', ['netns', 'exec', w.A, 'sysctl', '-n', 'net.ipv4.ip_forward']).trim(), '0', 'the host itself is not touched')
    } finally {
      sysctl(w.A, 'net.ipv4.ip_forward=1')
      assert.equal(w.hA.cli(['tunnel', 'del', 'ox', '--netns', X]).code, 0)
    }
  })
})
