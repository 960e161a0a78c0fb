import assert from 'node:assert/strict'
import {existsSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {exitOf, stderrUntil} from '../helpers/cli.js'
import {dump, filesUnder, ipj, sh, skipUnlessRoot, tryRun} from '../helpers/hosts.js'
import type {SimHost} from '../helpers/realhost.js'
import {captureDuring, pingUntil, twoHosts} from '../helpers/topology.js'

const hasWireguardModule = existsSync('/sys/module/wireguard')

describe('netkit tunnel --type wireguard (integration)', {skip: skipUnlessRoot}, () => {
  // A and B are simulated hosts (test/helpers/realhost.ts): netkit runs in them with its defaults.
  const add = (h: SimHost, remote: string, peerKey: string, address: string, local: string, remoteSubnet: string, extra: string[] = []) =>
    h.cli([
      'tunnel',
      'add',
      'wg1',
      '--type',
      'wireguard',
      '--remote',
      remote,
      '--peer-public-key',
      peerKey,
      '--address',
      address,
      '--local-subnet',
      local,
      '--remote-subnet',
      remoteSubnet,
      ...(extra.includes('--timeout') ? [] : ['--timeout', '10']),
      ...extra,
    ])

  it('joins two sites through wireguard-go, encrypted on the wire, and del leaves nothing', async () => {
    const {A, B, CA, CB, hA, hB} = twoHosts('wg')
    const ka = hA.cli(['tunnel', 'pubkey', 'wg1'])
    const kb = hB.cli(['tunnel', 'pubkey', 'wg1'])
    assert.equal(ka.code, 0, ka.stderr)
    assert.match(ka.stdout, /^[A-Za-z0-9+/]{43}=\n$/, 'the public key alone on stdout')
    assert.equal(hA.cli(['tunnel', 'pubkey', 'wg1']).stdout, ka.stdout, 'pubkey is stable')
    const keyFile = join(hA.configDir, 'secrets', 'wg1.key')
    assert.equal(statSync(keyFile).mode & 0o777, 0o600)
    // the same public key as wg's own
    assert.equal(sh('wg', ['pubkey'], sh('cat', [keyFile])), ka.stdout)

    const a = add(hA, '192.0.2.2', kb.stdout.trim(), '10.99.0.1/24', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait'])
    assert.equal(a.code, 0, a.stderr)
    assert.match(a.stderr, /data path: userspace \(wireguard-go/)
    assert.match(a.stdout, /waiting for the peer/)
    const b = add(hB, '192.0.2.1', ka.stdout.trim(), '10.99.0.2/24', '10.2.0.0/24', '10.1.0.0/24', ['--json'])
    assert.equal(b.code, 0, b.stderr)
    assert.equal(b.json.result.state, 'up', 'the second host waited for the handshake')
    assert.ok(!JSON.stringify(b.json).includes(sh('cat', [keyFile]).trim()), 'no private key in --json')

    const cap = await captureDuring(A, 'u0', ['10.1.0.2', '10.2.0.2'], async () => {
      assert.ok(await pingUntil(CA, '10.2.0.2'), 'container A reaches container B through the tunnel')
      sh('ip', ['netns', 'exec', CB, 'ping', '-c', '2', '-i', '0.2', '-W', '1', '10.1.0.2'])
    })
    assert.deepEqual(cap.clear, [], 'no inner address crosses the underlay in clear')
    assert.ok(
      cap.lines.some((l) => /192\.0\.2\.\d\.51820 > 192\.0\.2\.\d\.51820: UDP/.test(l)),
      `WireGuard packets on the wire:\n${cap.lines.slice(0, 5).join('\n')}`,
    )

    const link = ipj(A, ['-d', 'link', 'show', 'wg-wg1'])[0]
    assert.equal(link.ifalias, 'netkit')
    assert.equal(link.mtu, 1420)
    assert.equal(link.linkinfo?.info_kind, 'tun', 'wireguard-go makes a TUN device')
    assert.equal(ipj(A, ['route', 'show', '10.2.0.0/24'])[0]?.dev, 'wg-wg1')

    const list = hA.cli(['tunnel', 'list', '--json'])
    assert.deepEqual(
      list.json.result.map((r: any) => [r.name, r.type, r.state, r.datapath]),
      [['wg1', 'wireguard', 'up', 'userspace']],
    )
    const show = hA.cli(['tunnel', 'show', 'wg1', '--json']).json.result.status
    assert.equal(show.details.peer.publicKey, kb.stdout.trim())
    assert.ok(show.details.peer.handshakeAgeSeconds < 60)
    assert.ok(show.details.peer.rxBytes > 0 && show.details.peer.txBytes > 0)
    assert.equal(show.details.peer.endpoint, '192.0.2.2:51820')
    const conf = join(hA.configDir, 'wireguard', 'wg-wg1.conf')
    assert.equal(statSync(conf).mode & 0o777, 0o600)
    // wg itself understands the file (wg-quick's extra keys stripped, as wg-quick strip does)
    assert.match(sh('wg-quick', ['strip', conf]), /\[Peer\]\nPublicKey = .*\nEndpoint = 192\.0\.2\.2:51820\nAllowedIPs = 10\.2\.0\.0\/24, 10\.99\.0\.0\/24/)

    const again = add(hA, '192.0.2.2', kb.stdout.trim(), '10.99.0.1/24', '10.1.0.0/24', '10.2.0.0/24')
    assert.equal(again.code, 0)
    assert.match(again.stdout, /already set up \(up\); nothing to do/)

    for (const [ns, h] of [
      [A, hA],
      [B, hB],
    ] as const) {
      const del = h.cli(['tunnel', 'del', 'wg1'])
      assert.equal(del.code, 0, del.stderr)
      assert.notEqual(tryRun('ip', ['-n', ns, 'link', 'show', 'wg-wg1']).code, 0, 'the device is gone')
      assert.deepEqual(ipj(ns, ['route', 'show', 'proto', '178']), [])
      assert.deepEqual(h.processes(), [], 'no wireguard-go left')
    }
    for (const h of [hA, hB]) {
      assert.deepEqual(filesUnder(h.configDir), [], 'no config or key file left')
      assert.deepEqual(filesUnder(join(h.stateDir, 'daemons')), [], 'no pid file or log left')
    }
  })

  it('a wrong peer public key fails with a clear message and rolls back completely', () => {
    const {A, B, hA, hB} = twoHosts('wk')
    const ka = hA.cli(['tunnel', 'pubkey', 'wg1']).stdout.trim()
    const kb = hB.cli(['tunnel', 'pubkey', 'wg1']).stdout.trim()
    assert.equal(add(hA, '192.0.2.2', kb, '10.99.0.1/24', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait']).code, 0)
    const before = dump(B)
    const wrong = hA.cli(['tunnel', 'pubkey', 'other']).stdout.trim()
    assert.notEqual(wrong, ka)
    const t0 = Date.now()
    const b = add(hB, '192.0.2.1', wrong, '10.99.0.2/24', '10.2.0.0/24', '10.1.0.0/24', ['--timeout', '4'])
    assert.equal(b.code, 1)
    assert.match(b.stderr, /^error: no WireGuard handshake with 192\.0\.2\.1:51820 within 4s; .*public key is wrong/m)
    assert.ok(Date.now() - t0 < 15_000, 'bounded')
    assert.equal(dump(B), before, 'B is exactly as before')
    assert.deepEqual(hB.processes(), [], 'wireguard-go stopped')
    assert.deepEqual(hB.cli(['tunnel', 'list', '--json']).json.result, [])
    assert.ok(existsSync(join(hB.configDir, 'secrets', 'wg1.key')), 'a key made before add (by pubkey) is kept')
    assert.equal(hA.cli(['tunnel', 'del', 'wg1']).code, 0)
  })

  it('Ctrl-C while it waits for the handshake ends the wait at once and undoes everything', async () => {
    const {B, hA, hB} = twoHosts('wi')
    const key = hB.cli(['tunnel', 'pubkey', 'wg1']).stdout.trim()
    const before = dump(B)
    const child = hB.cliStart([
      'tunnel',
      'add',
      'wg1',
      '--type',
      'wireguard',
      '--remote',
      '192.0.2.1',
      '--peer-public-key',
      key,
      '--address',
      '10.99.0.2/24',
      '--remote-subnet',
      '10.1.0.0/24',
      '--timeout',
      '60',
    ])
    const exited = exitOf(child)
    let err = ''
    child.stderr!.on('data', (d: Buffer) => (err += d))
    await stderrUntil(child, /\[#\] .*wg set wg-wg1/)
    const t0 = Date.now()
    child.kill('SIGINT')
    assert.equal(await exited, 1)
    assert.ok(Date.now() - t0 < 10_000, `ended at once, not after --timeout (${Date.now() - t0} ms)`)
    assert.match(err, /^error: interrupted; what was already done has been undone/m)
    assert.equal(dump(B), before, 'B is exactly as before')
    assert.deepEqual(hB.processes(), [], 'wireguard-go stopped')
  })

  it('an underlay that is down fails at once and changes nothing', () => {
    const {A, B, hA, hB} = twoHosts('wu')
    const kb = hB.cli(['tunnel', 'pubkey', 'wg1']).stdout.trim()
    sh('ip', ['-n', A, 'link', 'set', 'u0', 'down'])
    const before = dump(A)
    const a = add(hA, '192.0.2.2', kb, '10.99.0.1/24', '10.1.0.0/24', '10.2.0.0/24', ['--local', '192.0.2.1'])
    assert.equal(a.code, 1, a.stderr)
    assert.match(a.stderr, /^error: the peer 192\.0\.2\.2 is unreachable from here/m)
    assert.equal(dump(A), before)
    assert.deepEqual(hA.processes(), [])
    assert.ok(!existsSync(join(hA.configDir, 'tunnels', 'wg1.json')))
  })

  it('--dry-run prints the commands, with the key redacted, and changes nothing', () => {
    const {A, hA, hB} = twoHosts('wd')
    const before = dump(A)
    const r = hA.cli([
      'tunnel',
      'add',
      'wg1',
      '--type',
      'wireguard',
      '--remote',
      '192.0.2.2',
      '--peer-public-key',
      'hq97es4O1JAzBov3N2k/PtbfqQSJD6yyOhRvxekajl4=',
      '--address',
      '10.99.0.1/24',
      '--dry-run',
    ])
    assert.equal(r.code, 0, r.stderr)
    assert.match(
      r.stdout,
      /^wireguard-go -f wg-wg1 >> \/run\/netkit\/daemons\/@root\/wireguard-go\.wg-wg1\.log 2>&1 &\n.*link set wg-wg1 alias netkit\n/m,
      "in the host itself, wireguard-go runs as it is (its socket in the host's /run/wireguard)",
    )
    assert.match(r.stdout, /wg set wg-wg1 listen-port 51820 private-key \S+ peer hq97/)
    assert.equal(dump(A), before)
    assert.deepEqual(hA.processes(), [])
    assert.deepEqual(filesUnder(hA.configDir), [])
  })

  it('the kernel data path', {skip: hasWireguardModule ? false : 'this kernel has no WireGuard module (wireguard-go is tested above)'}, async () => {
    const {A, B, CA, hA, hB} = twoHosts('wn')
    const ka = hA.cli(['tunnel', 'pubkey', 'wg1']).stdout.trim()
    const kb = hB.cli(['tunnel', 'pubkey', 'wg1']).stdout.trim()
    assert.equal(add(hA, '192.0.2.2', kb, '10.99.0.1/24', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait', '--datapath', 'kernel']).code, 0)
    assert.equal(add(hB, '192.0.2.1', ka, '10.99.0.2/24', '10.2.0.0/24', '10.1.0.0/24', ['--datapath', 'kernel']).code, 0)
    assert.equal(ipj(A, ['-d', 'link', 'show', 'wg-wg1'])[0].linkinfo.info_kind, 'wireguard')
    assert.ok(await pingUntil(CA, '10.2.0.2'))
    for (const h of [hA, hB]) assert.equal(h.cli(['tunnel', 'del', 'wg1']).code, 0)
  })

  it('--datapath kernel without the module is bad input (exit 2)', {skip: hasWireguardModule ? 'the kernel has the module' : false}, () => {
    const {A, hA, hB} = twoHosts('wm')
    const r = hA.cli([
      'tunnel',
      'add',
      'wg1',
      '--type',
      'wireguard',
      '--remote',
      '192.0.2.2',
      '--peer-public-key',
      'hq97es4O1JAzBov3N2k/PtbfqQSJD6yyOhRvxekajl4=',
      '--address',
      '10.99.0.1/24',
      '--datapath',
      'kernel',
    ])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /^error: --datapath kernel: this kernel has no WireGuard module/)
  })
})
