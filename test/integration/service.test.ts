import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {cliResult, type CliResult} from '../helpers/cli.js'
import {nsName, skipUnlessRoot} from '../helpers/hosts.js'
import {innerNs} from '../helpers/inner.js'
import type {SimHost} from '../helpers/realhost.js'
import {pingUntil, twoHosts, type TwoHosts} from '../helpers/topology.js'

/** systemd's PATH for a system service, and nothing else of the caller's environment. */
const SYSTEMD_ENV = {PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8'}

/** The ExecStart= of a unit, as an argv (netkit's unit quotes nothing that needs it here). */
function execStart(unit: string): string[] {
  const line = unit.split('\n').find((l) => l.startsWith('ExecStart='))
  assert.ok(line, unit)
  return line.slice('ExecStart='.length).split(' ')
}

/** Runs a command in the host the way systemd would run the unit's ExecStart: its PATH, no other environment. */
function runAsSystemd(h: SimHost, argv: string[]): CliResult {
  return cliResult(spawnSync('nsenter', ['-t', String(h.pid), '-m', '-p', '-n', '-u', '--', ...argv], {encoding: 'utf8', env: SYSTEMD_ENV, timeout: 120_000}))
}

function waitUntil(what: string, ok: () => boolean, ms = 5000): void {
  const deadline = Date.now() + ms
  while (!ok()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`)
    spawnSync('sleep', ['0.05'])
  }
}

const SYSCTLS = ['net.ipv4.ip_forward', 'net.ipv4.conf.all.accept_redirects', 'net.ipv6.conf.all.forwarding']
const readSysctls = (h: SimHost) => Object.fromEntries(SYSCTLS.map((k) => [k, h.sh('sysctl', ['-n', k]).trim()]))
const rules = (h: SimHost) => h.sh('ip', ['-4', 'rule', 'show']) + h.sh('ip', ['-6', 'rule', 'show'])

/**
 * What a reboot does to a host, as far as netkit is concerned: every process
 * gone (charon, wireguard-go), with them their TUN devices and the routes
 * through them; a fresh, empty /run (netkit's ledger and lock, the daemons'
 * pid files and sockets, the namespaces in /run/netns, which the kernel then
 * frees with their links); and the kernel's runtime settings back to what they
 * were at boot (routes and rules netkit or charon added, sysctls). What the
 * host's own configuration makes (the underlay, its addresses) stays, as a
 * real host's network configuration brings it back before network-online.
 */
function reboot(h: SimHost, boot: {sysctls: Record<string, string>; rules: string}): void {
  const pids = h.processes().map((p) => p.split(' ')[0])
  if (pids.length) h.sh('kill', ['-KILL', ...pids])
  waitUntil(`the daemons of ${h.ns} are gone`, () => h.processes().length === 0)
  h.sh('sh', ['-c', 'umount -l /run && mount -t tmpfs -o mode=0755 tmpfs /run && mkdir /run/lock'])
  for (const fam of ['-4', '-6']) {
    // The killed daemons' TUN devices go away with their routes while ip flushes ("No such process"
    // for a route gone meanwhile): flushed again until none is left.
    waitUntil(`netkit's routes of ${h.ns} are flushed`, () => {
      try {
        h.sh('ip', [fam, 'route', 'flush', 'table', 'all', 'proto', '178'])
      } catch {
        // a route went away during the flush
      }
      return h.sh('ip', [fam, 'route', 'show', 'table', 'all', 'proto', '178']).trim() === ''
    })
    for (const line of h
      .sh('ip', [fam, 'rule', 'show'])
      .split('\n')
      .filter((l) => l && !boot.rules.includes(l)))
      h.sh('ip', [fam, 'rule', 'del', 'pref', line.split(':')[0]])
  }
  for (const [k, v] of Object.entries(boot.sysctls)) h.sh('sysctl', ['-qw', `${k}=${v}`])
  assert.equal(rules(h), boot.rules, 'the rules are as at boot')
}

describe('netkit at boot: service boot, install, uninstall (integration)', {skip: skipUnlessRoot}, () => {
  let w: TwoHosts
  const dir = mkdtempSync(join(tmpdir(), 'netkit-service-'))
  const psk = join(dir, 'site.psk')
  writeFileSync(psk, 'a boot-time pre-shared key 2026\n', {mode: 0o600})
  before(() => {
    w = twoHosts('sv')
  })
  after(() => rmSync(dir, {recursive: true, force: true}))

  it('the unit passes systemd-analyze verify, and runs this netkit\'s "service boot"', () => {
    const r = w.hA.cli(['service', 'unit'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^\[Service\]\nType=oneshot\nRemainAfterExit=yes\nExecStart=\/.+ service boot$/m)
    assert.match(r.stdout, /^Wants=network-online\.target$/m)
    assert.match(r.stdout, /^After=network-online\.target strongswan\.service/m)
    assert.match(r.stdout, /^WantedBy=multi-user\.target$/m)
    const file = join(dir, 'netkit.service')
    writeFileSync(file, r.stdout)
    const v = spawnSync('systemd-analyze', ['verify', file], {encoding: 'utf8'})
    assert.equal(v.status, 0, v.stderr)
    assert.equal(v.stderr + v.stdout, '', 'systemd-analyze has nothing to say')
    // a unit that names a netkit which is not there fails verify (the check has teeth)
    writeFileSync(file, r.stdout.replace(/^ExecStart=\S+/m, 'ExecStart=/nonexistent/netkit'))
    assert.notEqual(spawnSync('systemd-analyze', ['verify', file]).status, 0)
  })

  it("a reboot takes the tunnels, the daemons, /run and host.yaml's namespace; the unit's command brings everything back and traffic flows", async () => {
    const {A, B, CA, hA, hB} = w
    const boot = {A: {sysctls: readSysctls(hA), rules: rules(hA)}, B: {sysctls: readSysctls(hB), rules: rules(hB)}}
    // Host A keeps /etc/netkit/host.yaml: a namespace "app" behind a veth, and the WireGuard tunnel.
    // The IPsec tunnel of both hosts, and B's WireGuard, are made with "tunnel add" (no host file on B).
    const ka = hA.cli(['tunnel', 'pubkey', 'wg1']).stdout.trim()
    const kb = hB.cli(['tunnel', 'pubkey', 'wg1']).stdout.trim()
    const app = nsName('app')
    writeFileSync(
      join(hA.configDir, 'host.yaml'),
      `version: 1
links: [{name: app0, type: veth, peer: eth0, peerNetns: ${app}}]
addresses: [{dev: app0, address: 10.11.0.1/24}]
namespaces:
  ${app}:
    addresses: [{dev: eth0, address: 10.11.0.2/24}]
    routes: [{to: default, via: 10.11.0.1}]
tunnels:
  wg1: {type: wireguard, remote: 192.0.2.2, address: 10.99.0.1/24, localSubnets: [10.1.0.0/24], remoteSubnets: [10.2.0.0/24], peerPublicKey: "${kb}"}
`,
    )
    hB.sh('ip', ['addr', 'add', '10.12.0.1/24', 'dev', 'c0'])
    const ipsec = (h: SimHost, remote: string, local: string, far: string, wait: boolean) =>
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
        far,
        '--psk-file',
        psk,
        ...(wait ? ['--timeout', '30'] : ['--no-wait']),
      ])

    // The first boot of both, with the unit's own command (there is nothing of netkit's yet but A's host file).
    const unitA = execStart(hA.cli(['service', 'unit']).stdout)
    const first = runAsSystemd(hA, unitA)
    assert.equal(first.code, 0, first.stderr)
    assert.match(first.stdout, /^applied \/etc\/netkit\/host\.yaml \(\d+ changes, verified\)$/m)
    for (const r of [
      ipsec(hA, '192.0.2.2', '10.11.0.0/24', '10.12.0.0/24', false),
      ipsec(hB, '192.0.2.1', '10.12.0.0/24', '10.11.0.0/24', true),
      hB.cli([
        'tunnel',
        'add',
        'wg1',
        '--type',
        'wireguard',
        '--remote',
        '192.0.2.1',
        '--peer-public-key',
        ka,
        '--address',
        '10.99.0.2/24',
        '--local-subnet',
        '10.2.0.0/24',
        '--remote-subnet',
        '10.1.0.0/24',
        '--no-wait',
      ]),
    ]) {
      assert.equal(r.code, 0, r.stderr)
    }
    const states = (h: SimHost) =>
      h
        .cli(['tunnel', 'list', '--json'])
        .json.result.map((r: any) => `${r.name} ${r.type} ${r.state}`)
        .sort()
    const traffic = async (why: string) => {
      // Both peers set up at about the same time (at boot, neither waits): allow IKE a few retransmits.
      const deadline = Date.now() + 40_000
      while (Date.now() < deadline && !(states(hA).includes('site ipsec up') && states(hB).includes('site ipsec up')))
        await new Promise((r) => setTimeout(r, 500))
      assert.ok(await pingUntil(CA, '10.2.0.2', 20), `WireGuard carries container A to container B ${why}`)
      let ok = false
      for (let i = 0; i < 20 && !ok && Date.now() < deadline + 20_000; i++)
        ok = hA.sh('sh', ['-c', `ip netns exec ${app} ping -c 1 -W 1 10.12.0.1 >/dev/null && echo ok || true`]).includes('ok')
      assert.ok(ok, `IPsec carries host.yaml's namespace on A to B ${why}: ${states(hA)} / ${states(hB)}`)
    }
    await traffic('before the reboot')
    assert.deepEqual(states(hA), ['site ipsec up', 'wg1 wireguard up'])

    // The reboot of both hosts.
    reboot(hA, boot.A)
    reboot(hB, boot.B)
    waitUntil("the kernel freed host.yaml's namespace and its veth", () => spawnSync('ip', ['-n', A, 'link', 'show', 'app0']).status !== 0)
    for (const [ns, h] of [
      [A, hA],
      [B, hB],
    ] as const) {
      assert.deepEqual(h.processes(), [], `no daemon runs on ${ns}`)
      assert.deepEqual(
        h
          .ipj(['link', 'show'])
          .filter((l: any) => l.ifalias === 'netkit' || /^(wg-|ipsec)/.test(l.ifname))
          .map((l: any) => l.ifname),
        [],
        `no tunnel device on ${ns}`,
      )
      assert.deepEqual(h.sh('ls', ['-A', '/run']).split('\n').filter(Boolean), ['lock'], `${ns}'s /run is empty`)
      assert.deepEqual(states(h), ['site ipsec down', 'wg1 wireguard down'])
    }
    assert.equal(hA.sh('sysctl', ['-n', 'net.ipv4.ip_forward']).trim(), boot.A.sysctls['net.ipv4.ip_forward'], 'forwarding is as at boot')

    // What the boot would do, without doing it: the commands on stdout, what each part would change on stderr.
    const dry = hA.cli(['service', 'boot', '--dry-run'])
    assert.equal(dry.code, 0, dry.stderr)
    assert.match(dry.stdout, /^ip netns add \S*app\S*$/m, "the host file's commands")
    assert.equal(dry.stdout.match(/^wireguard-go -f wg-wg1 /gm)?.length, 1, `the WireGuard tunnel's, once (the host file sets it up): ${dry.stdout}`)
    assert.match(dry.stdout, /^swanctl --load-all .*netkit/m, "the IPsec tunnel's")
    assert.match(dry.stderr, /^dry run: would apply \/etc\/netkit\/host\.yaml \(\d+ changes\); nothing was changed$/m)
    assert.match(dry.stderr, /^tunnel wg1: set up by \/etc\/netkit\/host\.yaml \(above\)$/m)
    assert.match(dry.stderr, /^dry run: would bring up tunnel site \(ipsec, userspace data path\); nothing was changed$/m)
    assert.doesNotMatch(dry.stdout + dry.stderr, /^(applied|brought up|added) /m, 'nothing is said to be done')
    assert.deepEqual(hA.processes(), [], 'the dry run started no daemon')
    assert.ok(spawnSync('ip', ['-n', A, 'link', 'show', 'app0']).status !== 0, "nor made the host file's links")
    assert.deepEqual(
      hA
        .ipj(['link', 'show'])
        .filter((l: any) => l.ifalias === 'netkit' || /^(wg-|ipsec)/.test(l.ifname))
        .map((l: any) => l.ifname),
      [],
      'nor any tunnel device',
    )
    assert.deepEqual(hA.sh('ls', ['-A', '/run']).split('\n').filter(Boolean), ['lock'], '/run is as the reboot left it (no ledger, no lock file)')
    assert.deepEqual(readSysctls(hA), boot.A.sysctls, 'no sysctl set')
    assert.equal(rules(hA), boot.A.rules, 'no rule added')
    assert.deepEqual(states(hA), ['site ipsec down', 'wg1 wireguard down'])

    // The unit's command, as systemd runs it: B first (no host file), then A.
    const b = runAsSystemd(hB, execStart(hB.cli(['service', 'unit']).stdout))
    assert.equal(b.code, 0, b.stderr)
    assert.match(b.stdout, /^brought up tunnel site \(ipsec, userspace data path/m)
    assert.match(b.stdout, /^brought up tunnel wg1 \(wireguard, userspace data path/m)
    assert.doesNotMatch(b.stdout, /host\.yaml/, 'B has no host file: nothing is applied')
    const a = runAsSystemd(hA, unitA)
    assert.equal(a.code, 0, a.stderr)
    assert.match(a.stdout, /^applied \/etc\/netkit\/host\.yaml \(\d+ changes, verified\)\n/m, 'the host file first (it brings wg1 back with the namespace)')
    assert.match(a.stdout, /^tunnel wg1 is already set up \(\w+\); nothing to do$/m)
    assert.match(a.stdout, /^brought up tunnel site \(ipsec/m)
    await traffic('after the reboot')
    assert.deepEqual(states(hA), ['site ipsec up', 'wg1 wireguard up'])
    assert.deepEqual(states(hB), ['site ipsec up', 'wg1 wireguard up'])

    // Booting again changes nothing (systemctl restart netkit).
    const again = runAsSystemd(hA, [...unitA, '--json'])
    assert.equal(again.code, 0, again.stderr)
    assert.equal(again.json.result.hostFile.changed, false)
    assert.deepEqual(again.json.result.tunnels.map((t: any) => [t.name, t.changed]).sort(), [
      ['site', false],
      ['wg1', false],
    ])
    assert.deepEqual(again.json.result.commands, [])
  })

  it('a tunnel whose namespace nothing made again is reported in one line, and every other tunnel still comes up', () => {
    const h = w.hB
    const X = innerNs(h, 'gone')
    h.sh('ip', ['-n', X, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u1'])
    h.sh('ip', ['-n', X, 'addr', 'add', '192.0.2.1/24', 'dev', 'u0'])
    h.sh('ip', ['-n', X, 'link', 'set', 'u0', 'up'])
    const add = h.cli(['tunnel', 'add', 'v1', '--type', 'vxlan', '--remote', '192.0.2.2', '--vni', '7', '--address', '10.9.0.1/24', '--netns', X])
    assert.equal(add.code, 0, add.stderr)
    h.sh('ip', ['netns', 'del', X])
    // and wireguard-go died: boot brings wg1 back
    h.sh('kill', [
      '-KILL',
      ...h
        .processes()
        .filter((p) => p.endsWith(' wireguard-go'))
        .map((p) => p.split(' ')[0]),
    ])
    waitUntil('wg-wg1 is gone', () => spawnSync('ip', ['-n', w.B, 'link', 'show', 'wg-wg1']).status !== 0)
    const r = h.cli(['service', 'boot'])
    assert.equal(r.code, 1, r.stderr)
    assert.match(
      r.stderr,
      new RegExp(
        `^error: tunnel v1 \\(namespace ${X}\\): its namespace ${X} does not exist; make it before netkit's boot \\(list it in /etc/netkit/host\\.yaml, or "netkit ns add ${X}"\\)$`,
        'm',
      ),
    )
    assert.match(r.stdout, /^brought up tunnel wg1 /m, 'the others still come up')
    assert.match(r.stdout, /^tunnel site is already set up \(up\); nothing to do$/m)
  })

  it("install writes the unit where systemd is not PID 1 and says so; again is a no-op; uninstall removes only netkit's own file", () => {
    // A's /etc/systemd/system, private to the host (its mount namespace does not propagate to the machine).
    const h = w.hA
    h.sh('mount', ['-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', '/etc/systemd/system'])
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(' /etc/systemd/system '), "the machine does not see the host's mount")
    const unit = '/etc/systemd/system/netkit.service'
    const cat = () => h.sh('sh', ['-c', `cat ${unit} 2>/dev/null || true`])

    const dry = h.cli(['service', 'install', '--dry-run'])
    assert.equal(dry.code, 0, dry.stderr)
    assert.equal(dry.stdout, `write ${unit} (mode 0644)\n`, 'the dry run prints what it would do')
    assert.equal(cat(), '', 'and does nothing')

    const r = h.cli(['service', 'install'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, `installed netkit.service (${unit})\n`)
    assert.match(
      r.stderr,
      /^note: systemd is not running here \(PID 1 is sleep\): the unit is installed but not enabled; .*"systemctl enable netkit\.service"/m,
    )
    assert.doesNotMatch(r.stderr, /^\[#\] systemctl/m, 'systemd is not told anything')
    assert.equal(cat(), h.cli(['service', 'unit']).stdout)
    assert.equal(h.sh('stat', ['-c', '%a', unit]).trim(), '644')
    const st = h.cli(['service', 'status', '--json']).json.result
    assert.deepEqual([st.unit, st.systemd], ['installed', 'not running (PID 1 is sleep)'])

    const again = h.cli(['service', 'install'])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /^netkit\.service is already installed \(\/etc\/systemd\/system\/netkit\.service\); nothing to do$/m)

    const udry = h.cli(['service', 'uninstall', '--dry-run'])
    assert.equal(udry.stdout, `rm -f ${unit}\n`)
    assert.notEqual(cat(), '')
    const u = h.cli(['service', 'uninstall'])
    assert.equal(u.code, 0, u.stderr)
    assert.equal(cat(), '', 'the unit is gone')
    assert.match(h.cli(['service', 'uninstall']).stdout, /is not installed .*; nothing to do/)

    // An operator's own netkit.service is never overwritten nor removed.
    h.sh('sh', ['-c', `printf '[Service]\\nExecStart=/bin/true\\n' > ${unit}`])
    for (const verb of ['install', 'uninstall']) {
      const x = h.cli(['service', verb])
      assert.equal(x.code, 1, x.stderr)
      assert.match(x.stderr, /^error: \/etc\/systemd\/system\/netkit\.service is not netkit's/m)
      assert.equal(cat(), '[Service]\nExecStart=/bin/true\n')
    }
    h.sh('umount', ['/etc/systemd/system'])
    assert.equal(h.cli(['service', 'boot', '--netns', 'x']).code, 2)
  })

  it("install --root enables the unit in an image's tree with systemctl --root, and uninstall disables it", () => {
    const root = mkdtempSync(join(tmpdir(), 'netkit-image-'))
    try {
      const r = w.hA.cli(['service', 'install', '--root', root, '--bin', '/usr/bin/netkit'])
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, /, enabled: it runs "netkit service boot" at every boot\n$/)
      assert.match(readFileSync(join(root, 'etc/systemd/system/netkit.service'), 'utf8'), /^ExecStart=\/usr\/bin\/netkit service boot$/m)
      const wants = join(root, 'etc/systemd/system/multi-user.target.wants/netkit.service')
      assert.ok(lstatSync(wants).isSymbolicLink(), 'enabled: linked from multi-user.target.wants')
      assert.equal(statSync(join(root, 'etc/systemd/system/netkit.service')).mode & 0o777, 0o644)
      assert.match(w.hA.cli(['service', 'install', '--root', root, '--bin', '/usr/bin/netkit']).stdout, /already installed and enabled .*; nothing to do/)
      assert.equal(w.hA.cli(['service', 'install', '--root', root, '--bin', 'netkit']).code, 2, 'a relative --bin is refused')
      const u = w.hA.cli(['service', 'uninstall', '--root', root])
      assert.equal(u.code, 0, u.stderr)
      assert.ok(!existsSync(wants) && !existsSync(join(root, 'etc/systemd/system/netkit.service')), 'disabled and removed')
    } finally {
      rmSync(root, {recursive: true, force: true})
    }
  })
})
