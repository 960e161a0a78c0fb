import assert from 'node:assert/strict'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {cli, cliStart, exitOf, stderrUntil} from '../helpers/cli.js'
import {filesUnder, isolatedEnv, sh, skipUnlessRoot} from '../helpers/hosts.js'

const labNamespaces = () => sh('ip', ['netns', 'list']).split('\n').filter((l) => l.startsWith('nklab-'))
const labBusy = labNamespaces().length > 0


describe('netkit lab (integration)', {skip: skipUnlessRoot || (labBusy ? 'a lab is already up on this machine' : false)}, () => {
  const iso = isolatedEnv()
  after(() => {
    cli(['lab', 'down'], {env: iso.env})
    iso.cleanup()
  })
  const env = iso.env

  it('lab up builds 3 hosts joined by IPsec (subnets) and WireGuard (overlay), proven; lab down leaves the machine as it was', () => {
    const up = cli(['lab', 'up', '--hosts', '3', '--json'], {env})
    assert.equal(up.code, 0, up.stderr)
    const r = up.json.result
    assert.deepEqual(r.types, ['ipsec', 'wireguard'])
    assert.equal(r.tunnels, 12)
    assert.equal(r.pairs.length, 12)
    assert.deepEqual(r.pairs.filter((p: any) => !p.ping), [], 'every pair pings')
    assert.deepEqual(r.captures.map((c: any) => [c.type, c.clear, c.packets > 0]), [['ipsec', false, true], ['wireguard', false, true]])
    assert.ok(r.captures[0].sample.some((l: string) => /UDP-encap: ESP/.test(l)), r.captures[0].sample.join('\n'))
    assert.deepEqual(r.doctor.map((d: any) => d.fail), [0, 0, 0], 'the doctor finds nothing failed')

    const list = cli(['tunnel', 'list', '--json'], {env}).json.result
    assert.equal(list.length, 12)
    assert.deepEqual([...new Set(list.map((t: any) => t.state))], ['up'])

    // The same lab again: nothing built, proven again; a different one while it is up: refused, nothing changed.
    const again = cli(['lab', 'up', '--hosts', '3', '--json'], {env})
    assert.equal(again.code, 0, again.stderr)
    assert.equal(again.json.result.alreadyUp, true)
    assert.deepEqual(again.json.result.pairs.filter((p: any) => !p.ping), [], 'every pair pings again')
    assert.equal(again.stderr.includes('[#]'), false, 'nothing was run that changes the host')
    const other = cli(['lab', 'up', '--hosts', '2'], {env})
    assert.equal(other.code, 1)
    assert.match(other.stderr, /^error: a lab is up already with 3 hosts and ipsec,wireguard tunnels; run "netkit lab down" first/m)
    assert.equal(labNamespaces().length, 7, 'the lab is as it was')
    assert.equal(cli(['tunnel', 'list', '--json'], {env}).json.result.length, 12)

    const down = cli(['lab', 'down'], {env})
    assert.equal(down.code, 0, down.stderr)
    assert.deepEqual(labNamespaces(), [])
    assert.deepEqual(filesUnder(env.NETKIT_CONFIG_DIR), [])
    assert.deepEqual(filesUnder(join(env.NETKIT_STATE_DIR, 'daemons')), [])
  })

  it('a signal while the lab is being built (Ctrl-C) removes everything it built', async () => {
    const child = cliStart(['lab', 'up', '--hosts', '2'], {env})
    const exited = exitOf(child)
    await stderrUntil(child, /\[#\] ip netns add nklab-h1/)
    child.kill('SIGINT')
    assert.equal(await exited, 1)
    assert.deepEqual(labNamespaces(), [])
    assert.deepEqual(filesUnder(env.NETKIT_CONFIG_DIR), [])
    assert.deepEqual(filesUnder(join(env.NETKIT_STATE_DIR, 'daemons')), [])
  })
})
