import assert from 'node:assert/strict'
import {chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {makeNs, sh, skipUnlessRoot} from '../helpers/hosts.js'
import {innerNs} from '../helpers/inner.js'
import {bootHost, type SimHost} from '../helpers/realhost.js'
import {pingUntil, type TwoHosts, twoHosts} from '../helpers/topology.js'

/** The ids of the failed checks (and of warned ones with warn: true). */
function failed(r: {json?: any}, warn = false): string[] {
  return [...new Set<string>(r.json.result.checks.filter((c: any) => c.result === 'fail' || (warn && c.result === 'warn')).map((c: any) => c.id))].sort()
}

describe('netkit doctor: IPsec and WireGuard key state (integration)', {skip: skipUnlessRoot}, () => {
  // A and B are simulated hosts (test/helpers/realhost.ts): netkit runs in them with its defaults.
  // The PSK file lies outside /etc and /run, which the hosts see as the machine has them.
  const dir = mkdtempSync(join(tmpdir(), 'netkit-dk-'))
  const psk = join(dir, 'k.psk')
  let w: TwoHosts
  const doctor = (...args: string[]) => w.hA.cli(['doctor', '--json', ...args])

  before(() => {
    writeFileSync(psk, 'doctor test pre-shared key 0001\n', {mode: 0o600})
    w = twoHosts('dk')
    const ip = (h: SimHost, remote: string, l: string, r: string, extra: string[]) =>
      h.cli(['tunnel', 'add', 'site', '--type', 'ipsec', '--remote', remote, '--psk-file', psk, '--local-subnet', l, '--remote-subnet', r, ...extra])
    for (const r of [ip(w.hA, '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait']), ip(w.hB, '192.0.2.1', '10.2.0.0/24', '10.1.0.0/24', [])])
      assert.equal(r.code, 0, r.stderr)
    const ka = w.hA.cli(['tunnel', 'pubkey', 'ov']).stdout.trim()
    const kb = w.hB.cli(['tunnel', 'pubkey', 'ov']).stdout.trim()
    const wg = (h: SimHost, remote: string, key: string, addr: string, extra: string[]) =>
      h.cli(['tunnel', 'add', 'ov', '--type', 'wireguard', '--remote', remote, '--peer-public-key', key, '--address', addr, '--keepalive', '5', ...extra])
    for (const r of [wg(w.hA, '192.0.2.2', kb, '10.99.0.1/24', ['--no-wait']), wg(w.hB, '192.0.2.1', ka, '10.99.0.2/24', [])]) assert.equal(r.code, 0, r.stderr)
  })
  after(() => rmSync(dir, {recursive: true, force: true}))

  it('a healthy pair of tunnels has no IPsec or WireGuard finding', () => {
    const r = doctor()
    assert.equal(r.code, 0, JSON.stringify(failed(r)))
    const ids = r.json.result.checks.filter((c: any) => /^(ipsec|wireguard)\./.test(c.id) && c.result === 'ok').map((c: any) => c.id)
    for (const id of [
      'ipsec.charon',
      'ipsec.sa',
      'ipsec.selectors',
      'ipsec.algorithms',
      'ipsec.secrets',
      'ipsec.local-address',
      'wireguard.handshake',
      'wireguard.endpoint-route',
      'wireguard.allowed-ips',
      'wireguard.keys',
    ])
      assert.ok(ids.includes(id), `${id} ok`)
    const sa = r.json.result.checks.find((c: any) => c.id === 'ipsec.sa')
    assert.equal(sa.evidence.ikeSas[0].state, 'ESTABLISHED')
  })

  it('--probe proves the IPsec data path: ESP on the underlay, nothing in clear', () => {
    const r = doctor('--probe', '--tunnel', 'site')
    const p = r.json.result.checks.find((c: any) => c.id === 'paths.probe')
    assert.equal(p.result, 'ok', JSON.stringify(p))
    assert.ok(p.evidence.encapsulated > 0)
    assert.equal(p.evidence.inClear, 0)
    assert.equal(p.evidence.to, '10.2.0.1')
  })

  it('a secret file made readable by others fails ipsec.secrets only, and --fix repairs it', () => {
    const file = join(w.hA.configDir, 'secrets', 'site.psk')
    chmodSync(file, 0o644)
    const r = doctor()
    assert.equal(r.code, 1)
    assert.deepEqual(failed(r), ['ipsec.secrets'])
    const f = r.json.result.checks.find((c: any) => c.id === 'ipsec.secrets' && c.result === 'fail')
    assert.equal(f.fix, 'chmod 600 /etc/netkit/secrets/site.psk', 'the path as the host sees it')
    assert.ok(!JSON.stringify(r.json).includes('doctor test pre-shared'), 'no secret in the evidence')
    const fix = w.hA.cli(['doctor', '--fix', '--yes'])
    assert.equal(fix.code, 0, fix.stdout + fix.stderr)
    assert.equal(statSync(file).mode & 0o777, 0o600)
  })

  it('an endpoint routed into its own WireGuard tunnel fails wireguard.endpoint-route', () => {
    sh('ip', ['-n', w.A, 'route', 'add', '192.0.2.2/32', 'dev', 'wg-ov'])
    try {
      const r = doctor()
      assert.ok(failed(r).includes('wireguard.endpoint-route'), JSON.stringify(failed(r)))
      assert.ok(!failed(r).includes('paths.mtu'), 'the MTU check does not pile on')
    } finally {
      sh('ip', ['-n', w.A, 'route', 'del', '192.0.2.2/32', 'dev', 'wg-ov'])
    }
  })

  it('a WireGuard peer with a wrong key never completes a handshake: wireguard.handshake fails', () => {
    const stranger = w.hB.cli(['tunnel', 'pubkey', 'nobody']).stdout.trim()
    const add = w.hA.cli([
      'tunnel',
      'add',
      'wx',
      '--type',
      'wireguard',
      '--remote',
      '192.0.2.2',
      '--peer-public-key',
      stranger,
      '--address',
      '10.98.0.1/24',
      '--listen-port',
      '51900',
      '--no-wait',
    ])
    assert.equal(add.code, 0, add.stderr)
    try {
      const r = doctor('--tunnel', 'wx')
      assert.deepEqual(failed(r), ['wireguard.handshake'])
      assert.match(r.json.result.checks.find((c: any) => c.id === 'wireguard.handshake').reason, /never completed a handshake/)
    } finally {
      assert.equal(w.hA.cli(['tunnel', 'del', 'wx']).code, 0)
    }
  })

  it('a weak proposal (configured and negotiated) fails ipsec.algorithms only (two namespaces one host manages, --netns)', () => {
    // A pair of its own: two connections between the same two identities would be ambiguous for charon.
    // Both ends are namespaces inside one host (a charon for each, as netkit runs them with --netns).
    const h = bootHost(makeNs('dq'))
    const [X, Y] = [innerNs(h, 'dqx'), innerNs(h, 'dqy')]
    h.sh('ip', ['-n', X, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u0', 'netns', Y])
    for (const [ns, underlay, inside] of [
      [X, '192.0.2.1/24', '10.1.0.1/32'],
      [Y, '192.0.2.2/24', '10.2.0.1/32'],
    ]) {
      h.sh('ip', ['-n', ns, 'addr', 'add', underlay, 'dev', 'u0'])
      h.sh('ip', ['-n', ns, 'link', 'set', 'u0', 'up'])
      h.sh('ip', ['-n', ns, 'addr', 'add', inside, 'dev', 'lo'])
    }
    const weak = (ns: string, remote: string, l: string, r: string, extra: string[]) =>
      h.cli([
        'tunnel',
        'add',
        'weak',
        '--type',
        'ipsec',
        '--remote',
        remote,
        '--psk-file',
        psk,
        '--local-subnet',
        l,
        '--remote-subnet',
        r,
        '--proposals',
        'aes128-sha1-modp1024',
        '--esp-proposals',
        'aes128-sha1-modp1024',
        '--netns',
        ns,
        ...extra,
      ])
    const a = weak(X, '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait'])
    assert.equal(a.code, 0, a.stderr)
    const b = weak(Y, '192.0.2.1', '10.2.0.0/24', '10.1.0.0/24', [])
    assert.equal(b.code, 0, b.stderr)
    try {
      const r = h.cli(['doctor', '--netns', X, '--json', '--tunnel', 'weak'])
      assert.deepEqual(failed(r), ['ipsec.algorithms'])
      const f = r.json.result.checks.find((c: any) => c.id === 'ipsec.algorithms' && c.result === 'fail')
      assert.match(f.reason, /sha1.*modp1024/)
      assert.ok(
        f.evidence.weak.some((a: string) => /HMAC_SHA1|MODP_1024/.test(a)),
        'the negotiated algorithms are named too',
      )
    } finally {
      for (const ns of [Y, X]) assert.equal(h.cli(['tunnel', 'del', 'weak', '--netns', ns]).code, 0)
      h.stop()
    }
  })

  it('the SA torn down by the peer: charon brings it back by itself (kernel-libipsec cannot trap), and the doctor is clean again', async () => {
    const sock = join(w.hB.configDir, 'ipsec', 'charon.vici')
    sh('swanctl', ['--terminate', '--ike', 'netkit-192_0_2_2-192_0_2_1', '--timeout', '5', '--uri', `unix://${sock}`])
    // A restarts on the peer's DELETE (close_action); were that lost, dead peer detection (30 s) would.
    assert.ok(await pingUntil(w.CA, '10.2.0.2', 45), 'traffic flows again')
    assert.deepEqual(failed(doctor('--tunnel', 'site')), [])
  })

  it('no address of the host in a local subnet (kernel-libipsec) fails ipsec.local-address with the fix', () => {
    sh('ip', ['-n', w.A, 'addr', 'del', '10.1.0.1/24', 'dev', 'c0'])
    try {
      const r = doctor('--check', 'ipsec.local-address')
      assert.deepEqual(failed(r), ['ipsec.local-address'])
      assert.match(r.json.result.checks[0].reason, /no address of this host lies in 10\.1\.0\.0\/24/)
    } finally {
      sh('ip', ['-n', w.A, 'addr', 'add', '10.1.0.1/24', 'dev', 'c0'])
    }
  })

  it('charon killed: ipsec.charon fails with the fix, and tunnel up brings it back', () => {
    const pidFile = join(w.hA.stateDir, 'daemons', '@root', 'charon.pid')
    // The pid as the host sees it (its own PID namespace).
    w.hA.sh('kill', [readFileSync(pidFile, 'utf8').trim()])
    const charon = () => w.hA.processes().filter((p) => p.endsWith(' charon'))
    for (let i = 0; i < 50 && charon().length > 0; i++) sh('sleep', ['0.1'])
    assert.deepEqual(charon(), [], 'charon is gone')
    const r = doctor()
    assert.equal(r.code, 1)
    assert.deepEqual(failed(r), ['ipsec.charon'], 'only the charon (the routes it carried are skipped: no SA)')
    assert.equal(r.json.result.checks.find((c: any) => c.id === 'ipsec.charon').fix, 'netkit tunnel up site', "the host's own command")
    const up = w.hA.cli(['tunnel', 'up', 'site'])
    assert.equal(up.code, 0, up.stderr)
    assert.deepEqual(failed(doctor()), [])
  })
})
