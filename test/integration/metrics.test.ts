import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {skipUnlessRoot} from '../helpers/hosts.js'
import type {SimHost} from '../helpers/realhost.js'
import {pingUntil, twoHosts, type TwoHosts} from '../helpers/topology.js'

/** A sample line of the exposition text: name, labels, value. */
interface Line {
  name: string
  labels: Record<string, string>
  value: number
}

/** Parses the samples of the text format (the test's own reading, not netkit's code). */
function parse(text: string): Line[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(l)
      assert.ok(m, `a sample line: ${l}`)
      const labels: Record<string, string> = {}
      for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
        labels[k] = v.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c))
      return {name: m[1], labels, value: Number(m[3])}
    })
}

/** The value of the one sample of `name` whose labels include `labels`. */
function value(lines: Line[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = lines.filter((l) => l.name === name && Object.entries(labels).every(([k, v]) => l.labels[k] === v))
  assert.ok(found.length <= 1, `one ${name} ${JSON.stringify(labels)}, not ${found.length}`)
  return found[0]?.value
}

function promtool(text: string): {code: number | null; out: string} {
  const r = spawnSync('promtool', ['check', 'metrics'], {input: text, encoding: 'utf8'})
  return {code: r.status, out: `${r.stdout}${r.stderr}`}
}

/** The CHILD_SA of tunnel "site" and its IKE SA as `swanctl --list-sas` (the human listing) shows them. */
function swanctlListing(text: string): {
  ike: string
  child: string
  bytesIn: number
  packetsIn: number
  bytesOut: number
  packetsOut: number
  rekey: number
  ikeRekey: number
  expires: number
} {
  const ike = /^netkit-[^:]+: #\d+, (\w+), IKEv2/m.exec(text)
  const ikeRekey = /^ {2}established \d+s ago, rekeying in (\d+)s/m.exec(text)
  const child = /^ {2}netkit-site: #\d+, reqid \d+, (\w+),/m.exec(text)
  const times = /^ {4}installed \d+s ago, rekeying in (\d+)s, expires in (\d+)s/m.exec(text)
  const dir = (d: string) => new RegExp(`^ {4}${d} +[0-9a-f]+(?:_i)?(?:\\s+[0-9a-f]+_o)?,\\s+(\\d+) bytes,\\s+(\\d+) packets`, 'm').exec(text)
  const i = dir('in')
  const o = dir('out')
  assert.ok(ike && ikeRekey && child && times && i && o, `swanctl --list-sas as expected:\n${text}`)
  return {
    ike: ike[1],
    child: child[1],
    bytesIn: Number(i[1]),
    packetsIn: Number(i[2]),
    bytesOut: Number(o[1]),
    packetsOut: Number(o[2]),
    rekey: Number(times[1]),
    ikeRekey: Number(ikeRekey[1]),
    expires: Number(times[2]),
  }
}

describe('netkit metrics (integration)', {skip: skipUnlessRoot}, () => {
  // A and B are simulated hosts with one WireGuard tunnel (wg1, overlay 10.99.0.0/24) and one IPsec tunnel
  // (site, 10.1.0.0/24 <-> 10.2.0.0/24) up between them, traffic through both; every test reads host A.
  const dir = mkdtempSync(join(tmpdir(), 'netkit-metrics-'))
  after(() => rmSync(dir, {recursive: true, force: true}))
  const pskFile = join(dir, 'site.psk')
  writeFileSync(pskFile, 'metrics are for monitoring 2026\n', {mode: 0o600})
  let w: TwoHosts
  let hA: SimHost
  const sock = 'unix:///etc/netkit/ipsec/charon.vici'

  before(async () => {
    w = twoHosts('me')
    hA = w.hA
    const ka = w.hA.cli(['tunnel', 'pubkey', 'wg1']).stdout.trim()
    const kb = w.hB.cli(['tunnel', 'pubkey', 'wg1']).stdout.trim()
    const wg = (h: SimHost, remote: string, key: string, address: string, extra: string[]) =>
      h.cli(['tunnel', 'add', 'wg1', '--type', 'wireguard', '--remote', remote, '--peer-public-key', key, '--address', address, '--timeout', '15', ...extra])
    const ipsec = (h: SimHost, remote: string, local: string, remoteSubnet: string, extra: string[]) =>
      h.cli([
        'tunnel',
        'add',
        'site',
        '--type',
        'ipsec',
        '--remote',
        remote,
        '--psk-file',
        pskFile,
        '--local-subnet',
        local,
        '--remote-subnet',
        remoteSubnet,
        '--timeout',
        '20',
        ...extra,
      ])
    for (const r of [
      wg(w.hA, '192.0.2.2', kb, '10.99.0.1/24', ['--no-wait']),
      wg(w.hB, '192.0.2.1', ka, '10.99.0.2/24', []),
      ipsec(w.hA, '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait']),
      ipsec(w.hB, '192.0.2.1', '10.2.0.0/24', '10.1.0.0/24', []),
    ])
      assert.equal(r.code, 0, r.stderr)
    assert.ok(await pingUntil(w.A, '10.99.0.2'), 'A reaches B through WireGuard')
    assert.ok(await pingUntil(w.CA, '10.2.0.2'), 'container A reaches container B through IPsec')
  })

  /**
   * Runs `netkit metrics` in host A between two reads of the tools' own view (which must agree with each
   * other: nothing moved meanwhile), so that the three describe one moment. Bounded retries.
   */
  function consistent<T>(read: () => T, stable: (t: T) => unknown = (t) => t): {text: string; lines: Line[]; tool: T; t0: number; t1: number} {
    for (let i = 0; i < 5; i++) {
      const before = read()
      const t0 = Math.floor(Date.now() / 1000)
      const r = hA.cli(['metrics'])
      const t1 = Math.ceil(Date.now() / 1000)
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stderr, '', 'nothing on stderr')
      const after = read()
      if (JSON.stringify(stable(before)) === JSON.stringify(stable(after))) return {text: r.stdout, lines: parse(r.stdout), tool: after, t0, t1}
    }
    assert.fail('the state kept changing while it was read')
  }

  it("prints metrics that promtool accepts: every tunnel up, its data path, and the doctor's checks as the doctor says", () => {
    const r = hA.cli(['metrics'])
    assert.equal(r.code, 0, r.stderr)
    const check = promtool(r.stdout)
    assert.equal(check.code, 0, `promtool check metrics (apt-get install prometheus):\n${check.out}\n${r.stdout}`)
    assert.equal(check.out, '', 'no lint message either')
    const lines = parse(r.stdout)
    for (const [tunnel, type] of [
      ['wg1', 'wireguard'],
      ['site', 'ipsec'],
    ]) {
      assert.equal(value(lines, 'netkit_tunnel_up', {tunnel, type, netns: ''}), 1, `${tunnel} up`)
      assert.equal(value(lines, 'netkit_tunnel_state', {tunnel, state: 'up'}), 1)
      assert.equal(value(lines, 'netkit_tunnel_state', {tunnel, state: 'down'}), 0)
      assert.equal(value(lines, 'netkit_tunnel_datapath_info', {tunnel, datapath: 'userspace'}), 1, 'wireguard-go and kernel-libipsec here')
    }
    // The doctor's verdicts, check by check (the worst finding; a check that only skipped is absent).
    const doctor = hA.cli(['doctor', '--json']).json.result.checks as {id: string; result: string}[]
    const worst = new Map<string, number>()
    for (const c of doctor) if (c.result !== 'skip') worst.set(c.id, Math.max(worst.get(c.id) ?? 0, {ok: 0, warn: 1, fail: 2}[c.result]!))
    const gauges = new Map(lines.filter((l) => l.name === 'netkit_doctor_check_status').map((l) => [l.labels.check, l.value]))
    assert.deepEqual(gauges, worst)
    assert.equal(gauges.get('ipsec.sa'), 0)
    assert.equal(gauges.get('wireguard.handshake'), 0)
    assert.equal(gauges.has('paths.probe'), false, 'no probe traffic: that check is skipped, so absent')
    assert.equal(value(lines, 'netkit_doctor_finding_status', {check: 'ipsec.sa', subject: 'site'}), 0)

    // --all-netns: the host's tunnels as before (it has none in namespaces); --no-doctor: tunnels only; --json: the same samples.
    const bare = hA.cli(['metrics', '--all-netns', '--no-doctor'])
    assert.equal(bare.code, 0, bare.stderr)
    assert.ok(!bare.stdout.includes('netkit_doctor_'), 'no doctor metrics')
    assert.deepEqual(
      parse(bare.stdout).filter((l) => l.name === 'netkit_tunnel_up'),
      lines.filter((l) => l.name === 'netkit_tunnel_up'),
    )
    const json = hA.cli(['metrics', '--json']).json
    assert.equal(json.ok, true)
    const up = json.result.metrics.find((f: any) => f.name === 'netkit_tunnel_up')
    assert.deepEqual([up.type, up.samples.find((s: any) => s.labels.tunnel === 'site').value], ['gauge', 1])
  })

  it('WireGuard peer metrics agree with wg show DEV dump', async () => {
    const {lines, tool, t0, t1} = consistent(() => hA.sh('wg', ['show', 'wg-wg1', 'dump']).trim().split('\n')[1].split('\t'))
    const [peer, , , , handshake, rx, tx] = tool
    const labels = {tunnel: 'wg1', interface: 'wg-wg1', peer}
    assert.ok(Number(handshake) > 0 && Number(rx) > 0 && Number(tx) > 0, 'a handshake and traffic')
    assert.equal(value(lines, 'netkit_wireguard_peer_last_handshake_timestamp_seconds', labels), Number(handshake))
    const age = value(lines, 'netkit_wireguard_peer_last_handshake_age_seconds', labels)!
    assert.ok(
      age >= t0 - Number(handshake) && age <= t1 - Number(handshake),
      `age ${age}: read between ${t0 - Number(handshake)} and ${t1 - Number(handshake)}`,
    )
    assert.equal(value(lines, 'netkit_wireguard_peer_receive_bytes_total', labels), Number(rx))
    assert.equal(value(lines, 'netkit_wireguard_peer_transmit_bytes_total', labels), Number(tx))
    assert.equal(lines.filter((l) => l.name === 'netkit_wireguard_peer_receive_bytes_total').length, 1, 'one peer')
  })

  it('IPsec metrics agree with swanctl --list-sas', () => {
    // The seconds to rekey count down: compared within a margin, and not part of "nothing moved".
    const {
      lines,
      tool: sa,
      t0,
      t1,
    } = consistent(
      () => swanctlListing(hA.sh('swanctl', ['--list-sas', '--uri', sock])),
      (s) => ({...s, rekey: 0, ikeRekey: 0, expires: 0}),
    )
    const base = {tunnel: 'site', netns: ''}
    assert.deepEqual([sa.ike, sa.child], ['ESTABLISHED', 'INSTALLED'])
    assert.equal(value(lines, 'netkit_ipsec_ike_sas', {...base, state: 'ESTABLISHED'}), 1)
    assert.equal(value(lines, 'netkit_ipsec_ike_sas', {...base, state: 'CONNECTING'}), 0)
    assert.equal(value(lines, 'netkit_ipsec_child_sas', {...base, state: 'INSTALLED'}), 1)
    assert.ok(sa.bytesIn > 0 && sa.bytesOut > 0, 'traffic on the CHILD_SA')
    assert.equal(value(lines, 'netkit_ipsec_receive_bytes_total', base), sa.bytesIn)
    assert.equal(value(lines, 'netkit_ipsec_transmit_bytes_total', base), sa.bytesOut)
    assert.equal(value(lines, 'netkit_ipsec_receive_packets_total', base), sa.packetsIn)
    assert.equal(value(lines, 'netkit_ipsec_transmit_packets_total', base), sa.packetsOut)
    // swanctl was read after netkit: its countdowns are lower by the time between, at most t1 - t0 (and a second of rounding).
    const near = (metric: string, expected: number) => {
      const got = value(lines, metric, base)!
      assert.ok(got >= expected - 1 && got <= expected + (t1 - t0) + 1, `${metric} ${got}, swanctl says ${expected} (read ${t1 - t0}s apart at most)`)
    }
    near('netkit_ipsec_child_sa_rekey_seconds', sa.rekey)
    near('netkit_ipsec_child_sa_expire_seconds', sa.expires)
    near('netkit_ipsec_ike_sa_rekey_seconds', sa.ikeRekey)
  })

  it('-o writes the file atomically (a new file renamed over the old), mode 0644, and prints nothing', () => {
    const out = mkdtempSync(join(dir, 'textfile-'))
    const file = join(out, 'netkit.prom')
    writeFileSync(file, 'old\n', {mode: 0o600})
    // A reader that has the old file open (a scrape in progress) goes on reading the old file whole.
    const fd = openSync(file, 'r')
    try {
      const r = hA.cli(['metrics', '-o', file])
      assert.equal(r.code, 0, r.stderr)
      assert.deepEqual([r.stdout, r.stderr], ['', ''], 'quiet for cron')
      const buf = Buffer.alloc(16)
      assert.equal(buf.subarray(0, readSync(fd, buf, 0, 16, 0)).toString(), 'old\n', 'the old file was replaced, not rewritten in place')
    } finally {
      closeSync(fd)
    }
    const text = readFileSync(file, 'utf8')
    assert.equal(promtool(text).code, 0)
    assert.equal(value(parse(text), 'netkit_tunnel_up', {tunnel: 'site'}), 1)
    assert.equal(statSync(file).mode & 0o777, 0o644, "readable by node_exporter's own user")
    assert.deepEqual(readdirSync(out), ['netkit.prom'], 'no temporary file left')

    const bad = hA.cli(['metrics', '-o', join(out, 'missing', 'netkit.prom')])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /^error: -o .*: the directory .*missing does not exist/)
    assert.equal(bad.stderr.trim().split('\n').length, 1, 'one line')
  })
})
