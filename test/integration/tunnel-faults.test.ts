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
import {dump, filesUnder, skipUnlessRoot} from '../helpers/hosts.js'
import {twoHosts} from '../helpers/topology.js'

const IP = '/usr/sbin/ip'

describe('tunnel add when a change fails half way (integration)', {skip: skipUnlessRoot}, () => {
  const bin = mkdtempSync(join(tmpdir(), 'netkit-faults-'))
  after(() => rmSync(bin, {recursive: true, force: true}))
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
    const r = hA.cli(['tunnel', 'add', 'wa', '--type', 'wireguard', '--remote', '192.0.2.2', '--peer-public-key', key, '--address', '10.99.0.1/24', '--no-wait'], {env: {PATH: `${bin}:${process.env.PATH}`}})
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /^error: not permitted to change WireGuard device wg-wa/m)
    assert.equal(dump(A), before, 'no device, address or route left')
    assert.deepEqual(hA.processes(), [], 'no wireguard-go left')
    const again = hA.cli(['tunnel', 'add', 'wa', '--type', 'wireguard', '--remote', '192.0.2.2', '--peer-public-key', key, '--address', '10.99.0.1/24', '--no-wait'])
    assert.equal(again.code, 0, `a re-run without the fault works: ${again.stderr}`)
    assert.equal(hA.cli(['tunnel', 'del', 'wa']).code, 0)
    assert.deepEqual(hA.processes(), [])
  })

  it('--replace takes the old tunnel down once, as a step of the plan (a signal or a failure there is undone): its dry run prints that once', () => {
    const {hA} = twoHosts('fo')
    const add = (address: string, extra: string[] = []) => hA.cli(['tunnel', 'add', 'wo', '--type', 'wireguard', '--remote', '192.0.2.2', '--peer-public-key', 'hq97es4O1JAzBov3N2k/PtbfqQSJD6yyOhRvxekajl4=', '--address', address, '--remote-subnet', '10.2.0.0/24', '--no-wait', ...extra])
    assert.equal(add('10.99.0.1/24').code, 0)
    const dry = add('10.99.0.5/24', ['--replace', '--dry-run'])
    assert.equal(dry.code, 0, dry.stderr)
    const lines = dry.stdout.split('\n')
    for (const down of [/^kill -TERM \d+$/, /^ip route del 10\.2\.0\.0\/24 dev wg-wo /]) {
      assert.equal(lines.filter((l) => down.test(l)).length, 1, `once: ${down}\n${dry.stdout}`)
    }
    assert.equal(hA.cli(['tunnel', 'del', 'wo']).code, 0)
  })

  it('WireGuard --replace whose new tunnel cannot be made brings the old one back, running, with its old definition', async () => {
    const {hA, hB} = twoHosts('fr')
    const ka = hA.cli(['tunnel', 'pubkey', 'wr']).stdout.trim()
    const kb = hB.cli(['tunnel', 'pubkey', 'wr']).stdout.trim()
    const add = (h: typeof hA, peer: string, remote: string, address: string, extra: string[] = [], env?: Record<string, string>) =>
      h.cli(['tunnel', 'add', 'wr', '--type', 'wireguard', '--remote', remote, '--peer-public-key', peer, '--address', address, '--timeout', '10', ...extra], env ? {env} : {})
    assert.equal(add(hA, kb, '192.0.2.2', '10.99.0.1/24', ['--no-wait']).code, 0)
    const b = add(hB, ka, '192.0.2.1', '10.99.0.2/24')
    assert.equal(b.code, 0, b.stderr)
    // wireguard-go fails once (the new tunnel's start), then works (the old one's comeback).
    const bin2 = mkdtempSync(join(tmpdir(), 'netkit-faults-'))
    after(() => rmSync(bin2, {recursive: true, force: true}))
    const once = join(bin2, 'wg-once')
    writeFileSync(join(bin2, 'wireguard-go'), `#!/bin/sh\nif [ ! -e ${once} ]; then : > ${once}; echo 'failed to create TUN device' >&2; exit 1; fi\nexec /usr/bin/wireguard-go "$@"\n`)
    chmodSync(join(bin2, 'wireguard-go'), 0o755)
    const r = add(hA, kb, '192.0.2.2', '10.99.0.5/24', ['--replace', '--no-wait'], {PATH: `${bin2}:${process.env.PATH}`})
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /^error: wireguard-go did not create wg-wr/m)
    const show = hA.cli(['tunnel', 'show', 'wr', '--json']).json.result
    assert.equal(show.tunnel?.wireguard?.address ?? show.definition?.wireguard?.address ?? JSON.stringify(show).match(/"address":"([^"]+)"/)?.[1], '10.99.0.1/24', 'the stored definition is the old one')
    assert.ok(await pingFrom(hA, '10.99.0.2'), 'the old tunnel carries traffic again')
    assert.deepEqual(hA.cli(['tunnel', 'list', '--json']).json.result.map((t: any) => [t.name, t.state]), [['wr', 'up']])
    for (const h of [hA, hB]) assert.equal(h.cli(['tunnel', 'del', 'wr']).code, 0)
  })
})

describe('tunnel add killed (kill -9) at any moment (integration)', {skip: skipUnlessRoot}, () => {
  const scratch = mkdtempSync(join(tmpdir(), 'netkit-test-'))
  after(() => rmSync(scratch, {recursive: true, force: true}))
  const psk = join(scratch, 'site.psk')
  writeFileSync(psk, 'correct horse battery staple 2026\n', {mode: 0o600})
  const cases: [string, string[], RegExp][] = [
    ['WireGuard, as wireguard-go starts', ['--type', 'wireguard', '--peer-public-key', 'hq97es4O1JAzBov3N2k/PtbfqQSJD6yyOhRvxekajl4=', '--address', '10.99.0.1/24', '--remote-subnet', '10.2.0.0/24'], /\[#\] wireguard-go /],
    ['WireGuard, as the peer is set', ['--type', 'wireguard', '--peer-public-key', 'hq97es4O1JAzBov3N2k/PtbfqQSJD6yyOhRvxekajl4=', '--address', '10.99.0.1/24', '--remote-subnet', '10.2.0.0/24'], /\[#\] wg set /],
    ['WireGuard, as its route goes in', ['--type', 'wireguard', '--peer-public-key', 'hq97es4O1JAzBov3N2k/PtbfqQSJD6yyOhRvxekajl4=', '--address', '10.99.0.1/24', '--remote-subnet', '10.2.0.0/24'], /\[#\] ip .*route replace/],
    ['IPsec, as charon starts', ['--type', 'ipsec', '--psk-file', psk, '--local-subnet', '10.1.0.0/24', '--remote-subnet', '10.2.0.0/24'], /\[#\] .*charon/],
    ['IPsec, as the connection is loaded', ['--type', 'ipsec', '--psk-file', psk, '--local-subnet', '10.1.0.0/24', '--remote-subnet', '10.2.0.0/24'], /\[#\] swanctl .*--load/],
  ]
  for (const [what, flags, moment] of cases) {
    it(`${what}: "tunnel del" then removes everything it made, and a re-run converges`, async () => {
      const {A, hA} = twoHosts('k9')
      const before = dump(A)
      const child = hA.cliStart(['tunnel', 'add', 'kt', '--remote', '192.0.2.2', '--no-wait', ...flags])
      const exited = exitOf(child)
      await stderrUntil(child, moment)
      child.kill('SIGKILL')
      await exited
      assert.ok(hA.cli(['tunnel', 'list', '--json']).json.result.some((t: any) => t.name === 'kt'), 'the half-made tunnel is known')
      const del = hA.cli(['tunnel', 'del', 'kt'])
      assert.equal(del.code, 0, del.stderr)
      assert.equal(dump(A), before, 'links, addresses, routes, rules, xfrm as before')
      assert.deepEqual(hA.processes(), [], 'no daemon left')
      assert.deepEqual(filesUnder(hA.configDir).filter((f) => !f.endsWith('.key') && !f.endsWith('.pub')), [], 'no config left')
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
