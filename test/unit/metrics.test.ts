import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import type {Finding} from '../../src/lib/doctor/types.js'
import {CHILD_STATES, IKE_STATES, type Snapshot, toFamilies} from '../../src/lib/metrics/collect.js'
import {escapeHelp, escapeLabelValue, formatValue, type MetricFamily, renderExposition} from '../../src/lib/metrics/exposition.js'
import {checkOutputPath, writeMetricsFile} from '../../src/lib/metrics/output.js'
import type {TunnelDef} from '../../src/lib/tunnel/types.js'
import {Recorder} from '../helpers/recorder.js'

const hasPromtool = spawnSync('promtool', ['--version']).status === 0

/** `promtool check metrics` on the text: its complaints ("" when none). */
function promtool(text: string): string {
  const r = spawnSync('promtool', ['check', 'metrics'], {input: text, encoding: 'utf8'})
  return r.status === 0 ? '' : `${r.stdout}${r.stderr}`
}

const fam = (name: string, type: 'gauge' | 'counter', samples: MetricFamily['samples'], help = 'Help.'): MetricFamily => ({name, type, help, samples})

describe('metrics: the exposition format', () => {
  it('escapes label values and help texts as the text format says', () => {
    assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd')
    assert.equal(escapeHelp('back\\slash "quoted"\nnext'), 'back\\\\slash "quoted"\\nnext', 'quotes stay as they are in HELP')
    assert.deepEqual(
      [formatValue(3), formatValue(-2.5), formatValue(NaN), formatValue(Infinity), formatValue(-Infinity), formatValue(1e21)],
      ['3', '-2.5', 'NaN', '+Inf', '-Inf', '1e+21'],
    )
  })

  it('writes HELP and TYPE once per family, its samples together, and leaves out families with none', () => {
    const text = renderExposition([
      fam('netkit_a', 'gauge', [
        {labels: {tunnel: 'x'}, value: 1},
        {labels: {tunnel: 'y'}, value: 0},
      ]),
      fam('netkit_empty', 'gauge', []),
      fam('netkit_b_bytes_total', 'counter', [{labels: {}, value: 12}]),
    ])
    assert.equal(
      text,
      [
        '# HELP netkit_a Help.',
        '# TYPE netkit_a gauge',
        'netkit_a{tunnel="x"} 1',
        'netkit_a{tunnel="y"} 0',
        '# HELP netkit_b_bytes_total Help.',
        '# TYPE netkit_b_bytes_total counter',
        'netkit_b_bytes_total 12',
        '',
      ].join('\n'),
    )
    assert.equal(renderExposition([fam('netkit_empty', 'gauge', [])]), '', 'nothing at all: an empty file')
  })

  it("refuses what Prometheus would reject (it is netkit's mistake, not the user's)", () => {
    assert.throws(() => renderExposition([fam('netkit-bad', 'gauge', [{labels: {}, value: 1}])]), /bad metric name/)
    assert.throws(() => renderExposition([fam('netkit_x', 'gauge', [{labels: {'peer-name': 'a'}, value: 1}])]), /bad label name/)
    assert.throws(() => renderExposition([fam('netkit_x', 'gauge', [{labels: {__name: 'a'}, value: 1}])]), /bad label name/)
    assert.throws(() => renderExposition([fam('netkit_x_bytes', 'counter', [{labels: {}, value: 1}])]), /does not end in _total/)
    assert.throws(
      () =>
        renderExposition([
          fam('netkit_x', 'gauge', [
            {labels: {a: '1'}, value: 1},
            {labels: {a: '1'}, value: 2},
          ]),
        ]),
      /twice/,
    )
    assert.throws(() => renderExposition([fam('netkit_x', 'gauge', [{labels: {}, value: 1}]), fam('netkit_x', 'gauge', [{labels: {}, value: 1}])]), /twice/)
  })

  it(
    'label values with quotes, backslashes and line feeds pass promtool',
    {skip: !hasPromtool && 'promtool is not installed (apt-get install prometheus)'},
    () => {
      const text = renderExposition([
        fam('netkit_odd', 'gauge', [{labels: {subject: 'a "quoted" \\ name\nand a second line'}, value: 1}], 'Help with a \\ backslash\nand a line feed.'),
      ])
      assert.equal(promtool(text), '')
      assert.match(text, /^netkit_odd\{subject="a \\"quoted\\" \\\\ name\\nand a second line"\} 1$/m)
    },
  )
})

const wgDef = (name: string): TunnelDef => ({
  version: 1,
  name,
  type: 'wireguard',
  local: '192.0.2.1',
  remote: '192.0.2.2',
  localSubnets: [],
  remoteSubnets: [],
  datapath: 'auto',
  wireguard: {ifname: `wg-${name}`, listenPort: 51820, peerPublicKey: 'K'.repeat(43) + '=', endpoint: '192.0.2.2:51820'},
})
const ipsecDef = (name: string): TunnelDef => ({
  version: 1,
  name,
  type: 'ipsec',
  local: '192.0.2.1',
  remote: '192.0.2.2',
  localSubnets: ['10.1.0.0/24'],
  remoteSubnets: ['10.2.0.0/24'],
  datapath: 'auto',
})
const child = (over: Record<string, unknown>) => ({
  name: 'netkit-site',
  state: 'INSTALLED',
  encap: true,
  bytesIn: 100,
  bytesOut: 200,
  packetsIn: 1,
  packetsOut: 2,
  rekeyTime: 3000,
  lifeTime: 3500,
  localTs: [],
  remoteTs: [],
  ...over,
})
const finding = (id: string, result: Finding['result'], subject?: string): Finding => ({
  id,
  title: id,
  group: 'host',
  result,
  evidence: {},
  ...(subject ? {subject} : {}),
})

/** The samples of one family as "labels value" lines, for short assertions. */
function samples(families: MetricFamily[], name: string): string[] {
  const f = families.find((x) => x.name === name)
  return (f?.samples ?? []).map(
    (s) =>
      `${Object.entries(s.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(',')} ${s.value}`,
  )
}

describe("metrics: from the tunnels' state and the doctor's findings", () => {
  const now = 1_800_000_000
  const snap: Snapshot = {
    now,
    scopes: [
      {
        tunnels: [
          {
            def: wgDef('wg1'),
            status: {
              state: 'up',
              datapath: 'userspace',
              details: {
                ifname: 'wg-wg1',
                peer: {publicKey: 'PEER1=', latestHandshake: new Date((now - 7) * 1000).toISOString(), handshakeAgeSeconds: 7, rxBytes: 1000, txBytes: 2000},
              },
            },
          },
          // The shape of an interface with many peers (the fleet contract): named peers, one never seen.
          {
            def: wgDef('mesh'),
            status: {
              state: 'up',
              datapath: 'kernel',
              details: {
                ifname: 'wg-mesh',
                peers: [
                  {name: 'b', publicKey: 'PB=', latestHandshake: new Date((now - 30) * 1000).toISOString(), rxBytes: 5, txBytes: 6},
                  {name: 'c', publicKey: 'PC=', latestHandshake: null, rxBytes: 0, txBytes: 0},
                ],
              },
            },
          },
          {
            def: wgDef('gone'),
            status: {
              state: 'down',
              datapath: 'userspace',
              details: {ifname: 'wg-gone', peer: {publicKey: 'PG=', latestHandshake: null, rxBytes: 0, txBytes: 0}},
            },
          },
          {
            def: ipsecDef('site'),
            status: {
              state: 'up',
              datapath: 'userspace',
              details: {
                ikeSas: [
                  {
                    name: 'netkit-192_0_2_1-192_0_2_2',
                    state: 'ESTABLISHED',
                    initiator: true,
                    rekeyTime: 12000,
                    children: [child({}), child({state: 'REKEYED', bytesIn: 50, bytesOut: 60, packetsIn: 5, packetsOut: 6, rekeyTime: undefined})],
                  },
                  {name: 'netkit-192_0_2_1-192_0_2_2', state: 'CONNECTING', initiator: true, children: []},
                ],
              },
            },
          },
        ],
        findings: [
          finding('host.forwarding', 'ok'),
          finding('ipsec.sa', 'ok', 'site'),
          finding('wireguard.handshake', 'ok', 'wg1'),
          finding('wireguard.handshake', 'fail', 'gone'),
          finding('kernel.support', 'warn', 'ESP'),
          finding('kernel.support', 'ok', 'TUN'),
          finding('paths.probe', 'skip'),
        ],
      },
      {netns: 'r1', tunnels: [{def: {...ipsecDef('down1'), netns: 'r1'}, status: {state: 'down', datapath: 'kernel', details: {ikeSas: []}}}]},
    ],
  }
  const families = toFamilies(snap)

  it('says per tunnel whether it is up, its state and its data path', () => {
    assert.deepEqual(samples(families, 'netkit_tunnel_up'), [
      'netns=,tunnel=wg1,type=wireguard 1',
      'netns=,tunnel=mesh,type=wireguard 1',
      'netns=,tunnel=gone,type=wireguard 0',
      'netns=,tunnel=site,type=ipsec 1',
      'netns=r1,tunnel=down1,type=ipsec 0',
    ])
    assert.deepEqual(
      samples(families, 'netkit_tunnel_state').filter((l) => l.includes('tunnel=gone')),
      [
        'netns=,tunnel=gone,type=wireguard,state=up 0',
        'netns=,tunnel=gone,type=wireguard,state=connecting 0',
        'netns=,tunnel=gone,type=wireguard,state=down 1',
      ],
    )
    assert.deepEqual(
      samples(families, 'netkit_tunnel_datapath_info').filter((l) => /wg1|mesh/.test(l)),
      ['netns=,tunnel=wg1,type=wireguard,datapath=userspace 1', 'netns=,tunnel=mesh,type=wireguard,datapath=kernel 1'],
    )
  })

  it('labels WireGuard peers by public key, and by name where the tunnel names them', () => {
    assert.deepEqual(
      samples(families, 'netkit_wireguard_peer_last_handshake_timestamp_seconds'),
      [
        `netns=,tunnel=wg1,interface=wg-wg1,peer=PEER1= ${now - 7}`,
        `netns=,tunnel=mesh,interface=wg-mesh,peer=PB=,peer_name=b ${now - 30}`,
        'netns=,tunnel=mesh,interface=wg-mesh,peer=PC=,peer_name=c 0',
      ],
      'a device that is down has no peer metrics; a peer never seen has timestamp 0',
    )
    assert.deepEqual(
      samples(families, 'netkit_wireguard_peer_last_handshake_age_seconds'),
      ['netns=,tunnel=wg1,interface=wg-wg1,peer=PEER1= 7', 'netns=,tunnel=mesh,interface=wg-mesh,peer=PB=,peer_name=b 30'],
      'no age for a peer never seen',
    )
    assert.deepEqual(samples(families, 'netkit_wireguard_peer_receive_bytes_total').slice(0, 2), [
      'netns=,tunnel=wg1,interface=wg-wg1,peer=PEER1= 1000',
      'netns=,tunnel=mesh,interface=wg-mesh,peer=PB=,peer_name=b 5',
    ])
    assert.deepEqual(samples(families, 'netkit_wireguard_peer_transmit_bytes_total')[0], 'netns=,tunnel=wg1,interface=wg-wg1,peer=PEER1= 2000')
  })

  it("counts IPsec SAs per charon state, sums bytes and packets over the tunnel's CHILD_SAs, and gives the seconds to rekey of the SAs in use", () => {
    const ike = samples(families, 'netkit_ipsec_ike_sas').filter((l) => l.includes('tunnel=site'))
    assert.equal(ike.length, IKE_STATES.length, 'every state, 0 when no SA is in it')
    assert.ok(
      ike.includes('netns=,tunnel=site,state=ESTABLISHED 1') &&
        ike.includes('netns=,tunnel=site,state=CONNECTING 1') &&
        ike.includes('netns=,tunnel=site,state=DELETING 0'),
    )
    const ch = samples(families, 'netkit_ipsec_child_sas').filter((l) => l.includes('tunnel=site'))
    assert.equal(ch.length, CHILD_STATES.length)
    assert.ok(ch.includes('netns=,tunnel=site,state=INSTALLED 1') && ch.includes('netns=,tunnel=site,state=REKEYED 1'))
    assert.deepEqual(samples(families, 'netkit_ipsec_receive_bytes_total'), ['netns=,tunnel=site 150'], 'a tunnel that is down and has no SA has no counters')
    assert.deepEqual(samples(families, 'netkit_ipsec_transmit_bytes_total'), ['netns=,tunnel=site 260'])
    assert.deepEqual(samples(families, 'netkit_ipsec_receive_packets_total'), ['netns=,tunnel=site 6'])
    assert.deepEqual(samples(families, 'netkit_ipsec_transmit_packets_total'), ['netns=,tunnel=site 8'])
    assert.deepEqual(samples(families, 'netkit_ipsec_ike_sa_rekey_seconds'), ['netns=,tunnel=site 12000'])
    assert.deepEqual(samples(families, 'netkit_ipsec_child_sa_rekey_seconds'), ['netns=,tunnel=site 3000'])
    assert.deepEqual(samples(families, 'netkit_ipsec_child_sa_expire_seconds'), ['netns=,tunnel=site 3500'])
    assert.ok(samples(families, 'netkit_ipsec_ike_sas').includes('netns=r1,tunnel=down1,state=ESTABLISHED 0'))
  })

  it("gives the doctor's verdict per check (the worst of its findings) and per subject; skipped checks are absent", () => {
    assert.deepEqual(samples(families, 'netkit_doctor_check_status'), [
      'netns=,check=host.forwarding 0',
      'netns=,check=ipsec.sa 0',
      'netns=,check=wireguard.handshake 2',
      'netns=,check=kernel.support 1',
    ])
    assert.deepEqual(samples(families, 'netkit_doctor_finding_status'), [
      'netns=,check=host.forwarding,subject= 0',
      'netns=,check=ipsec.sa,subject=site 0',
      'netns=,check=wireguard.handshake,subject=wg1 0',
      'netns=,check=wireguard.handshake,subject=gone 2',
      'netns=,check=kernel.support,subject=ESP 1',
      'netns=,check=kernel.support,subject=TUN 0',
    ])
  })

  it('the whole of it passes promtool check metrics', {skip: !hasPromtool && 'promtool is not installed (apt-get install prometheus)'}, () => {
    assert.equal(promtool(renderExposition(families)), '')
  })
})

describe('metrics: the -o file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'netkit-metrics-'))
  after(() => rmSync(dir, {recursive: true, force: true}))

  it('replaces the file atomically with mode 0644 whatever the umask, leaving no temporary file', () => {
    const path = join(dir, 'netkit.prom')
    writeFileSync(path, 'old\n', {mode: 0o600})
    const old = process.umask(0o077)
    try {
      writeMetricsFile(path, 'netkit_x 1\n')
    } finally {
      process.umask(old)
    }
    assert.equal(readFileSync(path, 'utf8'), 'netkit_x 1\n')
    assert.equal(statSync(path).mode & 0o777, 0o644)
    assert.deepEqual(readdirSync(dir), ['netkit.prom'])
  })

  it('refuses a path in a directory that does not exist, or a directory, before reading anything', () => {
    assert.throws(
      () => checkOutputPath(join(dir, 'nope', 'netkit.prom')),
      (e: any) => e.exit === 2 && /the directory .*nope does not exist/.test(e.message),
    )
    assert.throws(
      () => checkOutputPath(dir),
      (e: any) => e.exit === 2 && /is a directory/.test(e.message),
    )
    checkOutputPath(join(dir, 'new.prom'))
  })
})

describe('runner: withReadCache', () => {
  it('runs each distinct read once, in every namespace it is asked for, and never caches a change', async () => {
    const rec = new Recorder().on('dump', {stdout: 'x'})
    const r = rec.runner().withReadCache()
    const inv = {tool: 'wg', args: ['show', 'wg0', 'dump']}
    assert.deepEqual(await Promise.all([r.read(inv), r.read(inv), r.probe(inv)]), ['x', 'x', {exitCode: 0, stdout: 'x', stderr: ''}])
    await r.in('n1').read(inv)
    await r.in('n1').read(inv)
    await r.run({tool: 'ip', args: ['link', 'set', 'lo', 'up']})
    await r.run({tool: 'ip', args: ['link', 'set', 'lo', 'up']})
    assert.deepEqual(rec.lines, ['wg show wg0 dump', 'ip netns exec n1 wg show wg0 dump', 'ip link set lo up', 'ip link set lo up'])
  })
})
