/**
 * The doctor and `tunnel add` agree (issue 14), the doctor's fix lines act
 * where it looked, netkit leaves no empty directory behind, and the doctor
 * finds the daemons netkit lost track of (issue 15). On simulated hosts
 * (realhost.ts): netkit runs with its defaults, as on a machine.
 */
import assert from 'node:assert/strict'
import {existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {cli, exitOf, stderrUntil} from '../helpers/cli.js'
import {makeNs, sh, skipUnlessRoot} from '../helpers/hosts.js'
import {innerNs} from '../helpers/inner.js'
import {KEY, Session} from '../helpers/pty.js'
import {bootHost, type SimHost} from '../helpers/realhost.js'
import {twoHosts, twoSites} from '../helpers/topology.js'

const work = mkdtempSync(join(tmpdir(), 'netkit-dd-'))
const psk = join(work, 'site.psk')
writeFileSync(psk, 'a pre-shared key only these tests know 2026\n', {mode: 0o600})

/** Directories with nothing in them, below `dir` (not `dir` itself). */
function emptyDirsUnder(dir: string): string[] {
  if (!existsSync(dir)) return []
  const out: string[] = []
  const walk = (d: string): void => {
    for (const e of readdirSync(d, {withFileTypes: true})) {
      if (!e.isDirectory()) continue
      const p = join(d, e.name)
      if (readdirSync(p).length === 0) out.push(p)
      else walk(p)
    }
  }
  walk(dir)
  return out
}

/** The findings that failed or warned, as "result id subject". */
function problems(json: any): string[] {
  return json.result.checks
    .filter((c: any) => c.result === 'fail' || c.result === 'warn')
    .map((c: any) => `${c.result} ${c.id}${c.subject ? ` ${c.subject}` : ''}`)
}

/** What a doctor run failed on, for a message. */
const failures = (json: any) => json?.result?.checks?.filter((c: any) => c.result === 'fail').map((c: any) => `${c.id} ${c.subject ?? ''}: ${c.reason}`) ?? []

/** The sysctl changes a run echoed ("[#] ..." on stderr) or a dry run printed (on stdout). */
const sysctlLines = (text: string) =>
  text
    .split('\n')
    .map((l) => l.replace(/^\[#\] /, ''))
    .filter((l) => /^(ip netns exec \S+ )?sysctl -q -w /.test(l))

/** netkit command lines inside a fix line (up to a quote, comma, parenthesis, "&&" or ";"). */
function netkitCommands(fix: string): string[] {
  return [...fix.matchAll(/\bnetkit (?:tunnel|sysctl|link|route|rule|addr|doctor|proxyarp|table|xfrm|ns|bridge)\b[^"&,;()]*/g)].map((m) => m[0].trim())
}

/** Two namespaces inside a host, joined by an underlay (192.0.2.1 | 192.0.2.2), each with an address in its local subnet. */
function innerPair(h: SimHost, tag: string): {n1: string; n2: string} {
  const [n1, n2] = [`${tag}1`, `${tag}2`]
  for (const n of [n1, n2]) {
    h.sh('ip', ['netns', 'add', n])
    h.sh('ip', ['-n', n, 'link', 'set', 'lo', 'up'])
  }
  h.sh('ip', ['-n', n1, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u0', 'netns', n2])
  for (const [n, ip, lan] of [
    [n1, '192.0.2.1', '10.1.0.1'],
    [n2, '192.0.2.2', '10.2.0.1'],
  ]) {
    h.sh('ip', ['-n', n, 'addr', 'add', `${ip}/24`, 'dev', 'u0'])
    h.sh('ip', ['-n', n, 'link', 'set', 'u0', 'up'])
    h.sh('ip', ['-n', n, 'link', 'add', 'c0', 'type', 'veth', 'peer', 'name', 'c1'])
    h.sh('ip', ['-n', n, 'addr', 'add', `${lan}/24`, 'dev', 'c0'])
    h.sh('ip', ['-n', n, 'link', 'set', 'c0', 'up'])
    h.sh('ip', ['-n', n, 'link', 'set', 'c1', 'up'])
  }
  return {n1, n2}
}

describe('doctor defects (integration, on simulated hosts)', {skip: skipUnlessRoot}, () => {
  after(() => rmSync(work, {recursive: true, force: true}))

  it('a host only netkit configured passes the doctor: WireGuard with only an address, then IPsec with subnets, IPsec alone, WireGuard with subnets; a dry run prints the sysctls the real run sets; del puts every one back', () => {
    const {hA, hB} = twoHosts('dd')
    const doctorOk = (what: string) => {
      for (const h of [hA, hB]) {
        const d = h.cli(['doctor', '--json'])
        assert.equal(d.code, 0, `${what}, on ${h.ns}: ${failures(d.json).join('; ') || d.stderr}`)
      }
    }
    const keys = (h: SimHost, name: string) => h.cli(['tunnel', 'pubkey', name]).stdout.trim()
    const wg = (h: SimHost, peer: SimHost, remote: string, address: string, extra: string[]) =>
      h.cli([
        'tunnel',
        'add',
        'wa',
        '--type',
        'wireguard',
        '--remote',
        remote,
        '--peer-public-key',
        keys(peer, 'wa'),
        '--address',
        address,
        '--timeout',
        '15',
        ...extra,
      ])
    const ipsec = (h: SimHost, remote: string, local: string, rs: string, extra: string[]) =>
      h.cli([
        'tunnel',
        'add',
        'ia',
        '--type',
        'ipsec',
        '--remote',
        remote,
        '--psk-file',
        psk,
        '--local-subnet',
        local,
        '--remote-subnet',
        rs,
        '--timeout',
        '20',
        ...extra,
      ])
    const owned = (h: SimHost) =>
      h
        .cli(['sysctl', 'list', '--json'])
        .json.result.map((r: any) => r.key)
        .sort()

    // WireGuard with only its address: host to host, nothing to forward.
    let r = wg(hA, hB, '192.0.2.2', '10.99.0.1/24', ['--no-wait'])
    assert.equal(r.code, 0, r.stderr)
    r = wg(hB, hA, '192.0.2.1', '10.99.0.2/24', [])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(sysctlLines(r.stderr), [], 'a tunnel that routes no subnet changes no sysctl')
    assert.deepEqual(owned(hA), [])
    doctorOk('WireGuard with only --address')

    // Then IPsec with subnets: its dry run prints exactly the sysctls the real run sets.
    const dry = ipsec(hA, '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait', '--dry-run'])
    assert.equal(dry.code, 0, dry.stderr)
    r = ipsec(hA, '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait'])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(sysctlLines(dry.stdout), sysctlLines(r.stderr), 'the dry run says what the real run does')
    assert.deepEqual(sysctlLines(r.stderr), ['sysctl -q -w net/ipv4/ip_forward=1'])
    r = ipsec(hB, '192.0.2.1', '10.2.0.0/24', '10.1.0.0/24', [])
    assert.equal(r.code, 0, r.stderr)
    doctorOk('WireGuard with only --address, then IPsec with subnets')

    // IPsec alone.
    for (const h of [hA, hB]) assert.equal(h.cli(['tunnel', 'del', 'wa']).code, 0)
    doctorOk('IPsec with subnets')
    for (const h of [hA, hB]) assert.equal(h.cli(['tunnel', 'del', 'ia']).code, 0)
    assert.deepEqual(owned(hA), [], 'the last tunnel that needed forwarding put it back')
    assert.equal(hA.sh('sysctl', ['-n', 'net.ipv4.ip_forward']).trim(), '0')

    // WireGuard routing subnets.
    r = wg(hA, hB, '192.0.2.2', '10.99.0.1/24', ['--no-wait', '--local-subnet', '10.1.0.0/24', '--remote-subnet', '10.2.0.0/24'])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(sysctlLines(r.stderr), ['sysctl -q -w net/ipv4/ip_forward=1'])
    r = wg(hB, hA, '192.0.2.1', '10.99.0.2/24', ['--local-subnet', '10.2.0.0/24', '--remote-subnet', '10.1.0.0/24'])
    assert.equal(r.code, 0, r.stderr)
    doctorOk('WireGuard with subnets')
    for (const h of [hA, hB]) assert.equal(h.cli(['tunnel', 'del', 'wa']).code, 0)
    for (const h of [hA, hB]) {
      assert.deepEqual(owned(h), [])
      assert.deepEqual(h.processes(), [], 'no daemon left')
      assert.deepEqual([...emptyDirsUnder(h.configDir), ...emptyDirsUnder(h.stateDir)], [], 'no empty directory left')
    }
  })

  it('every fix line of a broken namespace names it (--netns), and none is listed twice; --fix --dry-run lists each fix once', () => {
    const h = bootHost(makeNs('df'))
    const {n1, n2} = innerPair(h, 'fx')
    const k1 = h.cli(['tunnel', 'pubkey', 'wa', '--netns', n1]).stdout.trim()
    const k2 = h.cli(['tunnel', 'pubkey', 'wa', '--netns', n2]).stdout.trim()
    // A WireGuard tunnel routing subnets, with its peer; an IPsec tunnel whose peer never comes; a VXLAN tunnel with proxy ARP.
    let r = h.cli([
      'tunnel',
      'add',
      'wa',
      '--type',
      'wireguard',
      '--remote',
      '192.0.2.2',
      '--peer-public-key',
      k2,
      '--address',
      '10.99.0.1/24',
      '--local-subnet',
      '10.1.0.0/24',
      '--remote-subnet',
      '10.2.0.0/24',
      '--netns',
      n1,
      '--no-wait',
    ])
    assert.equal(r.code, 0, r.stderr)
    r = h.cli([
      'tunnel',
      'add',
      'wa',
      '--type',
      'wireguard',
      '--remote',
      '192.0.2.1',
      '--peer-public-key',
      k1,
      '--address',
      '10.99.0.2/24',
      '--local-subnet',
      '10.2.0.0/24',
      '--remote-subnet',
      '10.1.0.0/24',
      '--netns',
      n2,
      '--timeout',
      '15',
    ])
    assert.equal(r.code, 0, r.stderr)
    r = h.cli([
      'tunnel',
      'add',
      'ib',
      '--type',
      'ipsec',
      '--remote',
      '192.0.2.2',
      '--psk-file',
      psk,
      '--local-subnet',
      '10.1.0.0/24',
      '--remote-subnet',
      '10.3.0.0/24',
      '--netns',
      n1,
      '--no-wait',
    ])
    assert.equal(r.code, 0, r.stderr)
    r = h.cli([
      'tunnel',
      'add',
      'vb',
      '--type',
      'vxlan',
      '--remote',
      '192.0.2.2',
      '--vni',
      '9',
      '--address',
      '10.98.0.1/24',
      '--peer-address',
      '10.98.0.2',
      '--remote-subnet',
      '10.4.0.0/24',
      '--proxy-arp',
      'c0',
      '--netns',
      n1,
    ])
    assert.equal(r.code, 0, r.stderr)
    // Then break it: forwarding off, strict reverse-path filtering everywhere, redirects on, proxy ARP off, a leftover link.
    const set = (kv: string) => h.sh('ip', ['netns', 'exec', n1, 'sysctl', '-qw', kv])
    set('net.ipv4.ip_forward=0')
    set('net.ipv4.conf.all.rp_filter=1')
    set('net.ipv4.conf.wg-wa.rp_filter=1')
    set('net.ipv4.conf.all.send_redirects=1')
    set('net.ipv4.conf.c0.proxy_arp=0')
    h.sh('ip', ['-n', n1, 'link', 'add', 'vx-gone', 'type', 'vxlan', 'id', '99', 'remote', '192.0.2.2', 'dstport', '4789', 'dev', 'u0'])
    h.sh('ip', ['-n', n1, 'link', 'set', 'vx-gone', 'alias', 'netkit'])

    const d = h.cli(['doctor', '--netns', n1, '--json'])
    assert.equal(d.code, 1)
    const fixes: string[] = d.json.result.checks.filter((c: any) => c.fix).map((c: any) => c.fix)
    const commands = fixes.flatMap(netkitCommands)
    assert.ok(commands.length >= 5, `the broken namespace gives fixes to check: ${fixes.join(' | ')}`)
    for (const c of commands) assert.match(c, new RegExp(`--netns ${n1}( |$)`), `"${c}" acts where the doctor looked`)
    assert.deepEqual(
      fixes.filter((f, i) => fixes.indexOf(f) !== i),
      [],
      'no fix line is listed twice',
    )
    assert.ok(problems(d.json).includes('fail host.forwarding IPv4'))
    assert.ok(problems(d.json).includes('fail host.rp_filter all'))

    const dry = h.cli(['doctor', '--netns', n1, '--fix', '--dry-run'])
    const would = /would fix \(dry run, nothing was changed\): (.*)/.exec(dry.stdout)?.[1].split('; ') ?? []
    assert.ok(would.length >= 4, dry.stdout)
    assert.deepEqual(
      would.filter((f, i) => would.indexOf(f) !== i),
      [],
      'each fix once',
    )
    for (const c of would.flatMap(netkitCommands)) assert.match(c, new RegExp(`--netns ${n1}( |$)`))

    // Pasted as printed, the sysctl fixes act in the namespace (and not in the host's own).
    const before = h.sh('sysctl', ['-n', 'net.ipv4.conf.all.rp_filter']).trim()
    const fixed = h.cli(['doctor', '--netns', n1, '--fix', '--yes', '--json'])
    assert.ok(fixed.json.result.fixed.length >= 4)
    assert.equal(h.sh('ip', ['netns', 'exec', n1, 'sysctl', '-n', 'net.ipv4.conf.all.rp_filter']).trim(), '2')
    assert.equal(h.sh('sysctl', ['-n', 'net.ipv4.conf.all.rp_filter']).trim(), before, 'the host itself is untouched')
    h.stop()
  })

  it('nothing left behind: an undone add, a refused add, an interrupted wizard, del in a namespace and the namespace gone, the sysctls of ipsec0', async () => {
    const h = bootHost(makeNs('dl'))
    const {n1} = innerPair(h, 'lb')
    const noEmpty = (what: string) => assert.deepEqual([...emptyDirsUnder(h.configDir), ...emptyDirsUnder(h.stateDir)], [], `no empty directory after ${what}`)
    const stranger = 'HIQs3R6cHsZKKRI7AnUnGH2gBcNZbjmr+F7Kb6L/t1k='

    // Undone: no peer answers within the timeout; the key and the config it wrote go, and so do their directories.
    let r = h.cli([
      'tunnel',
      'add',
      'wu',
      '--type',
      'wireguard',
      '--remote',
      '192.0.2.2',
      '--peer-public-key',
      stranger,
      '--address',
      '10.97.0.1/24',
      '--netns',
      n1,
      '--timeout',
      '2',
    ])
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /no WireGuard handshake/)
    noEmpty('an undone tunnel add')

    // Refused: a link of that name is someone else's.
    h.sh('ip', ['-n', n1, 'link', 'add', 'wg-wr', 'type', 'veth', 'peer', 'name', 'wr-peer'])
    r = h.cli([
      'tunnel',
      'add',
      'wr',
      '--type',
      'wireguard',
      '--remote',
      '192.0.2.2',
      '--peer-public-key',
      stranger,
      '--address',
      '10.97.0.1/24',
      '--netns',
      n1,
      '--no-wait',
    ])
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /a link named wg-wr already exists/)
    noEmpty('a refused tunnel add')
    h.sh('ip', ['-n', n1, 'link', 'del', 'wg-wr'])

    // The wizard interrupted (Ctrl-C) while its tunnel waits for the peer: undone, its generated key and directories gone.
    const answers = join(work, 'wc.yaml')
    writeFileSync(
      answers,
      'role: site-to-site\nname: wc\nlocal: 192.0.2.1\nremote: 192.0.2.2\nlocalSubnets: [10.1.0.0/24]\nremoteSubnets: [10.2.0.0/24]\nauth: {method: psk-generate}\n',
    )
    const wiz = h.cliStart(['wizard', '--netns', n1, '--answers', answers, '--wait', '--timeout', '30'])
    await stderrUntil(wiz, /swanctl --load-all/)
    await new Promise((res) => setTimeout(res, 500))
    wiz.kill('SIGINT')
    assert.notEqual(await exitOf(wiz), 0)
    noEmpty('a wizard interrupted while it applies')

    // Tunnels in a namespace, a sysctl of charon's ipsec0 set through netkit, then del and the namespace removed.
    r = h.cli([
      'tunnel',
      'add',
      'ia',
      '--type',
      'ipsec',
      '--remote',
      '192.0.2.2',
      '--psk-file',
      psk,
      '--local-subnet',
      '10.1.0.0/24',
      '--remote-subnet',
      '10.2.0.0/24',
      '--netns',
      n1,
      '--no-wait',
    ])
    assert.equal(r.code, 0, r.stderr)
    r = h.cli([
      'tunnel',
      'add',
      'wd',
      '--type',
      'wireguard',
      '--remote',
      '192.0.2.2',
      '--peer-public-key',
      stranger,
      '--address',
      '10.96.0.1/24',
      '--netns',
      n1,
      '--no-wait',
    ])
    assert.equal(r.code, 0, r.stderr)
    for (let i = 0; i < 50 && h.sh('ip', ['-n', n1, 'link']).indexOf('ipsec0') < 0; i++) h.sh('sleep', ['0.1'])
    r = h.cli(['sysctl', 'set', 'accept_redirects.ipsec0', '0', '--netns', n1])
    assert.equal(r.code, 0, r.stderr)
    assert.ok(existsSync(join(h.stateDir, 'daemons', `ns:${n1}`)))
    for (const t of ['wd', 'ia']) assert.equal(h.cli(['tunnel', 'del', t, '--netns', n1]).code, 0)
    const kept = h.cli(['sysctl', 'list', '--netns', n1, '--json']).json.result.map((x: any) => x.key)
    assert.deepEqual(kept, [], 'the keys of ipsec0 went with it')
    assert.ok(!existsSync(join(h.stateDir, 'daemons', `ns:${n1}`)), 'no daemons directory for a namespace without daemons')
    h.sh('ip', ['netns', 'del', n1])
    noEmpty('tunnel del and the namespace removed')
    assert.ok(!existsSync(join(h.configDir, 'netns', n1)))
    h.stop()
  })

  it('a daemon netkit started and lost track of fails the doctor with the fix, and --fix stops it and removes its device', () => {
    const h = bootHost(makeNs('do'))
    const {n1} = innerPair(h, 'or')
    const stranger = 'HIQs3R6cHsZKKRI7AnUnGH2gBcNZbjmr+F7Kb6L/t1k='
    const links = () => h.ipj(['link', 'show'], n1).map((l: any) => l.ifname)
    const comms = () =>
      h
        .processes()
        .map((p) => p.split(' ')[1])
        .sort()
    let r = h.cli([
      'tunnel',
      'add',
      'wo',
      '--type',
      'wireguard',
      '--remote',
      '192.0.2.2',
      '--peer-public-key',
      stranger,
      '--address',
      '10.95.0.1/24',
      '--netns',
      n1,
      '--no-wait',
    ])
    assert.equal(r.code, 0, r.stderr)
    r = h.cli([
      'tunnel',
      'add',
      'io',
      '--type',
      'ipsec',
      '--remote',
      '192.0.2.2',
      '--psk-file',
      psk,
      '--local-subnet',
      '10.1.0.0/24',
      '--remote-subnet',
      '10.2.0.0/24',
      '--netns',
      n1,
      '--no-wait',
    ])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(h.cli(['doctor', '--netns', n1, '--check', 'leftovers.daemons']).code, 0, 'tunnels it knows are not orphans')
    // The definitions are lost (a hand edit, a crash before they were saved).
    for (const t of ['wo', 'io']) rmSync(join(h.configDir, 'netns', n1, 'tunnels', `${t}.json`))

    const d = h.cli(['doctor', '--netns', n1, '--json'])
    assert.equal(d.code, 1)
    assert.deepEqual(
      problems(d.json)
        .filter((p) => p.includes('leftovers'))
        .sort(),
      ['fail leftovers.daemons charon', 'fail leftovers.daemons wireguard-go wg-wo'],
    )
    const f = d.json.result.checks.find((c: any) => c.id === 'leftovers.daemons' && c.result === 'fail')
    assert.equal(f.fix, `netkit doctor --fix --check leftovers.daemons --netns ${n1}`)
    assert.ok(f.fixable)

    const fixed = h.cli(['doctor', '--netns', n1, '--fix', '--yes', '--json'])
    assert.equal(
      fixed.json.result.checks.filter((c: any) => c.id.startsWith('leftovers.') && (c.result === 'warn' || c.result === 'fail')).length,
      0,
      JSON.stringify(fixed.json.result.fixed),
    )
    assert.deepEqual(comms(), [], 'wireguard-go and charon are stopped')
    assert.ok(!links().includes('wg-wo') && !links().includes('ipsec0'), `devices gone: ${links()}`)
    assert.ok(!existsSync(join(h.stateDir, 'daemons', `ns:${n1}`)), 'their pid files and logs too')

    // A wireguard-go with a device netkit made, and no record at all (no pid file, no definition).
    r = h.cli([
      'tunnel',
      'add',
      'wp',
      '--type',
      'wireguard',
      '--remote',
      '192.0.2.2',
      '--peer-public-key',
      stranger,
      '--address',
      '10.93.0.1/24',
      '--netns',
      n1,
      '--no-wait',
    ])
    assert.equal(r.code, 0, r.stderr)
    rmSync(join(h.configDir, 'netns', n1, 'tunnels', 'wp.json'))
    rmSync(join(h.stateDir, 'daemons', `ns:${n1}`, 'wireguard-go.wg-wp.pid'))
    const d2 = h.cli(['doctor', '--netns', n1, '--json', '--check', 'leftovers.daemons'])
    assert.deepEqual(problems(d2.json), ['fail leftovers.daemons wireguard-go wg-wp'])
    assert.equal(h.cli(['doctor', '--netns', n1, '--fix', '--yes', '--check', 'leftovers.daemons']).code, 0)
    assert.deepEqual(comms(), [])
    assert.ok(!links().includes('wg-wp'))
    h.stop()
  })
})

describe("the wizard's safe fixes (integration, through a pseudo-terminal)", {skip: skipUnlessRoot}, () => {
  it('names the namespace, lists each fix once, and a Ctrl-C leaves no directory behind', async () => {
    // A simulated host managing namespace A (--netns), with an underlay to the peer there.
    const h = bootHost(makeNs('dw'))
    const A = innerNs(h, 'dwa')
    h.sh('ip', ['-n', A, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u1'])
    h.sh('ip', ['-n', A, 'addr', 'add', '192.0.2.1/24', 'dev', 'u0'])
    h.sh('ip', ['-n', A, 'link', 'set', 'u0', 'up'])
    h.sh('ip', ['-n', A, 'link', 'set', 'u1', 'up'])
    // A tunnel routing subnets, then the host broken under it: forwarding off, strict rp_filter on all (two tunnel interfaces).
    const stranger = 'HIQs3R6cHsZKKRI7AnUnGH2gBcNZbjmr+F7Kb6L/t1k='
    const r = h.cli([
      'tunnel',
      'add',
      'wz',
      '--type',
      'wireguard',
      '--remote',
      '192.0.2.2',
      '--peer-public-key',
      stranger,
      '--address',
      '10.94.0.1/24',
      '--local-subnet',
      '10.1.0.0/24',
      '--remote-subnet',
      '10.2.0.0/24',
      '--netns',
      A,
      '--no-wait',
    ])
    assert.equal(r.code, 0, r.stderr)
    h.sh('ip', ['netns', 'exec', A, 'sysctl', '-qw', 'net.ipv4.ip_forward=0', 'net.ipv4.conf.all.rp_filter=1'])

    const s = Session.inHost(h, ['wizard', '--netns', A])
    await s.waitFor(/Apply the safe fixes[^?]*\?/)
    const offer = /Apply the safe fixes([^?]*)\?/.exec(s.screen)![1].replace(/\n/g, ' ')
    assert.match(offer, new RegExp(`^ in namespace ${A} \\(`), offer)
    const listed = /\((.*)\)$/.exec(offer.trim())![1].split('; ')
    assert.deepEqual(
      listed.filter((f, i) => listed.indexOf(f) !== i),
      [],
      `each fix once: ${offer}`,
    )
    for (const f of listed) assert.match(f, new RegExp(`--netns ${A}$`), f)
    s.send(`n${KEY.enter}`)
    await s.answer(/What are you setting up\?/, `2${KEY.enter}`)
    await s.answer(/Peer's address:/, '192.0.')
    s.send(KEY.ctrlC)
    assert.notEqual(await s.exitCode(), 0)
    assert.equal(h.cli(['tunnel', 'del', 'wz', '--netns', A]).code, 0)
    assert.deepEqual([...emptyDirsUnder(h.configDir), ...emptyDirsUnder(h.stateDir)], [], 'no empty directory left')
    h.stop()
  })
})
