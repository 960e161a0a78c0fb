import assert from 'node:assert/strict'
import type {ChildProcess} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {exitOf, stderrUntil} from '../helpers/cli.js'
import {dump, makeNs, nsName, sh, skipUnlessRoot, tryRun} from '../helpers/hosts.js'
import {bootHost, type SimHost} from '../helpers/realhost.js'

const HOST = `version: 1
tables: {vpn: 120}
links:
  - {name: br0, type: bridge}
  - {name: v0, type: veth, peer: v1, master: br0}
addresses:
  - {dev: br0, address: 10.1.0.1/24}
sysctls: {ip_forward: 1}
routes:
  - {to: 10.2.0.0/24, via: 10.1.0.254}
  - {to: 10.3.0.0/24, dev: br0, table: vpn}
rules:
  - {from: 10.1.0.0/24, table: vpn}
proxyArp:
  - {address: 10.1.0.50, dev: br0}
xfrmPolicies:
  - {src: 10.1.0.0/24, dst: 10.2.0.0/24, dir: out, tmplSrc: 192.0.2.1, tmplDst: 192.0.2.2, reqid: 3}
`

/** A program run in host h, its exit code and output (for commands expected to fail). */
const tryIn = (h: SimHost, file: string, args: string[]) => tryRun('nsenter', ['-t', String(h.pid), '-m', '-p', '-n', '-u', '--', file, ...args])

/** Namespace ns of host h exists (the host's namespaces live in its own /run/netns). */
const nsIn = (h: SimHost, ns: string) => tryIn(h, 'ip', ['netns', 'exec', ns, 'true']).code === 0

/** Pings from namespace ns of host h, retrying until it answers or the time is up. */
async function pingIn(h: SimHost, ns: string, target: string, seconds = 15): Promise<boolean> {
  const deadline = Date.now() + seconds * 1000
  for (let i = 0; i < seconds * 4 && Date.now() < deadline; i++) {
    if (tryIn(h, 'ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', '1', target]).code === 0) return true
    await new Promise((r) => setTimeout(r, 300))
  }
  return false
}

/** The pid of a process started with h.cliStart as the host sees it (what netkit itself reports). */
function hostPidOf(child: ChildProcess): number {
  const kid = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)[0]
  return Number(
    /^NSpid:\s+(.*)$/m
      .exec(readFileSync(`/proc/${kid}/status`, 'utf8'))![1]
      .trim()
      .split(/\s+/)
      .at(-1),
  )
}

/** The host's netkit ledger has no record left (missing counts as empty). */
function ledgerEmpty(h: SimHost): boolean {
  const path = join(h.stateDir, 'owned.json')
  if (!existsSync(path)) return true
  const scopes = JSON.parse(readFileSync(path, 'utf8')).scopes as Record<string, Record<string, Record<string, unknown>>>
  return Object.values(scopes).every((kinds) => Object.values(kinds).every((k) => Object.keys(k).length === 0))
}

describe('netkit apply and diff (integration)', {skip: skipUnlessRoot}, () => {
  // Each host is a simulated host (test/helpers/realhost.ts): netkit runs in it with its defaults, no --netns.
  const dir = mkdtempSync(join(tmpdir(), 'netkit-apply-'))
  after(() => rmSync(dir, {recursive: true, force: true}))
  const file = (name: string, text: string) => {
    const p = join(dir, name)
    writeFileSync(p, text)
    return p
  }
  const host = (tag: string) => bootHost(makeNs(tag))
  /** `ip -j -N ...` in host h (numbers, not the names netkit registered there). */
  const ipn = (h: SimHost, args: string[], ns?: string) => h.ipj(['-N', ...args], ns)

  it('applies a whole host, verifies it, re-applies as a no-op, applies only an edit, and removes only its own objects', () => {
    const h = host('ap')
    const N = h.ns
    const f1 = file('h1.yaml', HOST)
    const before = dump(N)
    const dry = h.cli(['apply', '-f', f1, '--dry-run'])
    assert.equal(dry.code, 0, dry.stderr)
    assert.match(dry.stdout, /^ip route add 10\.2\.0\.0\/24 via 10\.1\.0\.254 proto 178 table 254$/m)
    assert.match(dry.stdout, /^write \/etc\/iproute2\/rt_tables\.d\/netkit\.conf \(\+ 120 vpn\)$/m, 'the table name it registers, too')
    assert.equal(dump(N), before, 'a dry run changes nothing')
    const d = h.cli(['diff', '-f', f1, '--json'])
    assert.equal(d.code, 0, d.stderr)
    assert.equal(d.json.result.changes.filter((c: any) => c.action === 'add').length, 9)
    const a = h.cli(['apply', '-f', f1, '--json'])
    assert.equal(a.code, 0, a.stdout + a.stderr)
    assert.equal(a.json.result.verified, true)
    assert.equal(h.ipj(['-d', 'link', 'show', 'v0'])[0].master, 'br0')
    assert.equal(h.ipj(['route', 'show', 'table', '120'])[0].dst, '10.3.0.0/24')
    assert.deepEqual(
      ipn(h, ['rule', 'show'])
        .filter((r: any) => r.protocol === '178')
        .map((r: any) => [r.src, r.table]),
      [['10.1.0.0', '120']],
    )
    assert.equal(h.ipj(['neigh', 'show', 'proxy'])[0].dst, '10.1.0.50')
    assert.match(h.sh('ip', ['xfrm', 'policy']), /reqid 3 mode tunnel/)
    assert.equal(h.sh('sysctl', ['-n', 'net.ipv4.ip_forward']).trim(), '1')

    const again = h.cli(['apply', '-f', f1])
    assert.equal(again.code, 0)
    assert.match(again.stdout, /already matches .*nothing to do/)
    assert.equal(again.stderr.includes('[#]'), false, 'nothing was run')

    // A foreign route next to ours is never touched.
    h.sh('ip', ['route', 'add', '10.9.0.0/24', 'dev', 'br0'])
    const f2 = file(
      'h2.yaml',
      HOST.replace('{name: v0, type: veth, peer: v1, master: br0}', '{name: v0, type: veth, peer: v1, master: br0, mtu: 1400}').replace(/proxyArp:\n.*\n/, ''),
    )
    const e = h.cli(['apply', '-f', f2, '--json'])
    assert.equal(e.code, 0, e.stdout + e.stderr)
    assert.deepEqual(e.json.result.changes.map((c: any) => [c.action, c.object]).sort(), [
      ['change', 'veth link v0'],
      ['remove', 'proxy entry 10.1.0.50 on br0'],
    ])
    assert.equal(h.ipj(['link', 'show', 'v0'])[0].mtu, 1400)
    assert.deepEqual(h.ipj(['neigh', 'show', 'proxy']), [])
    assert.equal(h.ipj(['route', 'show', '10.9.0.0/24']).length, 1, 'the foreign route stays')
    assert.deepEqual(
      e.json.result.foreign,
      [{kind: 'route', object: 'route 10.9.0.0/24'}],
      'and is reported (not the routes the kernel made for the addresses)',
    )
    assert.match(h.cli(['diff', '-f', f2]).stdout, /left alone, not netkit's and not in the file: 1 object\n  route 10\.9\.0\.0\/24/)

    // export writes netkit's state as a host file that makes the same host elsewhere.
    const noDir = h.cli(['export', '-o', join(dir, 'no-such-dir', 'x.yaml')])
    assert.equal(noDir.code, 2)
    assert.match(noDir.stderr, /^error: -o \S+: the directory \S+no-such-dir does not exist/)
    assert.equal(existsSync(join(dir, 'no-such-dir')), false, 'and it is not made')
    const exported = h.cli(['export'])
    assert.equal(exported.code, 0, exported.stderr)
    assert.doesNotMatch(exported.stdout, /10\.9\.0\.0/, 'foreign objects are not exported')
    const m = host('am')
    const copy = file('exported.yaml', exported.stdout)
    const r = m.cli(['apply', '-f', copy])
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.match(m.cli(['diff', '-f', copy]).stdout, /the host matches/, 'the copy matches its file')
    assert.match(m.cli(['diff', '-f', '-'], {input: exported.stdout}).stdout, /the host matches the file on standard input/, 'export | diff -f - works too')
    assert.equal(m.ipj(['link', 'show', 'v0'])[0].master, 'br0')
    assert.equal(m.ipj(['link', 'show', 'v0'])[0].mtu, 1400)
    assert.equal(m.ipj(['route', 'show', 'table', '120'])[0].dst, '10.3.0.0/24')
  })

  it('an unchanged file on an unchanged host is known from digests; any change on the host, its own or foreign, is compared again', () => {
    const h = host('ad')
    const N = h.ns
    const f1 = file('m1.yaml', HOST)
    const apply = () => {
      const r = h.cli(['apply', '-f', f1, '--json'])
      assert.equal(r.code, 0, r.stdout + r.stderr)
      return r.json.result
    }
    assert.equal(apply().changed, true)
    const memo = apply()
    assert.deepEqual([memo.changed, memo.memo, memo.unchanged], [false, true, 10], 'the no-op comes from the digests')
    assert.match(h.cli(['apply', '-f', f1]).stdout, /already matches .*exactly as the last verified apply left them/)

    // One of apply's routes removed behind its back: compared again, and only that route is made again.
    h.sh('ip', ['route', 'del', '10.2.0.0/24'])
    const healed = apply()
    assert.equal(healed.memo, undefined)
    assert.deepEqual(
      healed.changes.map((c: any) => [c.action, c.object]),
      [['add', 'route 10.2.0.0/24']],
    )
    assert.equal(h.ipj(['route', 'show', '10.2.0.0/24']).length, 1)
    assert.equal(apply().memo, true)

    // A sysctl changed behind its back is put back.
    h.sh('sysctl', ['-qw', 'net.ipv4.ip_forward=0'])
    assert.deepEqual(
      apply().changes.map((c: any) => [c.action, c.kind]),
      [['change', 'sysctl']],
    )
    assert.equal(h.sh('sysctl', ['-n', 'net.ipv4.ip_forward']).trim(), '1')

    // A foreign route: compared again, nothing to do, and the next run is known again.
    h.sh('ip', ['route', 'add', '10.9.0.0/24', 'dev', 'br0'])
    const foreign = apply()
    assert.deepEqual([foreign.changed, foreign.memo], [false, undefined])
    assert.equal(apply().memo, true)

    // The file edited (even only its text): parsed and compared.
    writeFileSync(f1, HOST + '# a comment\n')
    assert.equal(apply().memo, undefined)

    // A namespace the file makes, deleted behind its back: made again (its reads fail, and the comparison runs).
    const C = nsName('aq')
    writeFileSync(
      f1,
      `version: 1\nnamespaces:\n  ${C}:\n    links: [{name: d0, type: bridge}]\n    xfrmPolicies: [{src: 10.1.0.0/24, dst: 10.2.0.0/24, dir: out}]\n`,
    )
    // Without br0 in the file, br0 would go, and the kernel would take the foreign route on it: refused, nothing changed.
    const beforeRefusal = dump(N)
    const refused = h.cli(['apply', '-f', f1])
    assert.equal(refused.code, 1, refused.stderr)
    assert.match(refused.stderr, /^error: removing bridge link br0 would also delete route 10\.9\.0\.0\/24 \(not netkit's\): the kernel deletes them with it/m)
    assert.equal(dump(N), beforeRefusal)
    assert.equal(nsIn(h, C), false, 'not even the new namespace')
    h.sh('ip', ['route', 'del', '10.9.0.0/24'])
    assert.equal(apply().changed, true)
    assert.equal(apply().memo, true)
    h.sh('ip', ['netns', 'del', C])
    const back = apply()
    assert.deepEqual(
      back.changes.map((c: any) => c.action),
      ['add', 'add', 'add'],
    )
    assert.equal(h.ipj(['link', 'show', 'd0'], C).length, 1)
  })

  it('IPv6 rules, with an address or only a mark, are made with ip -6, verified, exported and removed', () => {
    const h = host('a6')
    const f = file(
      'r6.yaml',
      'version: 1\ntables: {vpn6: 121}\nrules:\n  - {from: "fd00::/64", table: vpn6}\n  - {family: 6, fwmark: "0x5", table: vpn6, priority: 900}\n  - {fwmark: "0x5", table: vpn6, priority: 900}\n',
    )
    const r = h.cli(['apply', '-f', f, '--json'])
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.equal(r.json.result.verified, true)
    const mine = (args: string[]) =>
      ipn(h, args)
        .filter((x: any) => x.protocol === '178')
        .map((x: any) => [x.src, x.fwmark, x.table])
    assert.deepEqual(mine(['-6', 'rule', 'show']), [
      ['all', '0x5', '121'],
      ['fd00::', undefined, '121'],
    ])
    assert.deepEqual(mine(['rule', 'show']), [['all', '0x5', '121']])
    const ex = h.cli(['export', '--json']).json.result
    assert.deepEqual(
      ex.rules.map((x: any) => [x.family, x.from, x.fwmark]).sort(),
      [
        [6, undefined, '0x5'],
        [undefined, 'fd00::/64', undefined],
        [undefined, undefined, '0x5'],
      ].sort(),
    )
    assert.equal(h.cli(['apply', '-f', file('none6.yaml', 'version: 1\n')]).code, 0)
    assert.deepEqual([mine(['-6', 'rule', 'show']), mine(['rule', 'show'])], [[], []])
  })

  const hasKernelEsp = existsSync('/sys/module/esp4')
  const saFile = (N: string, key: string) => {
    const k = join(dir, `${N}.hex`)
    writeFileSync(k, `${key}\n`, {mode: 0o600})
    return file(
      `${N}-sa.yaml`,
      `version: 1\nroutes: [{to: 10.7.0.0/24, dev: lo}]\nxfrmStates:\n  - {src: 192.0.2.1, dst: 192.0.2.2, spi: 0x1000, reqid: 7, aead: {alg: "rfc4106(gcm(aes))", keyFile: ${k}}}\n`,
    )
  }
  const KEY = '0x' + 'ab'.repeat(36)

  it(
    'SAs on a kernel without ESP: the dry run refuses them as apply does, before changing anything',
    {skip: hasKernelEsp ? 'the kernel has ESP' : false},
    () => {
      const h = host('ae')
      const N = h.ns
      const f = saFile(N, KEY)
      const before = dump(N)
      const dry = h.cli(['apply', '-f', f, '--dry-run', '--json'])
      assert.equal(dry.code, 1, dry.stdout + dry.stderr)
      assert.equal(dry.json.error.code, 'E_NO_ESP')
      const r = h.cli(['apply', '-f', f, '--json'])
      assert.equal(r.code, 1, r.stdout + r.stderr)
      assert.equal(r.json.error.code, 'E_NO_ESP')
      assert.equal(dump(N), before, 'nothing changed, not even the route before it')
      assert.ok(![dry.stdout, dry.stderr, r.stdout, r.stderr].join('').includes('abababab'), 'the key is never shown')
    },
  )

  it(
    'SAs on a kernel with ESP: made, verified, a new key replaces the SA, exported with its key file, removed',
    {skip: hasKernelEsp ? false : 'this kernel has no ESP (CONFIG_INET_ESP)'},
    () => {
      const h = host('ae')
      const N = h.ns
      const f = saFile(N, KEY)
      const dry = h.cli(['apply', '-f', f, '--dry-run'])
      assert.equal(dry.code, 0, dry.stderr)
      assert.match(
        dry.stdout,
        /xfrm state add src 192\.0\.2\.1 dst 192\.0\.2\.2 proto esp spi 0x1000 mode tunnel reqid 7 aead 'rfc4106\(gcm\(aes\)\)' <redacted> 128/,
      )
      assert.ok(!(dry.stdout + dry.stderr).includes('abababab'), 'the dry run shows the key redacted')
      assert.equal(h.cli(['apply', '-f', f]).code, 0)
      assert.match(h.sh('ip', ['xfrm', 'state']), /spi 0x00001000 reqid 7 mode tunnel[\s\S]*rfc4106\(gcm\(aes\)\)/)
      assert.match(h.cli(['apply', '-f', f]).stdout, /already matches/)
      const g = saFile(N, '0x' + 'cd'.repeat(36))
      const c = h.cli(['apply', '-f', g, '--json'])
      assert.deepEqual(
        c.json.result.changes.map((x: any) => [x.action, x.why]),
        [['change', 'its key differs']],
      )
      assert.match(h.sh('ip', ['xfrm', 'state']), /0xcdcdcdcd/)
      assert.match(h.cli(['export']).stdout, new RegExp(`keyFile: ${join(dir, N)}\\.hex`))
      assert.equal(h.cli(['apply', '-f', file('none-sa.yaml', 'version: 1\n')]).code, 0)
      assert.equal(h.sh('ip', ['xfrm', 'state']).trim(), '')
    },
  )

  it('a failure halfway leaves the host exactly as before', () => {
    const h = host('af')
    const N = h.ns
    const f1 = file('f1.yaml', HOST)
    assert.equal(h.cli(['apply', '-f', f1]).code, 0)
    const before = dump(N)
    const fwd = h.sh('sysctl', ['-n', 'net.ipv4.ip_forward'])
    const bad = file(
      'f2.yaml',
      HOST.replace('{ip_forward: 1}', '{ip_forward: 0}').replace(
        '  - {to: 10.3.0.0/24, dev: br0, table: vpn}\n',
        '  - {to: 10.3.0.0/24, dev: br0, table: vpn}\n  - {to: 10.4.0.0/24, via: 10.99.0.1}\n',
      ),
    )
    const r = h.cli(['apply', '-f', bad])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /^error: the gateway of route 10\.4\.0\.0\/24 is not reachable/m)
    assert.equal(dump(N), before, 'links, addresses, routes, rules, proxies and xfrm as before')
    assert.equal(h.sh('sysctl', ['-n', 'net.ipv4.ip_forward']), fwd, 'and the sysctl too')
    assert.match(h.cli(['diff', '-f', f1]).stdout, /the host matches/)
  })

  it('--try rolls back unless confirmed, and keeps the change when confirmed', () => {
    const h = host('at')
    const N = h.ns
    const f1 = file('t1.yaml', HOST)
    const before = dump(N)
    const no = h.cli(['apply', '-f', f1, '--try', '2'], {input: 'n\n'})
    assert.equal(no.code, 1, 'not kept: exit 1, so that "apply --try && ..." stops')
    assert.match(no.stdout, /not confirmed in time: rolled back/)
    assert.equal(dump(N), before, 'rolled back')
    const silent = h.cli(['apply', '-f', f1, '--try', '1', '--json'], {input: ''})
    assert.equal(silent.code, 1)
    assert.deepEqual([silent.json.result.kept, silent.json.result.rolledBack], [false, true])
    const yes = h.cli(['apply', '-f', f1, '--try', '5'], {input: 'y\n'})
    assert.equal(yes.code, 0, yes.stderr)
    assert.match(yes.stdout, /applied \d+ changes/)
    assert.notEqual(tryRun('ip', ['-n', N, 'link', 'show', 'br0']).code, 1)
    assert.match(h.cli(['diff', '-f', f1]).stdout, /the host matches/)
  })

  it('an undone apply keeps the WireGuard key pair "tunnel pubkey" made before it (a fleet has its public key)', () => {
    const h = host('ak')
    const before = h.cli(['tunnel', 'pubkey', 'mesh'])
    assert.equal(before.code, 0, before.stderr)
    const f = file('k.yaml', 'version: 1\ntunnels:\n  mesh: {type: wireguard, address: 10.98.0.1/24, listenPort: 51900, peers: {}}\n')
    const r = h.cli(['apply', '-f', f, '--try', '1', '--json'], {input: ''})
    assert.equal(r.code, 1, r.stderr)
    assert.equal(r.json.result.rolledBack, true)
    assert.deepEqual(h.cli(['tunnel', 'list', '--json']).json.result, [], 'the tunnel is gone')
    assert.equal(h.cli(['tunnel', 'pubkey', 'mesh']).stdout, before.stdout, 'the same key pair')
  })

  it('a signal while --try waits (Ctrl-C; a hangup with the terminal gone, as when SSH drops) undoes the change', async () => {
    const h = host('as')
    const N = h.ns
    const f1 = file('s1.yaml', HOST)
    const before = dump(N)
    const fwd = h.sh('sysctl', ['-n', 'net.ipv4.ip_forward'])
    for (const [signal, gone] of [
      ['SIGINT', false],
      ['SIGHUP', true],
    ] as const) {
      const child = h.cliStart(['apply', '-f', f1, '--try', '60'])
      const exited = exitOf(child)
      const err = stderrUntil(child, /keep these changes\?/)
      await err
      assert.notEqual(dump(N), before, 'applied, waiting for the answer')
      let rest = ''
      child.stderr!.on('data', (d: Buffer) => (rest += d))
      if (gone) {
        child.stdout!.destroy()
        child.stderr!.destroy()
      }
      child.kill(signal)
      assert.equal(await exited, 1, `${signal}: exits 1, not killed by the signal`)
      if (!gone) assert.match(rest, /^error: interrupted; what was already done has been undone/m)
      assert.equal(dump(N), before, `${signal}: links, addresses, routes, rules, proxies and xfrm as before`)
      assert.equal(h.sh('sysctl', ['-n', 'net.ipv4.ip_forward']), fwd, `${signal}: the sysctl too`)
    }
    assert.ok(ledgerEmpty(h), "and apply's ledger holds nothing of it")
  })

  it('an undo that cannot bring everything back says what stayed gone, instead of "undone"', async () => {
    const h = host('ag')
    h.sh('ip', ['route', 'add', '10.77.0.0/24', 'dev', 'lo'])
    const child = h.cliStart(['apply', '-f', file('g.yaml', 'version: 1\nlinks: [{name: g0, type: bridge}]\n'), '--try', '60'])
    const exited = exitOf(child)
    let err = ''
    child.stderr!.on('data', (d: Buffer) => (err += d))
    await stderrUntil(child, /keep these changes\?/)
    // Something goes while the change waits for its answer: no undo can bring it back.
    h.sh('ip', ['route', 'del', '10.77.0.0/24', 'dev', 'lo'])
    child.kill('SIGINT')
    assert.equal(await exited, 1)
    assert.match(
      err,
      /^error: interrupted; undoing could not bring back route 10\.77\.0\.0\/24 \(the kernel deleted it along with something the change removed\); put them back by hand/m,
    )
    assert.notEqual(tryIn(h, 'ip', ['link', 'show', 'g0']).code, 0, 'the change itself was undone')
  })

  it('one apply at a time: another is refused while one waits for --try, and a lock whose holder is gone is taken over', async () => {
    const h = host('al')
    const N = h.ns
    // The second apply targets a namespace of the same host: the lock is the host's, whatever the apply's target.
    const M = nsName('am')
    h.sh('ip', ['netns', 'add', M])
    const f1 = file('l1.yaml', HOST)
    const f2 = file('l2.yaml', 'version: 1\nlinks:\n  - {name: br9, type: bridge}\n')
    const first = h.cliStart(['apply', '-f', f1, '--try', '60'])
    const exited = exitOf(first)
    await stderrUntil(first, /keep these changes\?/)
    const firstPid = hostPidOf(first)
    const before = dump(M, h.sh)
    const second = h.cli(['apply', '-f', f2, '--netns', M, '--json'])
    assert.equal(second.code, 1, second.stdout + second.stderr)
    assert.equal(second.json.error.code, 'E_BUSY')
    assert.equal(
      second.json.error.message,
      `another netkit command is changing this host (pid ${firstPid}: netkit apply -f ${f1}, since ${second.json.error.message.match(/since (\S+) UTC/)[1]} UTC)`,
    )
    assert.equal(dump(M, h.sh), before, 'the second changed nothing')
    assert.equal(h.cli(['diff', '-f', f2, '--netns', M]).code, 0, 'diff reads on (it takes no lock)')
    assert.equal(h.cli(['apply', '-f', f2, '--netns', M, '--dry-run']).code, 0, 'nor does a dry run')
    first.stdin!.end('y\n')
    assert.equal(await exited, 0)
    assert.match(h.cli(['diff', '-f', f1]).stdout, /the host matches/, 'the first kept its change')
    const lock = join(h.stateDir, 'netkit.lock')
    assert.equal(existsSync(lock), false, 'and let go of the lock')

    // A lock left by a process that is gone (a crash, kill -9): the next apply takes it.
    writeFileSync(lock, JSON.stringify({pid: firstPid, started: '1', since: new Date().toISOString(), what: 'a crashed apply'}))
    const third = h.cli(['apply', '-f', f2, '--netns', M])
    assert.equal(third.code, 0, third.stderr)
    assert.equal(h.ipj(['link', 'show', 'br9'], M).length, 1)
    assert.equal(existsSync(lock), false)
  })

  it("removing a file's address is refused while another tool's secondary address of its subnet would go with it", () => {
    const h = host('a2')
    const N = h.ns
    const withAddr = file('sec1.yaml', 'version: 1\nlinks: [{name: b0, type: bridge}]\naddresses: [{dev: b0, address: 10.5.0.1/24}]\n')
    const without = file('sec2.yaml', 'version: 1\nlinks: [{name: b0, type: bridge}]\n')
    assert.equal(h.cli(['apply', '-f', withAddr]).code, 0)
    h.sh('ip', ['addr', 'add', '10.5.0.7/24', 'dev', 'b0'])
    const before = dump(N)
    const r = h.cli(['apply', '-f', without])
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /^error: removing address 10\.5\.0\.1\/24 on b0 would delete 10\.5\.0\.7\/24 too/m)
    assert.equal(dump(N), before, 'nothing changed, the secondary address is still there')
    h.sh('ip', ['addr', 'del', '10.5.0.7/24', 'dev', 'b0'])
    assert.equal(h.cli(['apply', '-f', without]).code, 0)
    assert.deepEqual(h.ipj(['-4', 'addr', 'show', 'b0'])[0]?.addr_info ?? [], [])
  })

  it('what the kernel deletes along with a change: made again when the file keeps it (a route through a renumbered subnet), refused when it cannot be (what sits on a veth that goes)', () => {
    const h = host('ak')
    const N = h.ns
    const C = nsName('al')
    const hostFile = (addr: string, withVeth = true) =>
      file(
        'k.yaml',
        `version: 1
links:
  - {name: br0, type: bridge}
${withVeth ? `  - {name: c0, type: veth, peer: eth0, peerNetns: ${C}}\n` : ''}addresses: [{dev: br0, address: ${addr}}]
routes: [{to: 10.2.0.0/24, via: 10.1.0.254}]
namespaces:
  ${C}:
    addresses: ${withVeth ? '[{dev: eth0, address: 10.8.0.2/24}]' : '[]'}
`,
      )
    assert.equal(h.cli(['apply', '-f', hostFile('10.1.0.1/24')]).code, 0)
    // Renumbering br0 within its subnet: the route through it, which the file keeps, is taken away first and made again after.
    const renumbered = h.cli(['apply', '-f', hostFile('10.1.0.5/24'), '--json'])
    assert.equal(renumbered.code, 0, renumbered.stdout + renumbered.stderr)
    assert.deepEqual(
      renumbered.json.result.changes.map((c: any) => `${c.action} ${c.object}`),
      ['remove route 10.2.0.0/24', 'remove address 10.1.0.1/24 on br0', 'add address 10.1.0.5/24 on br0', 'add route 10.2.0.0/24'],
    )
    assert.equal(h.ipj(['route', 'show', '10.2.0.0/24'])[0]?.gateway, '10.1.0.254')
    assert.match(h.cli(['diff', '-f', hostFile('10.1.0.5/24')]).stdout, /the host matches/)
    const before = [dump(N), dump(C, h.sh)]
    // The veth goes but the file keeps the address on its far end (in the other namespace).
    const r = h.cli([
      'apply',
      '-f',
      file(
        'k2.yaml',
        `version: 1\nlinks: [{name: br0, type: bridge}]\naddresses: [{dev: br0, address: 10.1.0.1/24}]\nroutes: [{to: 10.2.0.0/24, via: 10.1.0.254}]\nnamespaces:\n  ${C}:\n    addresses: [{dev: eth0, address: 10.8.0.2/24}]\n`,
      ),
    ])
    assert.equal(r.code, 1, r.stderr)
    assert.match(
      r.stderr,
      new RegExp(`^error: removing veth link c0 would also delete address 10\\.8\\.0\\.2/24 on eth0 in namespace ${C} \\(the file keeps it\\)`, 'm'),
    )
    assert.deepEqual([dump(N), dump(C, h.sh)], before, 'nothing changed')
    assert.equal(h.cli(['apply', '-f', hostFile('10.1.0.1/24', false)]).code, 0, 'without the veth and what was on it: fine')
    assert.equal(h.ipj(['route', 'show', '10.2.0.0/24'])[0]?.gateway, '10.1.0.254', 'renumbered back, the route made again')
    // A veth made again (its peer's name changes): its address and the route through it come back with it.
    const pair = (peer: string) =>
      file(
        'p.yaml',
        `version: 1\nlinks: [{name: va, type: veth, peer: ${peer}}]\naddresses: [{dev: va, address: 10.7.0.1/24}]\nroutes: [{to: 10.8.0.0/24, via: 10.7.0.2}]\n`,
      )
    assert.equal(h.cli(['apply', '-f', pair('vb')]).code, 0)
    const again = h.cli(['apply', '-f', pair('vc')])
    assert.equal(again.code, 0, again.stderr)
    assert.equal(h.ipj(['-d', 'link', 'show', 'va'])[0].linkinfo.info_kind, 'veth')
    assert.equal(h.ipj(['link', 'show', 'vc']).length, 1)
    assert.equal(h.ipj(['route', 'show', '10.8.0.0/24'])[0]?.gateway, '10.7.0.2')
    assert.match(h.cli(['diff', '-f', pair('vc')]).stdout, /the host matches/)
  })

  it('undoing the removal of a veth whose far end is in another namespace makes the pair again', () => {
    const h = host('au')
    const C = nsName('av')
    const f1 = file('u1.yaml', `version: 1\nlinks: [{name: c0, type: veth, peer: eth0, peerNetns: ${C}}]\nnamespaces:\n  ${C}: {}\n`)
    assert.equal(h.cli(['apply', '-f', f1]).code, 0)
    // c0 leaves the file, and a route that cannot be made fails the apply after c0 was deleted.
    const f2 = file('u2.yaml', `version: 1\nroutes: [{to: 10.9.0.0/24, via: 172.31.0.1}]\nnamespaces:\n  ${C}: {}\n`)
    const r = h.cli(['apply', '-f', f2])
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /\[#\] ip link del c0/)
    assert.equal(h.ipj(['-d', 'link', 'show', 'c0'])[0]?.ifalias, 'netkit', 'c0 is back')
    assert.equal(h.ipj(['-d', 'link', 'show', 'eth0'], C)[0]?.ifalias, 'netkit', 'and its far end, by its name, in its namespace')
    assert.match(h.cli(['diff', '-f', f1]).stdout, /the host matches/)
  })

  it("a veth made from a later namespace of the file carries an earlier namespace's address on its far end", () => {
    const h = host('aw')
    const [X, Y] = [nsName('ax'), nsName('ay')]
    const f = file(
      'w.yaml',
      `version: 1\nnamespaces:\n  ${X}:\n    addresses: [{dev: ua, address: 10.6.0.1/24}]\n  ${Y}:\n    links: [{name: ub, type: veth, peer: ua, peerNetns: ${X}}]\n    addresses: [{dev: ub, address: 10.6.0.2/24}]\n`,
    )
    const r = h.cli(['apply', '-f', f])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(h.sh('ip', ['netns', 'exec', Y, 'ping', '-c', '1', '-W', '2', '10.6.0.1']).includes('1 received'), true)
    assert.match(h.cli(['diff', '-f', f]).stdout, /the host matches/)
  })

  it("a bridge keeps the file's MTU when its ports join, and a veth's MTU change reaches both ends", () => {
    const h = host('am')
    const C = nsName('an')
    const f = (mtu: number) =>
      file(
        'mtu.yaml',
        `version: 1\nlinks:\n  - {name: br0, type: bridge, mtu: 1400}\n  - {name: vx, type: veth, peer: vb, master: br0}\n  - {name: c0, type: veth, peer: eth0, peerNetns: ${C}, mtu: ${mtu}}\nnamespaces:\n  ${C}: {}\n`,
      )
    const r = h.cli(['apply', '-f', f(1500)])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(h.ipj(['link', 'show', 'br0'])[0].mtu, 1400)
    assert.equal(h.cli(['apply', '-f', f(1300)]).code, 0)
    assert.deepEqual([h.ipj(['link', 'show', 'c0'])[0].mtu, h.ipj(['link', 'show', 'eth0'], C)[0].mtu], [1300, 1300])
  })

  it("a sysctl that leaves the file gets back each namespace's own value, also in a namespace the file made", () => {
    const h = host('as2')
    const C = nsName('at')
    const control = nsName('at2')
    h.sh('ip', ['netns', 'add', control])
    const key = 'net.ipv4.conf.all.rp_filter'
    const value = (ns?: string) => (ns ? h.sh('ip', ['netns', 'exec', ns, 'sysctl', '-n', key]) : h.sh('sysctl', ['-n', key])).trim()
    const fresh = value(control)
    h.sh('ip', ['netns', 'del', control])
    h.sh('sysctl', ['-qw', `${key}=1`])
    const f1 = file('sc1.yaml', `version: 1\nsysctls: {${key}: 2}\nnamespaces:\n  ${C}:\n    sysctls: {${key}: 2}\n`)
    assert.equal(h.cli(['apply', '-f', f1]).code, 0)
    assert.deepEqual([value(), value(C)], ['2', '2'])
    const f2 = file('sc2.yaml', `version: 1\nnamespaces:\n  ${C}: {}\n`)
    const r = h.cli(['apply', '-f', f2])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual([value(), value(C)], ['1', fresh], 'each namespace back to what it had before apply set it')
  })

  it('a namespace the file did not make but filled: when it leaves the file, what this apply made there goes, not what another apply made', () => {
    const h = host('ah')
    const X = nsName('ai')
    h.sh('ip', ['netns', 'add', X])
    const f1 = file('h1x.yaml', `version: 1\nnamespaces:\n  ${X}:\n    links: [{name: d0, type: bridge}]\n    routes: [{to: 10.45.0.0/24, dev: d0}]\n`)
    assert.equal(h.cli(['apply', '-f', f1]).code, 0)
    assert.equal(
      h.cli(['apply', '-f', file('other.yaml', 'version: 1\nlinks: [{name: d1, type: bridge}]\n'), '--netns', X]).code,
      0,
      'another apply, run in that namespace',
    )
    assert.equal(h.ipj(['link', 'show', 'd0'], X).length, 1, "and that apply leaves d0 alone: it is the first apply's")
    const r = h.cli(['apply', '-f', file('h2x.yaml', 'version: 1\n'), '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(r.json.result.changes.map((c: any) => [c.action, c.object, c.netns]).sort(), [
      ['remove', 'bridge link d0', X],
      ['remove', 'route 10.45.0.0/24', X],
    ])
    assert.notEqual(tryIn(h, 'ip', ['-n', X, 'link', 'show', 'd0']).code, 0, 'd0 is gone')
    assert.equal(h.ipj(['link', 'show', 'd1'], X).length, 1, "the other apply's d1 stays")
    assert.match(h.cli(['apply', '-f', file('h2x.yaml', 'version: 1\n')]).stdout, /already matches/)
  })

  it('a whole site from one file: a container namespace, a veth into it, a WireGuard tunnel; a file without them removes them all', async () => {
    const A = makeNs('sa')
    const B = makeNs('sb')
    sh('ip', ['-n', A, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u0', 'netns', B])
    sh('ip', ['-n', A, 'addr', 'add', '192.0.2.1/24', 'dev', 'u0'])
    sh('ip', ['-n', B, 'addr', 'add', '192.0.2.2/24', 'dev', 'u0'])
    sh('ip', ['-n', A, 'link', 'set', 'u0', 'up'])
    sh('ip', ['-n', B, 'link', 'set', 'u0', 'up'])
    const [hA, hB] = [bootHost(A), bootHost(B)]
    const ctr = {[A]: nsName('sc'), [B]: nsName('sd')}
    const before = dump(A)
    const key = (h: SimHost) => h.cli(['tunnel', 'pubkey', 't1']).stdout.trim()
    const [ka, kb] = [key(hA), key(hB)]
    const keyFileA = join(hA.configDir, 'secrets', 't1.key')
    const site = (me: string, n: number, peerIp: string, myIp: string, peerKey: string) => `version: 1
namespaces:
  ${ctr[me]}:
    addresses: [{dev: eth0, address: 10.${n}.0.2/24}]
    routes: [{to: default, via: 10.${n}.0.1}]
links:
  - {name: c0, type: veth, peer: eth0, peerNetns: ${ctr[me]}}
addresses: [{dev: c0, address: 10.${n}.0.1/24}]
sysctls: {ip_forward: 1}
tunnels:
  t1: {type: wireguard, local: ${myIp}, remote: ${peerIp}, address: 10.99.0.${n}/24, localSubnets: [10.${n}.0.0/24], remoteSubnets: [10.${3 - n}.0.0/24], peerPublicKey: "${peerKey}"}
`
    const fa = file('site-a.yaml', site(A, 1, '192.0.2.2', '192.0.2.1', kb))
    const fb = file('site-b.yaml', site(B, 2, '192.0.2.1', '192.0.2.2', ka))
    const a = hA.cli(['apply', '-f', fa, '--json'])
    assert.equal(a.code, 0, a.stdout + a.stderr)
    assert.equal(a.json.result.verified, true)
    assert.deepEqual(
      a.json.result.changes.map((c: any) => `${c.action} ${c.kind}${c.netns ? ' in ' + c.netns : ''}`).sort(),
      ['add addr', `add addr in ${ctr[A]}`, 'add link', 'add netns', `add route in ${ctr[A]}`, 'change sysctl', 'add tunnel'].sort(),
    )
    assert.ok(!JSON.stringify(a.json).includes(sh('cat', [keyFileA]).trim()), 'no private key in --json')
    const b = hB.cli(['apply', '-f', fb])
    assert.equal(b.code, 0, b.stdout + b.stderr)
    assert.equal(hA.ipj(['addr', 'show', 'eth0'], ctr[A])[0].addr_info.find((x: any) => x.family === 'inet').local, '10.1.0.2')
    assert.equal(hA.ipj(['-d', 'link', 'show', 'c0'])[0].ifalias, 'netkit')
    assert.ok(await pingIn(hA, ctr[A], '10.2.0.2'), 'the container on site A reaches the one on site B through the tunnel the files made')
    const again = hA.cli(['apply', '-f', fa])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /already matches .* nothing to do/)
    assert.doesNotMatch(again.stdout, /exactly as the last verified apply/, 'a file with tunnels is always compared')

    // export writes the site back as a host file: the namespace with its contents, the veth into it, the tunnel (keys by path, never inline).
    const ex = hA.cli(['export', '--json'])
    assert.equal(ex.code, 0, ex.stderr)
    const doc = ex.json.result
    assert.deepEqual(doc.namespaces[ctr[A]], {addresses: [{dev: 'eth0', address: '10.1.0.2/24'}], routes: [{to: 'default', via: '10.1.0.1', dev: 'eth0'}]})
    assert.deepEqual(doc.links, [{name: 'c0', type: 'veth', peer: 'eth0', peerNetns: ctr[A], mtu: 1500, up: true}])
    assert.deepEqual(Object.keys(doc.tunnels), ['t1'])
    assert.deepEqual(
      [doc.tunnels.t1.type, doc.tunnels.t1.remote, doc.tunnels.t1.peerPublicKey, doc.tunnels.t1.address],
      ['wireguard', '192.0.2.2', kb, '10.99.0.1/24'],
    )
    assert.equal(JSON.stringify(doc).includes(sh('cat', [keyFileA]).trim()), false, 'no private key in the export')
    assert.equal(JSON.stringify(doc).includes('wg-t1'), false, "the tunnel's device, address and routes come with the tunnel")
    const yamlOut = hA.cli(['export'])
    const roundTrip = hA.cli(['diff', '-f', file('exported-site.yaml', yamlOut.stdout)])
    assert.equal(roundTrip.code, 0, roundTrip.stderr)
    assert.match(roundTrip.stdout, /the host matches/, 'the exported file describes this site exactly')

    // A tunnel that is down (device and daemon gone, definition kept) is brought up by the same file.
    assert.equal(hA.cli(['tunnel', 'down', 't1']).code, 0)
    const down = hA.cli(['diff', '-f', fa, '--json'])
    assert.deepEqual(
      down.json.result.changes.map((c: any) => [c.action, c.object, c.why]),
      [['change', 'wireguard tunnel t1', 'it is down']],
    )
    const up = hA.cli(['apply', '-f', fa])
    assert.equal(up.code, 0, up.stdout + up.stderr)
    assert.match(up.stdout, /applied 1 change \(0 added, 1 changed, 0 removed\), verified/)
    assert.ok(await pingIn(hA, ctr[A], '10.2.0.2'), 'traffic flows again')

    // The same file with the tunnel's peer unreachable: the namespace and veth made before the tunnel fails are undone.
    hB.cli(['apply', '-f', file('empty.yaml', 'version: 1\n')])
    const gone = hA.cli(['apply', '-f', file('empty.yaml', 'version: 1\n'), '--json'])
    assert.equal(gone.code, 0, gone.stdout + gone.stderr)
    assert.equal(tryIn(hA, 'ip', ['netns', 'pids', ctr[A]]).code, 1, 'the container namespace is gone')
    assert.equal(dump(A), before, 'site A is exactly as before the first apply')
    const unreachable = file('bad-peer.yaml', site(A, 1, '203.0.113.9', '192.0.2.1', kb))
    const f = hA.cli(['apply', '-f', unreachable])
    assert.equal(f.code, 1, f.stdout + f.stderr)
    assert.match(f.stderr, /203\.0\.113\.9/)
    assert.equal(tryIn(hA, 'ip', ['netns', 'pids', ctr[A]]).code, 1, 'the namespace made before the failure is gone')
    assert.equal(dump(A), before, 'and site A is as before')
  })

  it('a foreign object in the way is an error and nothing changes; a bad file exits 2 naming the entry', () => {
    const h = host('ax')
    const N = h.ns
    h.sh('ip', ['link', 'add', 'br0', 'type', 'bridge'])
    h.sh('ip', ['link', 'set', 'br0', 'mtu', '1280'])
    const before = dump(N)
    const f = file('x.yaml', 'version: 1\nlinks:\n  - {name: br0, type: bridge, mtu: 1500}\n')
    const r = h.cli(['apply', '-f', f])
    assert.equal(r.code, 1)
    assert.match(
      r.stderr,
      /^error: bridge link br0 is there and differs from the file \(mtu 1280, not 1500; up false, not true\), and netkit's apply did not make it/,
    )
    assert.equal(dump(N), before)
    for (const [text, re] of [
      ['routes:\n  - {to: 10.2.0.1/24, dev: lo}\n', /routes\.0\.to: .*host bits set/],
      ['links:\n  - {name: a-name-of-16-chr, type: bridge}\n', /links\.0\.name: /],
      ['rules:\n  - {table: 100}\n', /rules\.0: a rule needs a selector/],
      ['bogus: 1\n', /Unrecognized key/],
      ['rules:\n  - {family: 4, from: "fd00::/64", table: 100}\n', /rules\.0: family, from and to disagree/],
      [
        'xfrmStates:\n  - {src: 192.0.2.1, dst: 192.0.2.2, spi: 4096, aead: {alg: x, keyFile: k}, enc: {alg: y, keyFile: k}}\n',
        /xfrmStates\.0: an SA needs aead .*, or enc and auth/,
      ],
      ['xfrmStates:\n  - {src: 192.0.2.1, dst: 192.0.2.2, spi: 16, aead: {alg: x, keyFile: k}}\n', /xfrmStates\.0\.spi: SPI/],
      ['sysctls: {ip_forward: 5}\n', /sysctls\.ip_forward: net\.ipv4\.ip_forward cannot be "5"/],
      ['links:\n  - {name: d1, type: bridge}\n  - {name: d1, type: veth, peer: d2}\n', /^error: the file lists veth link d1 twice/m],
      ['routes:\n  - {to: 10.2.0.0/24, dev: br0}\n  - {to: 10.2.0.0/24, via: 10.9.0.1}\n', /^error: the file lists route 10\.2\.0\.0\/24 twice/m],
      [
        'addresses: [{dev: nope0, address: 10.0.0.1/24}]\n',
        /^error: the file's address 10\.0\.0\.1\/24 on nope0 needs link nope0, which is neither in the file nor on this host; add nope0 to the file's links/m,
      ],
      [
        'namespaces:\n  x1:\n    routes: [{to: default, dev: eth9}]\n',
        /^error: the file's route default needs link eth9, which is neither in the file nor on namespace x1/m,
      ],
      ['tables: {main: 100}\n', /tables\.main: "main" is the kernel's own table/],
      ['tables: {t1: 254}\n', /tables\.t1: table 254 is the kernel's own/],
      ['tables: {t1: 1100, t2: 1100}\n', /tables\.t2: table 1100 is also named t1/],
      ['routes: [{to: "fd00:9::/64", via: 10.1.0.250}]\n', /routes\.0: to, via and src are of different address families/],
      ['xfrmPolicies: [{src: 10.0.0.0/8, dst: "fd00::/8", dir: out}]\n', /xfrmPolicies\.0: src and dst .*different address families/],
      ['sysctls: {net.ipv4.nosuch: 1}\n', /^error: sysctls: net\.ipv4\.nosuch does not exist;/m],
    ] as const) {
      for (const cmd of ['apply', 'diff']) {
        const b = h.cli([cmd, '-f', file('bad.yaml', `version: 1\n${text}`)])
        assert.equal(b.code, 2, `${cmd}: ${b.stderr}`)
        assert.match(b.stderr, re)
      }
    }
    // A number another name already has on this host.
    assert.equal(h.cli(['table', 'add', 'hostone', '1100']).code, 0)
    const clash = h.cli(['apply', '-f', file('clash.yaml', 'version: 1\ntables: {t9: 1100}\n')])
    assert.equal(clash.code, 2, clash.stderr)
    assert.match(clash.stderr, /^error: tables\.t9: table 1100 is already named hostone on this host/m)
    assert.equal(h.cli(['table', 'del', 'hostone']).code, 0)
    // A file that lost its content is not "nothing" (which would remove all that apply made).
    assert.match(h.cli(['apply', '-f', '-'], {input: ''}).stderr, /^error: stdin is empty; a host file starts with "version: 1"/m)
    assert.match(h.cli(['apply', '-f', file('nover.yaml', 'links: []\n')]).stderr, /version: missing: a host file starts with "version: 1"/)
    assert.equal(dump(N), before, 'bad files changed nothing')
    const t = h.cli(['apply', '-f', '-', '--try', '5'], {input: readFileSync(f, 'utf8')})
    assert.equal(t.code, 2, t.stderr)
    assert.match(t.stderr, /^error: --try with the file on standard input/)
    assert.equal(dump(N), before)
    // A change that fails is undone, and the undoing takes only what apply made: not a foreign route to the same place.
    h.sh('ip', ['link', 'set', 'br0', 'up'])
    h.sh('ip', ['route', 'add', '10.3.0.0/24', 'dev', 'br0', 'metric', '50'])
    const withForeign = dump(N)
    const u = h.cli(['apply', '-f', file('unreach.yaml', 'version: 1\nroutes: [{to: 10.3.0.0/24, via: 172.31.0.1}]\n')])
    assert.equal(u.code, 1, u.stderr)
    assert.equal(dump(N), withForeign, 'the foreign route 10.3.0.0/24 metric 50 is still there')
  })
})
