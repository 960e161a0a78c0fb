import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {dump, filesUnder, ipj, sh, skipUnlessRoot, tryRun} from '../helpers/hosts.js'
import {dumpIn, innerNs, pidsIn} from '../helpers/inner.js'
import type {SimHost} from '../helpers/realhost.js'
import {captureDuring, pingUntil, twoHosts} from '../helpers/topology.js'

const hasKernelEsp = existsSync('/sys/module/esp4')

describe('netkit tunnel --type ipsec (integration)', {skip: skipUnlessRoot}, () => {
  // A and B are simulated hosts (test/helpers/realhost.ts): netkit runs in them with its defaults.
  // PSK and host files lie outside /etc and /run, which the hosts see as the machine has them.
  const dir = mkdtempSync(join(tmpdir(), 'netkit-ipsec-'))
  after(() => rmSync(dir, {recursive: true, force: true}))
  const pskFile = join(dir, 'site.psk')
  const wrongPsk = join(dir, 'wrong.psk')
  writeFileSync(pskFile, 'correct horse battery staple 2026\n', {mode: 0o600})
  writeFileSync(wrongPsk, 'not the same key at all, sorry\n', {mode: 0o600})

  const add = (h: SimHost, remote: string, local: string, remoteSubnet: string, extra: string[] = []) =>
    h.cli([
      'tunnel',
      'add',
      'site',
      '--type',
      'ipsec',
      '--remote',
      remote,
      '--local-subnet',
      local,
      '--remote-subnet',
      remoteSubnet,
      ...(extra.includes('--psk-file') ? [] : ['--psk-file', pskFile]),
      ...(extra.includes('--timeout') ? [] : ['--timeout', '15']),
      ...extra,
    ])

  it('joins two sites through charon with kernel-libipsec, ESP on the wire, and del leaves nothing', async () => {
    const {A, B, CA, CB, hA, hB} = twoHosts('ip')
    const a = add(hA, '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait'])
    assert.equal(a.code, 0, a.stderr)
    assert.match(a.stderr, /data path: userspace \(strongSwan's kernel-libipsec/)
    const b = add(hB, '192.0.2.1', '10.2.0.0/24', '10.1.0.0/24', ['--json'])
    assert.equal(b.code, 0, b.stderr)
    assert.equal(b.json.result.state, 'up', 'the second host waited for the CHILD_SA')
    assert.ok(!JSON.stringify(b.json).includes('battery'), 'no PSK in --json')

    const guard = ipj(A, ['-N', 'route', 'show', 'table', 'main', 'type', 'unreachable'])
    assert.deepEqual(
      guard.map((r: any) => [r.dst, r.protocol]),
      [['10.2.0.0/24', '178']],
      'a guard route: nothing leaves in clear while there is no SA',
    )
    const cap = await captureDuring(A, 'u0', ['10.1.0.2', '10.2.0.2'], async () => {
      assert.ok(await pingUntil(CA, '10.2.0.2'), 'container A reaches container B through the tunnel')
      sh('ip', ['netns', 'exec', CB, 'ping', '-c', '2', '-i', '0.2', '-W', '1', '10.1.0.2'])
    })
    assert.deepEqual(cap.clear, [], 'no inner address crosses the underlay in clear')
    assert.ok(
      cap.lines.some((l) => /\.4500 > .*\.4500: UDP-encap: ESP\(spi=0x[0-9a-f]+/.test(l)),
      `ESP in UDP 4500 on the wire:\n${cap.lines.slice(0, 5).join('\n')}`,
    )

    const shown = hB.cli(['tunnel', 'show', 'site']).stdout
    assert.doesNotMatch(shown, /\[object Object\]/)
    assert.match(shown, /^ {2}ikeSas 1:\n {4}.*\n[\s\S]*^ {4}children 1:\n {6}name: netkit-site$/m, shown)
    const show = hB.cli(['tunnel', 'show', 'site', '--json']).json.result.status
    assert.equal(show.state, 'up')
    const ike = show.details.ikeSas[0]
    assert.equal(ike.state, 'ESTABLISHED')
    const child = ike.children[0]
    assert.equal(child.state, 'INSTALLED')
    assert.deepEqual([child.localTs, child.remoteTs], [['10.2.0.0/24'], ['10.1.0.0/24']])
    assert.ok(child.bytesIn > 0 && child.bytesOut > 0, 'traffic counted on the CHILD_SA')
    assert.match(child.rekeyAt, /^\d{4}-/)
    assert.match(child.expiresAt, /^\d{4}-/)
    const list = hA.cli(['tunnel', 'list', '--json'])
    assert.deepEqual(
      list.json.result.map((r: any) => [r.name, r.type, r.state, r.datapath]),
      [['site', 'ipsec', 'up', 'userspace']],
    )

    const conf = join(hA.configDir, 'ipsec', 'swanctl', 'conf.d', 'site.conf')
    assert.equal(statSync(conf).mode & 0o777, 0o600)
    assert.ok(!readFileSync(conf, 'utf8').includes('battery'), 'the PSK is stored encoded (0s...)')
    assert.equal(statSync(join(hA.configDir, 'secrets', 'site.psk')).mode & 0o777, 0o600)

    const again = add(hA, '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24')
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /already set up \(up\); nothing to do/)

    for (const [ns, h] of [
      [A, hA],
      [B, hB],
    ] as const) {
      const del = h.cli(['tunnel', 'del', 'site'])
      assert.equal(del.code, 0, del.stderr)
      assert.deepEqual(h.processes(), [], 'no charon left')
      assert.notEqual(tryRun('ip', ['-n', ns, 'link', 'show', 'ipsec0']).code, 0, 'the TUN device is gone')
      assert.deepEqual(ipj(ns, ['route', 'show', 'table', '220']), [], "charon's routes are gone")
      assert.deepEqual(ipj(ns, ['route', 'show', 'table', 'all', 'proto', '178']), [], 'the guard routes are gone')
      assert.equal(sh('ip', ['-n', ns, 'xfrm', 'policy']), '', 'no xfrm policy left')
      assert.equal(sh('ip', ['-n', ns, 'xfrm', 'state']), '', 'no xfrm state left')
    }
    for (const h of [hA, hB]) {
      assert.deepEqual(filesUnder(h.configDir), [], 'no config, secret or socket left')
      assert.deepEqual(filesUnder(join(h.stateDir, 'daemons')), [], 'no pid file or log left')
    }
  })

  it('a wrong PSK fails with a clear message and rolls back completely', () => {
    const {A, B, hA, hB} = twoHosts('ik')
    assert.equal(add(hA, '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait']).code, 0)
    const before = dump(B)
    const b = add(hB, '192.0.2.1', '10.2.0.0/24', '10.1.0.0/24', ['--psk-file', wrongPsk])
    assert.equal(b.code, 1, b.stderr)
    assert.match(b.stderr, /^error: tunnel site: authentication failed/m)
    assert.ok(!b.stderr.includes('not the same key'), 'the PSK is not in the message')
    assert.equal(dump(B), before, 'B is exactly as before')
    assert.deepEqual(hB.processes(), [], 'charon stopped')
    assert.deepEqual(filesUnder(hB.configDir), [], 'no config or secret left')
    const twin = hA.cli([
      'tunnel',
      'add',
      'site2',
      '--type',
      'ipsec',
      '--remote',
      '192.0.2.2',
      '--psk-file',
      pskFile,
      '--local-subnet',
      '10.1.9.0/24',
      '--remote-subnet',
      '10.2.9.0/24',
      '--no-wait',
    ])
    assert.equal(twin.code, 0, `a second subnet pair to the same peer shares its IKE connection: ${twin.stderr}`)
    assert.equal(hA.cli(['tunnel', 'del', 'site2']).code, 0)
    // A second gateway to the same remote subnet shares the guard route: deleting one tunnel leaves the other's guard.
    const guards = () => ipj(A, ['route', 'show', 'table', 'main', 'type', 'unreachable']).map((r: any) => r.dst)
    const second = hA.cli([
      'tunnel',
      'add',
      'gw2',
      '--type',
      'ipsec',
      '--remote',
      '192.0.2.3',
      '--psk-file',
      pskFile,
      '--local-subnet',
      '10.1.0.0/24',
      '--remote-subnet',
      '10.2.0.0/24',
      '--no-wait',
    ])
    assert.equal(second.code, 0, second.stderr)
    assert.equal(hA.cli(['tunnel', 'del', 'gw2']).code, 0)
    assert.deepEqual(guards(), ['10.2.0.0/24'], 'tunnel site still has its guard: nothing to 10.2.0.0/24 leaves in clear')
    const conns = sh('swanctl', ['--list-conns', '--uri', `unix://${join(hA.configDir, 'ipsec', 'charon.vici')}`])
    assert.match(conns, /^netkit-192_0_2_1-192_0_2_2: [\s\S]*^ {2}netkit-site: /m)
    assert.doesNotMatch(conns, /netkit-192_0_2_1-192_0_2_3|netkit-gw2/, 'and charon no longer has the deleted connection')
    // The guard route deleted behind netkit's back while there is no SA: the doctor says packets leave in clear, and how to mend it.
    sh('ip', ['-n', A, 'route', 'add', 'default', 'via', '192.0.2.2'])
    sh('ip', ['-n', A, 'route', 'del', 'unreachable', '10.2.0.0/24', 'metric', '4294967295'])
    const routes = () => hA.cli(['doctor', '--json']).json.result.checks.filter((c: any) => c.id === 'paths.routes')
    const leak = routes()
    assert.deepEqual(
      leak.map((c: any) => c.result),
      ['fail'],
    )
    assert.match(leak[0].reason, /no SA, and traffic to 10\.2\.0\.0\/24 leaves by u0 in clear/)
    assert.equal(leak[0].fix, 'netkit tunnel down site && netkit tunnel up site')
    assert.equal(hA.cli(['tunnel', 'down', 'site']).code, 0)
    assert.equal(hA.cli(['tunnel', 'up', 'site', '--no-wait']).code, 0)
    assert.deepEqual(guards(), ['10.2.0.0/24'])
    assert.deepEqual(
      routes().map((c: any) => c.result),
      ['skip'],
      'mended: nothing leaves while there is no SA',
    )
    assert.equal(hA.cli(['tunnel', 'del', 'site']).code, 0)
    assert.deepEqual(guards(), [], 'the last tunnel to 10.2.0.0/24 takes it')
  })

  it('apply: a PSK change undone by a later failure leaves charon with the old key, not the new one', () => {
    const {hA} = twoHosts('aq')
    const newPsk = join(dir, 'new.psk')
    writeFileSync(newPsk, 'a brand new key for the site 2026\n', {mode: 0o600})
    const host = (psk: string, extra = '') => {
      const f = join(dir, 'aq.yaml')
      writeFileSync(
        f,
        `version: 1\ntunnels:\n  s1: {type: ipsec, local: 192.0.2.1, remote: 192.0.2.2, pskFile: ${psk}, localSubnets: [10.1.0.0/24], remoteSubnets: [10.2.0.0/24]}\n${extra}`,
      )
      return f
    }
    const first = hA.cli(['apply', '-f', host(pskFile)])
    assert.equal(first.code, 0, first.stderr)
    const conf = join(hA.configDir, 'ipsec', 'swanctl', 'conf.d', 's1.conf')
    const before = readFileSync(conf, 'utf8')
    // s1's key changes, then s2 cannot be set up (its peer has no route): everything is undone.
    const r = hA.cli([
      'apply',
      '-f',
      host(
        newPsk,
        '  s2: {type: ipsec, local: 192.0.2.1, remote: 198.51.100.9, pskFile: ' + pskFile + ', localSubnets: [10.1.1.0/24], remoteSubnets: [10.9.0.0/24]}\n',
      ),
    ])
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /unreachable/)
    assert.equal(readFileSync(conf, 'utf8'), before, "charon's connection has the old key again")
    assert.equal(readFileSync(join(hA.configDir, 'secrets', 's1.psk'), 'utf8').trim(), 'correct horse battery staple 2026')
    assert.match(hA.cli(['diff', '-f', host(pskFile)]).stdout, /the host matches/)
    // Deleted by hand, it is no longer apply's to remove.
    const ledger = join(hA.stateDir, 'owned.json')
    assert.match(readFileSync(ledger, 'utf8'), /"tunnel:s1"/)
    assert.equal(hA.cli(['tunnel', 'del', 's1']).code, 0)
    // (The ledger file goes when nothing is left in it.)
    assert.doesNotMatch(existsSync(ledger) ? readFileSync(ledger, 'utf8') : '', /"tunnel:s1"/)
    assert.deepEqual(hA.processes(), [], 'charon stopped')
    assert.deepEqual(filesUnder(join(hA.stateDir, 'daemons')), [], 'no log of the undone s2 or of s1 left')
  })

  it('proposals charon refuses: said in plain words, and no config is left to break the next load (a namespace the host manages, --netns)', () => {
    const {hA} = twoHosts('ib')
    // X: a namespace inside host A, with its own underlay to the host and an address in its local subnet.
    const X = innerNs(hA, 'ibx')
    hA.sh('ip', ['link', 'add', 'xu0', 'type', 'veth', 'peer', 'name', 'u0', 'netns', X])
    hA.sh('ip', ['link', 'set', 'xu0', 'up'])
    hA.sh('ip', ['-n', X, 'addr', 'add', '192.0.2.1/24', 'dev', 'u0'])
    hA.sh('ip', ['-n', X, 'link', 'set', 'u0', 'up'])
    hA.sh('ip', ['-n', X, 'addr', 'add', '10.1.0.1/32', 'dev', 'lo'])
    const before = dumpIn(hA, X)
    const beforeHost = dump(hA.ns)
    const r = hA.cli([
      'tunnel',
      'add',
      'bad',
      '--type',
      'ipsec',
      '--remote',
      '192.0.2.2',
      '--psk-file',
      pskFile,
      '--local-subnet',
      '10.1.0.0/24',
      '--remote-subnet',
      '10.2.0.0/24',
      '--proposals',
      'aes128-sha256-modp9999',
      '--netns',
      X,
      '--no-wait',
    ])
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /^error: charon refused connection netkit-bad: its proposals setting is not valid/m)
    assert.equal(dumpIn(hA, X), before)
    assert.equal(dump(hA.ns), beforeHost, 'the host itself is not touched')
    assert.deepEqual(filesUnder(join(hA.configDir, 'netns', X)), [], 'no connection file left behind')
    assert.deepEqual(pidsIn(hA, X), [], 'charon stopped')
    const ok = add(hA, '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait', '--netns', X])
    assert.equal(ok.code, 0, `the next tunnel loads: ${ok.stderr}`)
    assert.equal(pidsIn(hA, X).length > 0, true, 'charon runs in the namespace')
    // processes() lists the host's whole PID namespace: the ones in the host's own network namespace are those `ip netns pids` names, less its PID 1.
    assert.deepEqual(
      sh('ip', ['netns', 'pids', hA.ns])
        .split('\n')
        .filter(Boolean)
        .map(Number)
        .filter((p) => p !== hA.pid && !readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('unshare'))
        .map((p) => readFileSync(`/proc/${p}/comm`, 'utf8').trim())
        .filter((c) => c === 'charon'),
      [],
      'and not in the host itself',
    )
    assert.equal(hA.cli(['tunnel', 'del', 'site', '--netns', X]).code, 0)
    assert.deepEqual(pidsIn(hA, X), [], 'charon stopped')
    assert.deepEqual(filesUnder(join(hA.configDir, 'netns', X)), [], 'nothing left')
  })

  it('mismatched subnets are refused by the peer, in plain words', () => {
    const {hA, hB} = twoHosts('it')
    assert.equal(add(hA, '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait']).code, 0)
    const b = add(hB, '192.0.2.1', '10.2.0.0/24', '10.7.0.0/24')
    assert.equal(b.code, 1)
    assert.match(b.stderr, /^error: tunnel site: the peer refused the traffic selectors/m)
    assert.deepEqual(hB.processes(), [])
    assert.equal(hA.cli(['tunnel', 'del', 'site']).code, 0)
  })

  it('a peer that does not answer fails within the bounded time and rolls back', () => {
    const {B, hB} = twoHosts('iu')
    const before = dump(B)
    const t0 = Date.now()
    const b = add(hB, '192.0.2.1', '10.2.0.0/24', '10.1.0.0/24', ['--timeout', '4'])
    assert.equal(b.code, 1)
    assert.match(b.stderr, /^error: tunnel site: the peer did not answer .* within 4s/m)
    assert.ok(Date.now() - t0 < 20_000, 'bounded')
    assert.equal(dump(B), before)
    assert.deepEqual(hB.processes(), [])
  })

  it('host to host on kernel-libipsec is refused before anything changes', {skip: hasKernelEsp ? 'the kernel has ESP' : false}, () => {
    const {A, hA} = twoHosts('ih')
    const before = dump(A)
    const r = hA.cli(['tunnel', 'add', 'h', '--type', 'ipsec', '--remote', '192.0.2.2', '--psk-file', pskFile])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /^error: host-to-host IPsec needs the kernel data path/)
    assert.equal(dump(A), before)
    assert.deepEqual(filesUnder(hA.configDir), [])
  })

  it('the kernel data path', {skip: hasKernelEsp ? false : 'this kernel has no ESP (CONFIG_INET_ESP): kernel-libipsec is tested above'}, async () => {
    const {A, CA, hA, hB} = twoHosts('in')
    assert.equal(add(hA, '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait', '--datapath', 'kernel']).code, 0)
    assert.equal(add(hB, '192.0.2.1', '10.2.0.0/24', '10.1.0.0/24', ['--datapath', 'kernel']).code, 0)
    assert.ok(await pingUntil(CA, '10.2.0.2'))
    assert.notEqual(sh('ip', ['-n', A, 'xfrm', 'state']), '')
    for (const h of [hA, hB]) assert.equal(h.cli(['tunnel', 'del', 'site']).code, 0)
  })
})

describe(
  'netkit tunnel --type ipsec with X.509 certificates (integration)',
  {skip: skipUnlessRoot || (existsSync('/usr/bin/pki') ? false : 'strongSwan pki is not installed')},
  () => {
    // Certificates and keys lie outside /etc and /run, which the hosts see as the machine has them.
    const dir = mkdtempSync(join(tmpdir(), 'netkit-x509-'))
    after(() => rmSync(dir, {recursive: true, force: true}))
    const pki = join(dir, 'pki')

    it('two sites authenticate with certificates from one CA, and a certificate from another CA is refused', async () => {
      mkdirSync(pki, {recursive: true, mode: 0o700})
      const p = (name: string) => join(pki, name)
      const gen = (key: string) => writeFileSync(p(key), execFileSync('pki', ['--gen', '--type', 'ed25519', '--outform', 'pem']), {mode: 0o600})
      gen('ca.key')
      writeFileSync(
        p('ca.crt'),
        execFileSync('pki', ['--self', '--ca', '--lifetime', '30', '--in', p('ca.key'), '--type', 'ed25519', '--dn', 'CN=netkit test CA', '--outform', 'pem']),
      )
      for (const [host, ip] of [
        ['a', '192.0.2.1'],
        ['b', '192.0.2.2'],
      ]) {
        gen(`${host}.key`)
        const pub = execFileSync('pki', ['--pub', '--in', p(`${host}.key`)])
        writeFileSync(
          p(`${host}.crt`),
          execFileSync(
            'pki',
            ['--issue', '--lifetime', '30', '--cacert', p('ca.crt'), '--cakey', p('ca.key'), '--dn', `CN=${ip}`, '--san', ip, '--outform', 'pem'],
            {input: pub},
          ),
        )
      }
      const {B, CA, hA, hB} = twoHosts('ix')
      const add = (h: SimHost, host: string, remote: string, l: string, r: string, extra: string[] = []) =>
        h.cli([
          'tunnel',
          'add',
          'x',
          '--type',
          'ipsec',
          '--remote',
          remote,
          '--cert',
          p(`${host}.crt`),
          '--key',
          p(`${host}.key`),
          '--ca',
          p('ca.crt'),
          '--local-subnet',
          l,
          '--remote-subnet',
          r,
          '--timeout',
          '15',
          ...extra,
        ])
      const a = add(hA, 'a', '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait'])
      assert.equal(a.code, 0, a.stderr)
      const b = add(hB, 'b', '192.0.2.1', '10.2.0.0/24', '10.1.0.0/24', ['--json'])
      assert.equal(b.code, 0, b.stdout + b.stderr)
      assert.equal(b.json.result.state, 'up')
      assert.ok(await pingUntil(CA, '10.2.0.2'), 'container A reaches container B')
      assert.ok(!readFileSync(join(hA.configDir, 'ipsec', 'swanctl', 'conf.d', 'x.conf'), 'utf8').includes('PRIVATE KEY'), 'the key stays in its own file')
      assert.equal(hB.cli(['tunnel', 'del', 'x']).code, 0)

      // B with a certificate from a CA that A does not trust: refused, rolled back.
      gen('rogue-ca.key')
      writeFileSync(
        p('rogue-ca.crt'),
        execFileSync('pki', ['--self', '--ca', '--lifetime', '30', '--in', p('rogue-ca.key'), '--type', 'ed25519', '--dn', 'CN=rogue CA', '--outform', 'pem']),
      )
      gen('rogue.key')
      const pub = execFileSync('pki', ['--pub', '--in', p('rogue.key')])
      writeFileSync(
        p('b-rogue.crt'),
        execFileSync(
          'pki',
          [
            '--issue',
            '--lifetime',
            '30',
            '--cacert',
            p('rogue-ca.crt'),
            '--cakey',
            p('rogue-ca.key'),
            '--dn',
            'CN=192.0.2.2',
            '--san',
            '192.0.2.2',
            '--outform',
            'pem',
          ],
          {input: pub},
        ),
      )
      const before = dump(B)
      const r = hB.cli([
        'tunnel',
        'add',
        'x',
        '--type',
        'ipsec',
        '--remote',
        '192.0.2.1',
        '--cert',
        p('b-rogue.crt'),
        '--key',
        p('rogue.key'),
        '--ca',
        p('ca.crt'),
        '--local-subnet',
        '10.2.0.0/24',
        '--remote-subnet',
        '10.1.0.0/24',
        '--timeout',
        '10',
      ])
      assert.equal(r.code, 1)
      assert.match(r.stderr, /^error: tunnel x: authentication failed/m)
      assert.equal(dump(B), before)
      assert.deepEqual(hB.processes(), [])
      assert.equal(hA.cli(['tunnel', 'del', 'x']).code, 0)
    })
  },
)
