/**
 * netkit on a host that runs strongSwan itself, as Debian's strongswan.service
 * does (charon-systemd, the host's /etc/strongswan.conf and /etc/swanctl, then
 * `swanctl --load-all`), with one VPN of the operator's up:
 *
 *   B (operator's peer, a plain charon) --192.0.2.0/24-- A (charon-systemd + netkit) --198.51.100.0/24-- C (netkit)
 *   10.2.0.1                                        10.1.0.1 (office) / 10.3.0.1 (netkit)            10.4.0.1
 *
 * netkit adds, replaces, takes down and up, and deletes its tunnel A-C there;
 * after each step the operator's connection and secret are still loaded, its
 * IKE SA is the same one (never torn down), traffic flows through it, and
 * netkit's tunnel carries traffic. A tunnel with certificates works there too,
 * and what is left of it once its definition is gone (its files, its
 * connection, its key) is found and removed by the doctor. A host whose charon
 * lacks kernel-libipsec (this kernel has no ESP) is refused before anything
 * changes, by tunnel add and by apply.
 */
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {getConns, getShared, listSas, loadConn, unloadConn, withVici} from '../../src/lib/tunnel/ipsec/vici-client.js'
import {makeNs, sh, skipUnlessRoot} from '../helpers/hosts.js'
import {bootHost, type SimHost} from '../helpers/realhost.js'

const hasCharonSystemd = existsSync('/usr/sbin/charon-systemd')

/** The host's strongswan.conf as Debian ships it, with kernel-libipsec switched on (or not) as the operator of a host without kernel ESP does. */
const strongswanConf = (libipsec: boolean) => `# the host's own strongswan.conf (Debian's, ${libipsec ? 'with' : 'without'} kernel-libipsec)
charon {
  load_modular = yes
  plugins {
    include strongswan.d/charon/*.conf
    kernel-libipsec {
      load = ${libipsec ? 'yes' : 'no'}
    }
  }
}
include strongswan.d/*.conf
`

/** The operator's VPN "office", 10.1.0.0/24 (A) to 10.2.0.0/24 (B); A starts it. */
const office = (local: string, remote: string, localTs: string, remoteTs: string, start: boolean) => `connections {
  office {
    version = 2
    local_addrs = ${local}
    remote_addrs = ${remote}
    proposals = aes256-sha256-x25519
    local {
      auth = psk
      id = ${local}
    }
    remote {
      auth = psk
      id = ${remote}
    }
    children {
      office-net {
        local_ts = ${localTs}
        remote_ts = ${remoteTs}
        esp_proposals = aes256-sha256
        start_action = ${start ? 'start' : 'none'}
      }
    }
  }
}
secrets {
  ike-office {
    id-a = 192.0.2.1
    id-b = 192.0.2.2
    secret = "the operator's own key"
  }
}
`

/** The host's /etc/strongswan.conf and /etc/swanctl (with the operator's connection), made in /etc/netns/NS before it boots. */
function strongswanEtc(libipsec: boolean, conn?: string): (etc: string) => void {
  return (etc) => {
    writeFileSync(join(etc, 'strongswan.conf'), strongswanConf(libipsec))
    for (const d of ['conf.d', 'x509', 'x509ca', 'private', 'pubkey', 'rsa', 'ecdsa', 'pkcs8', 'pkcs12'])
      mkdirSync(join(etc, 'swanctl', d), {recursive: true, mode: 0o700})
    writeFileSync(join(etc, 'swanctl', 'swanctl.conf'), 'include conf.d/*.conf\n')
    if (conn) writeFileSync(join(etc, 'swanctl', 'conf.d', 'office.conf'), conn, {mode: 0o600})
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Starts a charon in the host as its service would (detached), and waits (bounded) for its VICI socket. */
async function startCharon(h: SimHost, program: string): Promise<string> {
  h.sh('sh', ['-c', `${program} </dev/null >/dev/null 2>&1 &`])
  const socket = `/proc/${h.pid}/root/run/charon.vici`
  for (let i = 0; i < 100 && !existsSync(socket); i++) await sleep(100)
  assert.ok(existsSync(socket), `${program} serves VICI in host ${h.ns}`)
  return socket
}

/** Pings from the host, from a source address, until it answers (bounded). */
async function pings(h: SimHost, from: string, to: string, seconds = 10): Promise<boolean> {
  const deadline = Date.now() + seconds * 1000
  while (Date.now() < deadline) {
    try {
      h.sh('ping', ['-c', '1', '-W', '1', '-I', from, to])
      return true
    } catch {
      await sleep(200)
    }
  }
  return false
}

describe(
  'netkit on a host that runs strongSwan itself (integration)',
  {skip: skipUnlessRoot || (!hasCharonSystemd && 'needs charon-systemd (apt-get install --no-install-recommends charon-systemd)')},
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'netkit-system-swan-'))
    const pskFile = join(dir, 'site.psk')
    writeFileSync(pskFile, 'netkit key for the site tunnel 2026\n', {mode: 0o600})
    let hA: SimHost, hB: SimHost, hC: SimHost
    let viciA = ''
    /** The operator's IKE SA when it came up: every check compares with it. */
    let officeSa = 0

    before(async () => {
      const [A, B, C] = [makeNs('hvA'), makeNs('hvB'), makeNs('hvC')]
      const ip = (ns: string, ...args: string[]) => sh('ip', ['-n', ns, ...args])
      ip(A, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u0', 'netns', B)
      ip(A, 'link', 'add', 'u1', 'type', 'veth', 'peer', 'name', 'u1', 'netns', C)
      for (const [ns, dev, addr] of [
        [A, 'u0', '192.0.2.1/24'],
        [B, 'u0', '192.0.2.2/24'],
        [A, 'u1', '198.51.100.1/24'],
        [C, 'u1', '198.51.100.2/24'],
      ]) {
        ip(ns, 'addr', 'add', addr, 'dev', dev)
        ip(ns, 'link', 'set', dev, 'up')
      }
      // Each site's own network: a veth pair inside the host, the addresses on one end.
      for (const [ns, addrs] of [
        [A, ['10.1.0.1/24', '10.3.0.1/24']],
        [B, ['10.2.0.1/24']],
        [C, ['10.4.0.1/24']],
      ] as const) {
        ip(ns, 'link', 'add', 's0', 'type', 'veth', 'peer', 'name', 's0p')
        for (const a of addrs) ip(ns, 'addr', 'add', a, 'dev', 's0')
        ip(ns, 'link', 'set', 's0', 'up')
        ip(ns, 'link', 'set', 's0p', 'up')
      }
      hA = bootHost(A, {etc: strongswanEtc(true, office('192.0.2.1', '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', true))})
      hB = bootHost(B, {etc: strongswanEtc(true, office('192.0.2.2', '192.0.2.1', '10.2.0.0/24', '10.1.0.0/24', false))})
      hC = bootHost(C)
      // B: a plain charon, hand-made; A: as strongswan.service does it (charon-systemd, then swanctl --load-all).
      await startCharon(hB, '/usr/lib/ipsec/charon')
      hB.sh('swanctl', ['--load-all', '--noprompt'])
      viciA = await startCharon(hA, '/usr/sbin/charon-systemd')
      hA.sh('swanctl', ['--load-all', '--noprompt'])
      for (let i = 0; i < 50 && officeSa === 0; i++) {
        const sa = (await withVici(viciA, (s) => listSas(s, 'office'))).find(
          (s) => s.state === 'ESTABLISHED' && s.children.some((c) => c.state === 'INSTALLED'),
        )
        if (sa) officeSa = sa.uniqueId ?? 0
        else await sleep(200)
      }
      assert.notEqual(officeSa, 0, "the operator's VPN is up before netkit does anything")
    })
    after(() => {
      for (const h of [hA, hB, hC]) h?.stop()
      rmSync(dir, {recursive: true, force: true})
    })

    /** The operator's connection and secret are loaded, its IKE SA is still the first one, and traffic flows through it. */
    async function operatorIntact(step: string): Promise<void> {
      const {conns, shared, sas} = await withVici(viciA, async (s) => ({conns: await getConns(s), shared: await getShared(s), sas: await listSas(s, 'office')}))
      assert.ok(conns.includes('office'), `${step}: the operator's connection is still loaded (${conns.join(', ')})`)
      assert.ok(shared.includes('ike-office'), `${step}: the operator's secret is still loaded (${shared.join(', ')})`)
      const sa = sas.find((s) => s.uniqueId === officeSa)
      assert.equal(sa?.state, 'ESTABLISHED', `${step}: the operator's IKE SA was never torn down`)
      assert.ok(
        sa!.children.some((c) => c.name === 'office-net' && c.state === 'INSTALLED'),
        `${step}: its CHILD_SA is installed`,
      )
      assert.ok(await pings(hA, '10.1.0.1', '10.2.0.1', 5), `${step}: traffic flows through the operator's VPN`)
    }

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
        '--psk-file',
        pskFile,
        '--timeout',
        '20',
        ...extra,
      ])

    const file = () => join('/etc/netns', hA.ns, 'swanctl', 'conf.d', 'netkit-site.conf')

    it('adds its tunnel into the system charon over VICI: both VPNs carry traffic, the doctor and show say which charon', async () => {
      const c = add(hC, '198.51.100.1', '10.4.0.0/24', '10.3.0.0/24', ['--no-wait'])
      assert.equal(c.code, 0, c.stderr)
      const a = add(hA, '198.51.100.2', '10.3.0.0/24', '10.4.0.0/24')
      assert.equal(a.code, 0, a.stderr)
      assert.match(a.stderr + a.stdout, /the system charon \(charon-systemd, pid \d+/, "says it uses the host's charon")
      assert.doesNotMatch(a.stderr + a.stdout, /swanctl --load|the operator|netkit key/)
      assert.ok(await pings(hA, '10.3.0.1', '10.4.0.1'), "netkit's tunnel carries traffic")
      await operatorIntact('after add')

      assert.equal(statSync(file()).mode & 0o777, 0o600, "netkit's file is where that strongSwan reads it, mode 0600")
      assert.ok(!readFileSync(file(), 'utf8').includes('netkit key'), 'the key is not in clear in the file')
      assert.equal(hA.processes().filter((p) => / charon$/.test(p)).length, 0, 'netkit started no charon of its own')
      const show = hA.cli(['tunnel', 'show', 'site', '--json']).json.result.status
      assert.equal(show.state, 'up')
      assert.equal(show.details.charon.system, true)
      assert.equal(show.details.charon.program, 'charon-systemd')
      assert.deepEqual(
        hA.cli(['tunnel', 'list', '--json']).json.result.map((r: any) => [r.name, r.state, r.datapath]),
        [['site', 'up', 'userspace']],
      )
      const doc = hA.cli(['doctor', '--json'])
      const charon = doc.json.result.checks.find((f: any) => f.id === 'ipsec.charon')
      assert.equal(charon.result, 'ok', JSON.stringify(charon))
      assert.match(charon.reason, /the system charon \(charon-systemd, pid \d+/)
      assert.equal(doc.json.result.checks.find((f: any) => f.id === 'ipsec.sa').result, 'ok')
      assert.equal(hA.cli(['doctor', '--fix', '--yes']).code === 2, false, 'doctor --fix runs')
      await operatorIntact('after doctor --fix')
      // The operator's own reload (systemctl reload strongswan: swanctl --load-all) keeps netkit's tunnel: its file is included.
      hA.sh('swanctl', ['--load-all', '--noprompt'])
      assert.ok((await withVici(viciA, getConns)).includes('netkit-198_51_100_1-198_51_100_2'), "the operator's reload loads netkit's file too")
    })

    it("--replace, down and up touch only netkit's connection; up loads it again after a strongSwan restart dropped it", async () => {
      const r = add(hA, '198.51.100.2', '10.3.0.0/24', '10.4.0.0/24', ['--dpd', '20', '--replace'])
      assert.equal(r.code, 0, r.stderr)
      assert.match(readFileSync(file(), 'utf8'), /dpd_delay = 20s/)
      assert.ok(await pings(hA, '10.3.0.1', '10.4.0.1', 20), "netkit's tunnel carries traffic after --replace")
      await operatorIntact('after --replace')

      assert.equal(hA.cli(['tunnel', 'down', 'site']).code, 0)
      assert.ok(!(await withVici(viciA, getConns)).some((c) => c.startsWith('netkit-')), "down unloads netkit's connection")
      await operatorIntact('after down')
      const up = hA.cli(['tunnel', 'up', 'site', '--timeout', '20'])
      assert.equal(up.code, 0, up.stderr)
      assert.ok(await pings(hA, '10.3.0.1', '10.4.0.1', 20), "netkit's tunnel carries traffic after up")
      await operatorIntact('after up')

      // strongSwan restarted without loading netkit's files: the doctor says so, and "tunnel up" loads them again.
      await withVici(viciA, (s) => unloadConn(s, 'netkit-198_51_100_1-198_51_100_2'))
      const doc = hA.cli(['doctor', '--check', 'ipsec.charon', '--json']).json.result.checks[0]
      assert.equal(doc.result, 'fail', JSON.stringify(doc))
      assert.match(doc.reason, /does not hold the connection of tunnel site/)
      assert.equal(doc.fix, 'netkit tunnel up site')
      const again = hA.cli(['tunnel', 'up', 'site', '--timeout', '20'])
      assert.equal(again.code, 0, again.stderr)
      assert.doesNotMatch(again.stdout, /nothing to do/)
      assert.ok(await pings(hA, '10.3.0.1', '10.4.0.1', 20), "netkit's tunnel carries traffic again")
      await operatorIntact("after the doctor's fix")
    })

    it("del removes netkit's connection, secret and file, and nothing of the operator's", async () => {
      const d = hA.cli(['tunnel', 'del', 'site'])
      assert.equal(d.code, 0, d.stderr)
      assert.ok(!existsSync(file()), 'its file is gone')
      const {conns, shared} = await withVici(viciA, async (s) => ({conns: await getConns(s), shared: await getShared(s)}))
      assert.deepEqual(conns, ['office'], "only the operator's connection is left")
      assert.deepEqual(shared, ['ike-office'], "only the operator's secret is left")
      assert.deepEqual(
        readFileSync(join('/etc/netns', hA.ns, 'swanctl', 'conf.d', 'office.conf'), 'utf8'),
        office('192.0.2.1', '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', true),
        "the operator's file is untouched",
      )
      await operatorIntact('after del')
      assert.equal(hC.cli(['tunnel', 'del', 'site']).code, 0)
    })

    it("X.509: a certificate tunnel in the system charon carries traffic beside the operator's VPN; with its definition gone, doctor --fix unloads and removes only netkit's", async () => {
      // A CA and a certificate for each end, made with strongSwan's pki, outside /etc (the hosts see /tmp as the machine has it).
      const p = (name: string) => join(dir, name)
      const gen = (key: string) => writeFileSync(p(key), execFileSync('pki', ['--gen', '--type', 'ed25519', '--outform', 'pem']), {mode: 0o600})
      gen('ca.key')
      writeFileSync(
        p('ca.crt'),
        execFileSync('pki', ['--self', '--ca', '--lifetime', '30', '--in', p('ca.key'), '--type', 'ed25519', '--dn', 'CN=netkit test CA', '--outform', 'pem']),
      )
      for (const [host, ip] of [
        ['a', '198.51.100.1'],
        ['c', '198.51.100.2'],
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
      const x509 = (h: SimHost, host: string, remote: string, local: string, remoteSubnet: string, extra: string[] = []) =>
        h.cli([
          'tunnel',
          'add',
          'site',
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
          local,
          '--remote-subnet',
          remoteSubnet,
          '--timeout',
          '20',
          ...extra,
        ])
      const etc = join('/etc/netns', hA.ns, 'swanctl')
      // A file of the operator's that happens to carry netkit's prefix: never netkit's to remove.
      const mine = join(etc, 'conf.d', 'netkit-mine.conf')
      writeFileSync(mine, "# the operator's own file\n", {mode: 0o600})

      const c = x509(hC, 'c', '198.51.100.1', '10.4.0.0/24', '10.3.0.0/24', ['--no-wait'])
      assert.equal(c.code, 0, c.stderr)
      const a = x509(hA, 'a', '198.51.100.2', '10.3.0.0/24', '10.4.0.0/24')
      assert.equal(a.code, 0, a.stderr)
      assert.ok(await pings(hA, '10.3.0.1', '10.4.0.1'), 'the certificate tunnel carries traffic')
      await operatorIntact('after the X.509 add')
      assert.ok(lstatSync(join(etc, 'private', 'netkit-site.key')).isSymbolicLink(), 'the key is linked where that strongSwan loads keys from')
      assert.doesNotMatch(readFileSync(file(), 'utf8'), /PRIVATE KEY/, 'the key stays in its own file')
      const keys = async () => withVici(viciA, async (s) => (await s.request('get-keys')).response.keys ?? [])
      assert.equal((await keys()).length, 1, "the system charon holds the tunnel's private key")

      // The definition goes by hand (a wiped /etc/netkit); and a connection of netkit's without any file is loaded.
      rmSync(join(hA.configDir, 'tunnels', 'site.json'))
      const stray = {
        version: '2',
        local_addrs: ['198.51.100.1'],
        remote_addrs: ['203.0.113.77'],
        local: {auth: 'psk'},
        remote: {auth: 'psk'},
        children: {'netkit-stray': {local_ts: ['10.9.0.0/24'], remote_ts: ['10.8.0.0/24']}},
      }
      await withVici(viciA, (s) => loadConn(s, 'netkit-stray', stray))
      const doc = hA.cli(['doctor', '--check', 'leftovers.system-strongswan', '--json']).json.result.checks
      assert.deepEqual(
        doc.map((f: any) => [f.result, f.subject]),
        [
          ['warn', 'netkit-site'],
          ['warn', 'netkit-stray'],
        ],
        JSON.stringify(doc),
      )
      assert.match(
        doc[0].reason,
        /netkit-site\.conf and .*netkit-site\.key are netkit's, for tunnel site, which is no longer defined, and the system charon \(charon-systemd.*\) still holds its connection netkit-198_51_100_1-198_51_100_2/,
      )
      assert.equal(doc[0].fix, 'netkit doctor --fix --check leftovers.system-strongswan')

      const fix = hA.cli(['doctor', '--fix', '--yes', '--check', 'leftovers.system-strongswan'])
      assert.equal(fix.code, 0, fix.stdout + fix.stderr)
      assert.ok(!existsSync(file()) && !existsSync(join(etc, 'private', 'netkit-site.key')), "netkit's file and key link are gone")
      assert.equal(readFileSync(mine, 'utf8'), "# the operator's own file\n", "the operator's file is untouched")
      const {conns, shared} = await withVici(viciA, async (s) => ({conns: await getConns(s), shared: await getShared(s)}))
      assert.deepEqual(conns, ['office'], "netkit's connections are unloaded, the operator's kept")
      assert.deepEqual(shared, ['ike-office'])
      assert.deepEqual(await keys(), [], "the tunnel's private key is unloaded")
      assert.ok(!(await withVici(viciA, (s) => listSas(s))).some((sa) => sa.name.startsWith('netkit-')), "netkit's SA is gone")
      await operatorIntact('after doctor --fix of the leftovers')
      assert.equal(hA.cli(['doctor', '--check', 'leftovers.system-strongswan', '--json']).json.result.checks[0].result, 'ok')
      rmSync(mine)
      assert.equal(hC.cli(['tunnel', 'del', 'site']).code, 0)
    })

    it('a system charon without kernel-libipsec on a kernel without ESP: one line with the fix, exit 2, nothing changed', async (t) => {
      if (existsSync('/sys/module/esp4')) return t.skip('this kernel has ESP: the system charon needs no kernel-libipsec')
      const D = makeNs('hvD')
      sh('ip', ['-n', D, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u0p'])
      sh('ip', ['-n', D, 'addr', 'add', '203.0.113.1/24', 'dev', 'u0'])
      sh('ip', ['-n', D, 'link', 'set', 'u0', 'up'])
      sh('ip', ['-n', D, 'link', 'set', 'u0p', 'up'])
      const hD = bootHost(D, {etc: strongswanEtc(false)})
      try {
        const vici = await startCharon(hD, '/usr/sbin/charon-systemd')
        const r = add(hD, '203.0.113.2', '10.5.0.0/24', '10.6.0.0/24')
        assert.equal(r.code, 2, r.stderr)
        assert.match(r.stderr, /the system charon \(charon-systemd, pid \d+, .*\) runs without kernel-libipsec, and this kernel has no ESP/)
        assert.match(r.stderr, /kernel-libipsec\.conf/)
        assert.deepEqual(await withVici(vici, getConns), [], 'nothing loaded')
        assert.deepEqual(sh('ls', [join('/etc/netns', D, 'swanctl', 'conf.d')]).trim(), '', 'no file written')
        assert.deepEqual(hD.cli(['tunnel', 'list', '--json']).json.result, [], 'no tunnel defined')

        // apply, diff and apply --dry-run of a host file with such a tunnel (and an address before it): refused up front, nothing changed.
        const hostFile = join(dir, 'hostD.yaml')
        writeFileSync(
          hostFile,
          `version: 1
addresses:
  - {dev: u0, address: 203.0.113.9/24}
tunnels:
  site: {type: ipsec, remote: 203.0.113.2, localSubnets: [10.5.0.0/24], remoteSubnets: [10.6.0.0/24], pskFile: ${pskFile}}
`,
        )
        for (const args of [
          ['diff', '-f', hostFile],
          ['apply', '-f', hostFile, '--dry-run'],
          ['apply', '-f', hostFile],
        ]) {
          const res = hD.cli(args)
          assert.equal(res.code, 2, `${args.join(' ')}: ${res.stdout}${res.stderr}`)
          assert.match(res.stderr, /tunnels\.site: the system charon \(charon-systemd, pid \d+, .*\) runs without kernel-libipsec/, args.join(' '))
          assert.doesNotMatch(res.stderr, /undo|undid|203\.0\.113\.9/, `${args.join(' ')}: refused before any step`)
        }
        assert.deepEqual(
          hD.ipj(['-4', 'addr', 'show', 'dev', 'u0'])[0].addr_info.map((a: any) => a.local),
          ['203.0.113.1'],
          'apply added no address',
        )
        assert.deepEqual(await withVici(vici, getConns), [], 'apply loaded nothing')
        assert.deepEqual(sh('ls', [join('/etc/netns', D, 'swanctl', 'conf.d')]).trim(), '', 'apply wrote no file')
        assert.deepEqual(hD.cli(['tunnel', 'list', '--json']).json.result, [], 'apply defined no tunnel')
      } finally {
        hD.stop()
      }
    })
  },
)
