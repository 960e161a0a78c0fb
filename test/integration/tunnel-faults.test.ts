/**
 * A step of `tunnel add` that fails half way leaves nothing behind: a wrapper
 * `ip` first on PATH fails one chosen change, as a flaky kernel or a full
 * table would.
 */
import assert from 'node:assert/strict'
import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {exitOf, stderrUntil} from '../helpers/cli.js'
import {hostState} from '../helpers/faults.js'
import {dump, filesUnder, skipUnlessRoot} from '../helpers/hosts.js'
import {twoHosts} from '../helpers/topology.js'

const IP = '/usr/sbin/ip'

describe('tunnel add when a change fails half way (integration)', {skip: skipUnlessRoot}, () => {
  const bin = mkdtempSync(join(tmpdir(), 'netkit-faults-'))
  after(() => rmSync(bin, {recursive: true, force: true}))
  const psk = join(bin, 'site.psk')
  writeFileSync(psk, 'correct horse battery staple 2026\n', {mode: 0o600})
  /** A directory with an `ip` that fails, once, the first batch holding `line` (as a kernel refusing it would). */
  const failOnce = (line: string): string => {
    const dir = mkdtempSync(join(tmpdir(), 'netkit-faults-'))
    after(() => rmSync(dir, {recursive: true, force: true}))
    writeFileSync(
      join(dir, 'ip'),
      `#!/bin/sh
case " $* " in
  *" -batch "*)
    input=$(cat)
    if [ ! -e ${dir}/once ]; then case "$input" in *"${line}"*) : > ${dir}/once; echo 'RTNETLINK answers: Operation not permitted' >&2; echo 'Command failed -:1' >&2; exit 2 ;; esac; fi
    printf '%s\\n' "$input" | exec ${IP} "$@" ;;
esac
exec ${IP} "$@"
`,
    )
    chmodSync(join(dir, 'ip'), 0o755)
    return dir
  }
  // Fails an `ip -batch` whose lines mark a WireGuard device as netkit's (the step after wireguard-go made it).
  writeFileSync(
    join(bin, 'ip'),
    `#!/bin/sh
case " $* " in
  *" -batch "*)
    input=$(cat)
    case "$input" in *"link set wg-"*" alias netkit"*) echo 'RTNETLINK answers: Operation not permitted' >&2; echo 'Command failed -:1' >&2; exit 2 ;; esac
    printf '%s\\n' "$input" | exec ${IP} "$@" ;;
esac
exec ${IP} "$@"
`,
  )
  chmodSync(join(bin, 'ip'), 0o755)

  it('WireGuard: a failure marking the device stops wireguard-go and removes the device', () => {
    const {A, hA} = twoHosts('fw')
    const key = hA.cli(['tunnel', 'pubkey', 'peer']).stdout.trim()
    const before = dump(A)
    const r = hA.cli(
      ['tunnel', 'add', 'wa', '--type', 'wireguard', '--remote', '192.0.2.2', '--peer-public-key', key, '--address', '10.99.0.1/24', '--no-wait'],
      {env: {PATH: `${bin}:${process.env.PATH}`}},
    )
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /^error: not permitted to change WireGuard device wg-wa/m)
    assert.equal(dump(A), before, 'no device, address or route left')
    assert.deepEqual(hA.processes(), [], 'no wireguard-go left')
    const again = hA.cli([
      'tunnel',
      'add',
      'wa',
      '--type',
      'wireguard',
      '--remote',
      '192.0.2.2',
      '--peer-public-key',
      key,
      '--address',
      '10.99.0.1/24',
      '--no-wait',
    ])
    assert.equal(again.code, 0, `a re-run without the fault works: ${again.stderr}`)
    assert.equal(hA.cli(['tunnel', 'del', 'wa']).code, 0)
    assert.deepEqual(hA.processes(), [])
  })

  it('--replace takes the old tunnel down once, as a step of the plan (a signal or a failure there is undone): its dry run prints that once', () => {
    const {hA} = twoHosts('fo')
    const add = (address: string, extra: string[] = []) =>
      hA.cli([
        'tunnel',
        'add',
        'wo',
        '--type',
        'wireguard',
        '--remote',
        '192.0.2.2',
        '--peer-public-key',
        'hq97es4O1JAzBov3N2k/PtbfqQSJD6yyOhRvxekajl4=',
        '--address',
        address,
        '--remote-subnet',
        '10.2.0.0/24',
        '--no-wait',
        ...extra,
      ])
    assert.equal(add('10.99.0.1/24').code, 0)
    const dry = add('10.99.0.5/24', ['--replace', '--dry-run'])
    assert.equal(dry.code, 0, dry.stderr)
    const lines = dry.stdout.split('\n')
    for (const down of [/^kill -TERM \d+$/, /^ip route del 10\.2\.0\.0\/24 dev wg-wo /]) {
      assert.equal(lines.filter((l) => down.test(l)).length, 1, `once: ${down}\n${dry.stdout}`)
    }
    assert.equal(hA.cli(['tunnel', 'del', 'wo']).code, 0)
  })

  it('WireGuard --replace with --table whose old rule will not go: an error, and the old tunnel back as it was (the rule was left in silence, sending the subnet to the old table)', () => {
    const {hA} = twoHosts('fl')
    const add = (subnet: string, table: string, extra: string[] = [], env?: Record<string, string>) =>
      hA.cli(
        [
          'tunnel',
          'add',
          'wl',
          '--type',
          'wireguard',
          '--remote',
          '192.0.2.2',
          '--peer-public-key',
          'hq97es4O1JAzBov3N2k/PtbfqQSJD6yyOhRvxekajl4=',
          '--address',
          '10.99.0.1/24',
          '--remote-subnet',
          subnet,
          '--table',
          table,
          '--no-wait',
          ...extra,
        ],
        env ? {env} : {},
      )
    assert.equal(add('10.2.0.0/24', '120').code, 0)
    const before = hostState(hA)
    // ip fails the batch that deletes the old tunnel's rule (as a kernel refusing it would), once.
    const bin3 = failOnce('rule del to 10.2.0.0/24')
    const r = add('10.3.0.0/24', '121', ['--replace'], {PATH: `${bin3}:${process.env.PATH}`})
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /^error: .*rule to 10\.2\.0\.0\/24 table 120/m)
    assert.equal(hostState(hA), before, 'the old tunnel, its route and its rule, as before; no rule of the new one')
    assert.equal(hA.cli(['tunnel', 'del', 'wl']).code, 0)
    assert.deepEqual(
      hA.ipj(['rule', 'show']).filter((x: any) => x.priority === 1000),
      [],
      'no rule left',
    )
  })

  it('IPsec --replace whose old guard route will not go: an error, and the old tunnel back as it was (the guard was left in silence, a black hole for the old subnet)', () => {
    const {hA} = twoHosts('fg')
    const add = (subnet: string, extra: string[] = [], env?: Record<string, string>) =>
      hA.cli(
        [
          'tunnel',
          'add',
          'ig',
          '--type',
          'ipsec',
          '--remote',
          '192.0.2.2',
          '--psk-file',
          psk,
          '--local-subnet',
          '10.1.0.0/24',
          '--remote-subnet',
          subnet,
          '--no-wait',
          ...extra,
        ],
        env ? {env} : {},
      )
    assert.equal(add('10.2.0.0/24').code, 0)
    const before = hostState(hA)
    const bin4 = failOnce('route del unreachable 10.2.0.0/24')
    const r = add('10.3.0.0/24', ['--replace'], {PATH: `${bin4}:${process.env.PATH}`})
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /^error: .*guard route 10\.2\.0\.0\/24/m)
    assert.equal(hostState(hA), before, 'the old tunnel (charon, its connection, its guard route) as before; nothing of the new one')
    assert.equal(hA.cli(['tunnel', 'del', 'ig']).code, 0)
    assert.deepEqual(hA.ipj(['route', 'show', 'proto', '178']), [], 'no guard route left')
  })

  it('WireGuard --replace whose new tunnel cannot be made brings the old one back, running, with its old definition', async () => {
    const {hA, hB} = twoHosts('fr')
    const ka = hA.cli(['tunnel', 'pubkey', 'wr']).stdout.trim()
    const kb = hB.cli(['tunnel', 'pubkey', 'wr']).stdout.trim()
    const add = (h: typeof hA, peer: string, remote: string, address: string, extra: string[] = [], env?: Record<string, string>) =>
      h.cli(
        ['tunnel', 'add', 'wr', '--type', 'wireguard', '--remote', remote, '--peer-public-key', peer, '--address', address, '--timeout', '10', ...extra],
        env ? {env} : {},
      )
    assert.equal(add(hA, kb, '192.0.2.2', '10.99.0.1/24', ['--no-wait']).code, 0)
    const b = add(hB, ka, '192.0.2.1', '10.99.0.2/24')
    assert.equal(b.code, 0, b.stderr)
    // wireguard-go fails once (the new tunnel's start), then works (the old one's comeback).
    const bin2 = mkdtempSync(join(tmpdir(), 'netkit-faults-'))
    after(() => rmSync(bin2, {recursive: true, force: true}))
    const once = join(bin2, 'wg-once')
    writeFileSync(
      join(bin2, 'wireguard-go'),
      `#!/bin/sh\nif [ ! -e ${once} ]; then : > ${once}; echo 'failed to create TUN device' >&2; exit 1; fi\nexec /usr/bin/wireguard-go "$@"\n`,
    )
    chmodSync(join(bin2, 'wireguard-go'), 0o755)
    const r = add(hA, kb, '192.0.2.2', '10.99.0.5/24', ['--replace', '--no-wait'], {PATH: `${bin2}:${process.env.PATH}`})
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /^error: wireguard-go did not create wg-wr/m)
    const show = hA.cli(['tunnel', 'show', 'wr', '--json']).json.result
    assert.equal(
      show.tunnel?.wireguard?.address ?? show.definition?.wireguard?.address ?? JSON.stringify(show).match(/"address":"([^"]+)"/)?.[1],
      '10.99.0.1/24',
      'the stored definition is the old one',
    )
    assert.ok(await pingFrom(hA, '10.99.0.2'), 'the old tunnel carries traffic again')
    assert.deepEqual(
      hA.cli(['tunnel', 'list', '--json']).json.result.map((t: any) => [t.name, t.state]),
      [['wr', 'up']],
    )
    for (const h of [hA, hB]) assert.equal(h.cli(['tunnel', 'del', 'wr']).code, 0)
  })
})

describe('tunnel add killed (kill -9) at any moment (integration)', {skip: skipUnlessRoot}, () => {
  const scratch = mkdtempSync(join(tmpdir(), 'netkit-test-'))
  after(() => rmSync(scratch, {recursive: true, force: true}))
  const psk = join(scratch, 'site.psk')
  writeFileSync(psk, 'correct horse battery staple 2026\n', {mode: 0o600})
  const cases: [string, string[], RegExp][] = [
    [
      'WireGuard, as wireguard-go starts',
      [
        '--type',
        'wireguard',
        '--peer-public-key',
        'hq97es4O1JAzBov3N2k/PtbfqQSJD6yyOhRvxekajl4=',
        '--address',
        '10.99.0.1/24',
        '--remote-subnet',
        '10.2.0.0/24',
      ],
      /\[#\] wireguard-go /,
    ],
    [
      'WireGuard, as the peer is set',
      [
        '--type',
        'wireguard',
        '--peer-public-key',
        'hq97es4O1JAzBov3N2k/PtbfqQSJD6yyOhRvxekajl4=',
        '--address',
        '10.99.0.1/24',
        '--remote-subnet',
        '10.2.0.0/24',
      ],
      /\[#\] wg set /,
    ],
    [
      'WireGuard, as its route goes in',
      [
        '--type',
        'wireguard',
        '--peer-public-key',
        'hq97es4O1JAzBov3N2k/PtbfqQSJD6yyOhRvxekajl4=',
        '--address',
        '10.99.0.1/24',
        '--remote-subnet',
        '10.2.0.0/24',
      ],
      /\[#\] ip .*route replace/,
    ],
    ['IPsec, as charon starts', ['--type', 'ipsec', '--psk-file', psk, '--local-subnet', '10.1.0.0/24', '--remote-subnet', '10.2.0.0/24'], /\[#\] .*charon/],
    [
      'IPsec, as the connection is loaded',
      ['--type', 'ipsec', '--psk-file', psk, '--local-subnet', '10.1.0.0/24', '--remote-subnet', '10.2.0.0/24'],
      /\[#\] swanctl .*--load/,
    ],
  ]
  it('WireGuard killed between starting wireguard-go and recording it: "tunnel del" finds it by its mark and stops it, its device goes', () => {
    const {A, hA} = twoHosts('kp')
    const before = dump(A)
    assert.equal(hA.cli(['tunnel', 'add', 'kp', '--remote', '192.0.2.2', '--no-wait', ...cases[0][1]]).code, 0)
    // What such a kill leaves: wireguard-go runs, its pid file was never written, nor its device marked.
    rmSync(join(hA.stateDir, 'daemons', '@root', 'wireguard-go.wg-kp.pid'))
    hA.sh('ip', ['link', 'set', 'dev', 'wg-kp', 'alias', ''])
    assert.equal(hA.ipj(['link', 'show', 'dev', 'wg-kp'])[0]?.ifalias, undefined)
    assert.equal(hA.cli(['tunnel', 'del', 'kp']).code, 0)
    assert.deepEqual(hA.processes(), [], 'no wireguard-go left')
    assert.equal(dump(A), before, 'no device left')
  })

  for (const [what, flags, moment] of cases) {
    it(`${what}: "tunnel del" then removes everything it made, and a re-run converges`, async () => {
      const {A, hA} = twoHosts('k9')
      const before = dump(A)
      const child = hA.cliStart(['tunnel', 'add', 'kt', '--remote', '192.0.2.2', '--no-wait', ...flags])
      const exited = exitOf(child)
      await stderrUntil(child, moment)
      child.kill('SIGKILL')
      await exited
      assert.ok(
        hA.cli(['tunnel', 'list', '--json']).json.result.some((t: any) => t.name === 'kt'),
        'the half-made tunnel is known',
      )
      const del = hA.cli(['tunnel', 'del', 'kt'])
      assert.equal(del.code, 0, del.stderr)
      assert.equal(dump(A), before, 'links, addresses, routes, rules, xfrm as before')
      assert.deepEqual(hA.processes(), [], 'no daemon left')
      assert.deepEqual(
        filesUnder(hA.configDir).filter((f) => !f.endsWith('.key') && !f.endsWith('.pub')),
        [],
        'no config left',
      )
      const again = hA.cli(['tunnel', 'add', 'kt', '--remote', '192.0.2.2', '--no-wait', ...flags])
      assert.equal(again.code, 0, again.stderr)
      assert.equal(hA.cli(['tunnel', 'del', 'kt']).code, 0)
      assert.deepEqual(hA.processes(), [])
    })
  }
})

/** Pings from inside a host until it answers (bounded). */
async function pingFrom(h: {sh: (f: string, a: string[]) => string}, target: string): Promise<boolean> {
  for (let i = 0; i < 20; i++) {
    try {
      h.sh('ping', ['-c', '1', '-W', '1', target])
      return true
    } catch {
      await new Promise((r) => setTimeout(r, 300))
    }
  }
  return false
}
