import assert from 'node:assert/strict'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {exitOf, stderrUntil} from '../helpers/cli.js'
import {filesUnder, makeNs, skipUnlessRoot} from '../helpers/hosts.js'
import {bootHost, type SimHost} from '../helpers/realhost.js'

/** The lab's namespaces in host h (its own /run/netns: a lab up on this machine is not seen, nor touched). */
const labNamespaces = (h: SimHost) =>
  h
    .sh('ip', ['netns', 'list'])
    .split('\n')
    .filter((l) => l.startsWith('nklab-'))

describe('netkit lab (integration)', {skip: skipUnlessRoot}, () => {
  // Each test runs the lab inside one simulated host (test/helpers/realhost.ts): netkit with its defaults, as on a machine.
  const host = (tag: string) => bootHost(makeNs(tag))

  it('lab up builds 3 hosts joined by IPsec (subnets) and WireGuard (overlay), proven; lab down leaves the machine as it was', () => {
    const h = host('lb')
    const up = h.cli(['lab', 'up', '--hosts', '3', '--json'], {timeoutMs: 300_000})
    assert.equal(up.code, 0, up.stderr)
    const r = up.json.result
    assert.deepEqual(r.types, ['ipsec', 'wireguard'])
    // IPsec: a tunnel per pair and end (6); WireGuard: one interface per host, the others its peers (3).
    assert.equal(r.tunnels, 9)
    assert.equal(r.pairs.length, 12)
    assert.deepEqual(
      r.pairs.filter((p: any) => !p.ping),
      [],
      'every pair pings',
    )
    assert.deepEqual(
      r.captures.map((c: any) => [c.type, c.clear, c.packets > 0]),
      [
        ['ipsec', false, true],
        ['wireguard', false, true],
      ],
    )
    assert.ok(
      r.captures[0].sample.some((l: string) => /UDP-encap: ESP/.test(l)),
      r.captures[0].sample.join('\n'),
    )
    assert.deepEqual(
      r.doctor.map((d: any) => d.fail),
      [0, 0, 0],
      'the doctor finds nothing failed',
    )

    const list = h.cli(['tunnel', 'list', '--json']).json.result
    assert.equal(list.length, 9)
    assert.deepEqual([...new Set(list.map((t: any) => t.state))], ['up'])

    // The same lab again: nothing built, proven again; a different one while it is up: refused, nothing changed.
    const again = h.cli(['lab', 'up', '--hosts', '3', '--json'], {timeoutMs: 300_000})
    assert.equal(again.code, 0, again.stderr)
    assert.equal(again.json.result.alreadyUp, true)
    assert.deepEqual(
      again.json.result.pairs.filter((p: any) => !p.ping),
      [],
      'every pair pings again',
    )
    assert.equal(again.stderr.includes('[#]'), false, 'nothing was run that changes the host')
    const other = h.cli(['lab', 'up', '--hosts', '2'])
    assert.equal(other.code, 1)
    assert.match(other.stderr, /^error: a lab is up already with 3 hosts and ipsec,wireguard tunnels; run "netkit lab down" first/m)
    assert.equal(labNamespaces(h).length, 7, 'the lab is as it was')
    assert.equal(h.cli(['tunnel', 'list', '--json']).json.result.length, 9)

    const down = h.cli(['lab', 'down'], {timeoutMs: 300_000})
    assert.equal(down.code, 0, down.stderr)
    assert.deepEqual(labNamespaces(h), [])
    assert.deepEqual(filesUnder(h.configDir), [])
    assert.deepEqual(filesUnder(join(h.stateDir, 'daemons')), [])
    assert.deepEqual(h.processes(), [], 'no charon or wireguard-go left')
    h.stop()
  })

  it('a signal while the lab is being built (Ctrl-C) removes everything it built', async () => {
    const h = host('lc')
    const child = h.cliStart(['lab', 'up', '--hosts', '2'])
    const exited = exitOf(child)
    await stderrUntil(child, /\[#\] ip netns add nklab-h1/)
    child.kill('SIGINT')
    assert.equal(await exited, 1)
    assert.deepEqual(labNamespaces(h), [])
    assert.deepEqual(filesUnder(h.configDir), [])
    assert.deepEqual(filesUnder(join(h.stateDir, 'daemons')), [])
    assert.deepEqual(h.processes(), [], 'nothing left running')
    h.stop()
  })
})
