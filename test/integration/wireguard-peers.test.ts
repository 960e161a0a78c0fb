/**
 * A WireGuard interface with many peers (issue 17): three simulated hosts on
 * one underlay, each with one interface ("mesh"), the other two its peers;
 * made on the command line ("tunnel add" without --remote, "tunnel peer add")
 * and with host files ("apply"). Adding or removing one peer touches only that
 * peer: the third host's session (its handshake, a ping running through it)
 * goes on, and wireguard-go is not restarted.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {dump, filesUnder, skipUnlessRoot} from '../helpers/hosts.js'
import {hosts, pingUntil, type UnderlayHost} from '../helpers/topology.js'

const overlay = (i: number) => `10.99.0.${i + 1}`
const subnet = (i: number) => `10.${i + 1}.0.0/24`

describe('WireGuard interface with peers (integration)', {skip: skipUnlessRoot}, () => {
  let H: UnderlayHost[] = []
  let keys: string[] = []
  before(() => {
    H = hosts(3, 'hwp').hosts
    keys = H.map((h) => h.host.cli(['tunnel', 'pubkey', 'mesh']).stdout.trim())
  })
  after(() => {
    for (const h of H) h.host.stop()
  })

  const peerArgs = (j: number) => [
    `h${j + 1}`,
    '--public-key',
    keys[j],
    '--allowed-ips',
    `${overlay(j)}/32,${subnet(j)}`,
    '--endpoint',
    `${H[j].address}:51820`,
  ]
  /** The latest handshake (unix seconds) host i has with host j, from wg itself. */
  const handshake = (i: number, j: number): number => {
    const line = H[i].host
      .sh('wg', ['show', 'wg-mesh', 'latest-handshakes'])
      .split('\n')
      .find((l) => l.startsWith(keys[j]))
    return Number(line?.split('\t')[1] ?? 0)
  }
  const wgPids = (i: number) => H[i].host.processes().filter((p) => p.endsWith(' wireguard-go'))
  /**
   * A ping from host i to host j's overlay address (every 0.2 s), from 1 s before `during` runs to
   * 1 s after; resolves to how many were sent and which sent before that last second got no reply
   * (`lost`). Those sent in the last second may still be on their way when ping is stopped (it
   * exits at once on SIGINT): not losses, and never sent while `during` ran.
   */
  const pingDuring = async (i: number, j: number, during: () => void | Promise<void>): Promise<{sent: number; received: number; lost: number[]}> => {
    const child = spawn('nsenter', ['-t', String(H[i].host.pid), '-n', '--', 'ping', '-n', '-i', '0.2', '-W', '1', overlay(j)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    await new Promise((r) => setTimeout(r, 1000))
    await during()
    await new Promise((r) => setTimeout(r, 1000))
    // A ping that ended by itself (it could not start) has fired its exit already: do not wait for another.
    const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r))
    child.kill('SIGINT')
    await exited
    const m = /(\d+) packets transmitted, (\d+) received/.exec(out)
    const sent = Number(m?.[1] ?? 0)
    const answered = new Set([...out.matchAll(/icmp_seq=(\d+)/g)].map((x) => Number(x[1])))
    const lost: number[] = []
    for (let seq = 1; seq <= sent - 5; seq++) if (!answered.has(seq)) lost.push(seq)
    return {sent, received: Number(m?.[2] ?? 0), lost}
  }

  it("tunnel add without --remote makes an interface; peer add/del change one peer, and the others' sessions go on", async () => {
    for (const [i, h] of H.entries()) {
      const r = h.host.cli(['tunnel', 'add', 'mesh', '--type', 'wireguard', '--address', `${overlay(i)}/24`, '--listen-port', '51820'])
      assert.equal(r.code, 0, r.stderr)
      for (const j of [0, 1, 2].filter((x) => x !== i)) {
        const p = h.host.cli(['tunnel', 'peer', 'add', 'mesh', ...peerArgs(j)])
        assert.equal(p.code, 0, p.stderr)
        assert.match(p.stderr, new RegExp(`wg set wg-mesh peer ${keys[j].replace(/[+/]/g, '\\$&')} endpoint`), 'one wg set for the one peer')
      }
    }
    for (const [i, j] of [
      [0, 1],
      [0, 2],
      [1, 2],
    ])
      assert.ok(await pingUntil(H[i].ns, overlay(j), 10), `host ${i + 1} reaches host ${j + 1}`)
    assert.equal(wgPids(0).length, 1, 'one wireguard-go for both peers')
    assert.deepEqual(
      H[0].host.ipj(['route', 'show', 'proto', '178']).map((r) => [r.dst, r.dev]),
      [
        ['10.2.0.0/24', 'wg-mesh'],
        ['10.3.0.0/24', 'wg-mesh'],
      ],
      "a route for each peer's allowed-ip outside the tunnel's own prefix",
    )

    // The same again: a no-op. A peer whose allowed-ips overlap another's: bad input, nothing changed.
    const again = H[0].host.cli(['tunnel', 'peer', 'add', 'mesh', ...peerArgs(1)])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /already set up; nothing to do/)
    const before = dump(H[0].ns)
    const bad = H[0].host.cli([
      'tunnel',
      'peer',
      'add',
      'mesh',
      'x',
      '--public-key',
      'hq97es4O1JAzBov3N2k/PtbfqQSJD6yyOhRvxekajl4=',
      '--allowed-ips',
      '10.2.0.128/25',
    ])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /^error: peer x: allowed-ip 10\.2\.0\.128\/25 overlaps 10\.2\.0\.0\/24 of peer h2; /m)
    const changed = H[0].host.cli(['tunnel', 'peer', 'add', 'mesh', ...peerArgs(1).slice(0, 4), '10.99.0.2/32'])
    assert.equal(changed.code, 1, 'a different peer of that name: refused without --replace')
    assert.match(changed.stderr, /^error: tunnel mesh has a peer h2 with a different definition \(endpoint, allowedIps\); pass --replace/m)
    assert.equal(dump(H[0].ns), before, 'nothing changed')

    // tunnel show --json and peer list: per peer.
    const show = H[0].host.cli(['tunnel', 'show', 'mesh', '--json'])
    assert.equal(show.code, 0, show.stderr)
    const peers = show.json.result.status.details.peers
    assert.deepEqual(
      peers.map((p: any) => [p.name, p.publicKey, p.endpoint, p.allowedIps]),
      [
        ['h2', keys[1], '192.0.2.2:51820', ['10.99.0.2/32', '10.2.0.0/24']],
        ['h3', keys[2], '192.0.2.3:51820', ['10.99.0.3/32', '10.3.0.0/24']],
      ],
    )
    for (const p of peers) {
      assert.match(p.latestHandshake, /^\d{4}-\d\d-\d\dT/)
      assert.ok(p.handshakeAgeSeconds >= 0 && p.handshakeAgeSeconds < 60 && p.rxBytes > 0 && p.txBytes > 0, JSON.stringify(p))
    }
    assert.equal(show.json.result.status.state, 'up')
    assert.deepEqual(
      H[0].host.cli(['tunnel', 'peer', 'list', 'mesh', '--json']).json.result.map((p: any) => p.name),
      ['h2', 'h3'],
    )

    // Remove and add back the peer h2 on host 1 while host 1 pings host 3: that session is not touched.
    const pid = wgPids(0)
    const hs = handshake(0, 2)
    assert.ok(hs > 0)
    const ping = await pingDuring(0, 2, () => {
      const del = H[0].host.cli(['tunnel', 'peer', 'del', 'mesh', 'h2'])
      assert.equal(del.code, 0, del.stderr)
      assert.match(del.stderr, /wg set wg-mesh peer \S+ remove\n/)
      assert.deepEqual(
        H[0].host.ipj(['route', 'show', 'proto', '178']).map((r) => r.dst),
        ['10.3.0.0/24'],
        "h2's route went with it",
      )
      assert.ok(!H[0].host.sh('wg', ['show', 'wg-mesh', 'peers']).includes(keys[1]))
      const add = H[0].host.cli(['tunnel', 'peer', 'add', 'mesh', ...peerArgs(1)])
      assert.equal(add.code, 0, add.stderr)
    })
    assert.ok(ping.sent >= 10 && ping.lost.length === 0, `the ping to host 3 lost nothing: ${JSON.stringify(ping)}`)
    assert.equal(handshake(0, 2), hs, 'the session with host 3 is the same one (no new handshake)')
    assert.deepEqual(wgPids(0), pid, 'wireguard-go was not restarted')
    assert.ok(await pingUntil(H[0].ns, overlay(1), 10), 'h2 is back')

    // Deleting a peer that is not there: a no-op. A one-peer tunnel takes no peers by name.
    assert.match(H[0].host.cli(['tunnel', 'peer', 'del', 'mesh', 'nobody']).stdout, /has no peer nobody; nothing to do/)
    for (const h of H) assert.equal(h.host.cli(['tunnel', 'del', 'mesh']).code, 0)
    for (const h of H) {
      assert.deepEqual(h.host.ipj(['route', 'show', 'proto', '178']), [])
      assert.deepEqual(h.host.processes(), [], 'no wireguard-go left')
      assert.deepEqual(filesUnder(join(h.host.configDir, 'tunnels')), [])
    }
  })

  it('apply: peers in host files; one peer more or fewer is one change, with the other sessions untouched; a fresh mesh passes the doctor', async () => {
    const file = (i: number, peers: number[], extra = '') => `version: 1
tunnels:
  mesh:
    type: wireguard
    address: ${overlay(i)}/24
    listenPort: 51820
    peers:${peers.length ? '' : ' {}'}
${peers
  .map(
    (j) => `      h${j + 1}:
        publicKey: "${keys[j]}"
        endpoint: ${H[j].address}:51820
        allowedIps: [${overlay(j)}/32, ${subnet(j)}]
`,
  )
  .join('')}${extra}`
    // (Whatever the test before left, if it failed half way.)
    for (const h of H) h.host.cli(['tunnel', 'del', 'mesh'])
    // "tunnel del" took the key pairs with the tunnels: each host makes a new one, gathered before the files are written.
    keys = H.map((h) => h.host.cli(['tunnel', 'pubkey', 'mesh']).stdout.trim())
    const write = (i: number, text: string) => writeFileSync(join(H[i].host.configDir, 'host.yaml'), text)
    const apply = (i: number, args: string[] = []) => H[i].host.cli(['apply', '-f', '/etc/netkit/host.yaml', ...args])
    for (const i of [0, 1, 2]) {
      write(
        i,
        file(
          i,
          [0, 1, 2].filter((j) => j !== i),
        ),
      )
      const r = apply(i)
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, /applied 3 changes \(3 added/)
    }
    for (const [i, j] of [
      [0, 1],
      [0, 2],
      [1, 2],
    ])
      assert.ok(await pingUntil(H[i].ns, overlay(j), 10), `host ${i + 1} reaches host ${j + 1}`)
    for (const h of H) {
      const d = h.host.cli(['doctor'])
      assert.equal(d.code, 0, `a freshly meshed host passes the doctor:\n${d.stdout}`)
    }
    const again = apply(0)
    assert.equal(again.code, 0)
    assert.match(again.stdout, /nothing to do/)

    // One peer fewer in host 1's file: diff says one change, apply makes it; the session with host 3 goes on.
    write(0, file(0, [2]))
    const diff = H[0].host.cli(['diff', '-f', '/etc/netkit/host.yaml', '--json'])
    assert.equal(diff.code, 0, diff.stderr)
    assert.deepEqual(
      diff.json.result.changes.map((c: any) => [c.action, c.kind, c.object]),
      [['remove', 'wg-peer', 'peer h2 of WireGuard tunnel mesh']],
    )
    const pid = wgPids(0)
    const hs = handshake(0, 2)
    const ping = await pingDuring(0, 2, () => {
      const r = apply(0)
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, /applied 1 change \(0 added, 0 changed, 1 removed\), verified/)
      write(0, file(0, [1, 2]))
      const back = apply(0)
      assert.equal(back.code, 0, back.stderr)
      assert.match(back.stdout, /applied 1 change \(1 added, 0 changed, 0 removed\), verified/)
      assert.match(back.stderr, /wg set wg-mesh peer \S+ endpoint 192\.0\.2\.2:51820 allowed-ips 10\.99\.0\.2\/32,10\.2\.0\.0\/24\n/)
    })
    assert.ok(ping.sent >= 10 && ping.lost.length === 0, `the ping to host 3 lost nothing: ${JSON.stringify(ping)}`)
    assert.equal(handshake(0, 2), hs, 'the session with host 3 is the same one')
    assert.deepEqual(wgPids(0), pid, 'wireguard-go was not restarted')
    assert.ok(await pingUntil(H[0].ns, overlay(1), 10), 'h2 is back')

    // A change that fails at the peer step (its route is something else's) is undone whole: the host is as before.
    H[0].host.sh('ip', ['route', 'add', '10.7.0.0/24', 'dev', 'u0'])
    const before = dump(H[0].ns)
    write(
      0,
      `${file(0, [1, 2]).replace('allowedIps: [10.99.0.3/32, 10.3.0.0/24]', 'allowedIps: [10.99.0.3/32, 10.3.0.0/24, 10.7.0.0/24]')}routes:\n  - {to: 10.8.0.0/24, dev: u0}\n`,
    )
    const bad = apply(0)
    assert.equal(bad.code, 1, bad.stdout)
    assert.match(bad.stderr, /^error: route 10\.7\.0\.0\/24 already goes dev u0: tunnel mesh would take it over/m)
    assert.equal(dump(H[0].ns), before, 'undone: the host is as before')
    assert.deepEqual(
      H[0].host.cli(['tunnel', 'show', 'mesh', '--json']).json.result.status.details.peers.map((p: any) => p.allowedIps.length),
      [2, 2],
    )
    H[0].host.sh('ip', ['route', 'del', '10.7.0.0/24', 'dev', 'u0'])

    // The file without the tunnel: all of it goes.
    for (const i of [0, 1, 2]) {
      write(i, 'version: 1\n')
      assert.equal(apply(i).code, 0)
      assert.deepEqual(H[i].host.processes(), [])
      assert.deepEqual(H[i].host.ipj(['route', 'show', 'proto', '178']), [])
    }
  })
})
