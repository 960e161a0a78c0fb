import assert from 'node:assert/strict'
import {chmodSync, mkdtempSync, writeFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {UsageError} from '../../src/lib/errors.js'
import {defineTunnel, weakAlgorithms} from '../../src/lib/tunnel/define.js'
import {defaultEspProposals, defaultIkeProposals} from '../../src/lib/tunnel/ipsec/algorithms.js'
import {Recorder} from '../helpers/recorder.js'

const routeGet = JSON.stringify([{dst: '192.0.2.2', dev: 'u0', prefsrc: '192.0.2.1'}])

describe('tunnel definitions', () => {
  it('takes the local address and underlay device from the route to the peer', async () => {
    const rec = new Recorder().on('route get', {stdout: routeGet})
    const {def} = await defineTunnel({name: 'ov', type: 'vxlan', remote: '192.0.2.2', vni: 7}, rec.runner())
    assert.equal(def.local, '192.0.2.1')
    assert.deepEqual(def.vxlan, {ifname: 'vx-ov', vni: 7, port: 4789, dev: 'u0'})
  })

  it('generates a 256-bit PSK when none is given, registers it as a secret, and defaults to secure proposals and trap', async () => {
    const rec = new Recorder().on('route get', {stdout: routeGet})
    const runner = rec.runner()
    const {def, psk, pskGenerated} = await defineTunnel(
      {name: 'site', type: 'ipsec', remote: '192.0.2.2', localSubnet: ['10.1.0.0/24'], remoteSubnet: ['10.2.0.0/24']},
      runner,
    )
    assert.ok(pskGenerated)
    assert.equal(Buffer.from(psk!.value.slice(2), 'base64').length, 32)
    assert.equal(runner.redact(`x ${psk!.value} y`), 'x <redacted> y')
    assert.equal(def.ipsec!.proposals, defaultIkeProposals())
    assert.equal(def.ipsec!.espProposals, defaultEspProposals())
    assert.equal(def.ipsec!.startAction, 'trap')
    assert.deepEqual(weakAlgorithms(def.ipsec!.proposals), [])
    assert.equal(JSON.stringify(def).includes(psk!.value), false, 'no secret in the definition')
  })

  it('reads a PSK file only when only its owner can read it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nk-psk-'))
    const file = join(dir, 'psk')
    writeFileSync(file, 'a-long-enough-secret-value\n', {mode: 0o644})
    chmodSync(file, 0o644)
    const rec = new Recorder().on('route get', {stdout: routeGet})
    await assert.rejects(defineTunnel({name: 's', type: 'ipsec', remote: '192.0.2.2', pskFile: file}, rec.runner()), (e: UsageError) =>
      /can be read by others.*chmod 600/.test(e.line),
    )
    chmodSync(file, 0o600)
    const {psk} = await defineTunnel({name: 's', type: 'ipsec', remote: '192.0.2.2', pskFile: file}, rec.runner())
    assert.equal(psk!.value, 'a-long-enough-secret-value')
    rmSync(dir, {recursive: true, force: true})
  })

  it('refuses bad input with usage errors', async () => {
    const rec = new Recorder().on('route get', {stdout: routeGet})
    const cases: [object, RegExp][] = [
      [{name: 'x', type: 'vxlan', remote: '192.0.2.2'}, /needs --vni/],
      [{name: 'x', type: 'ipsec', remote: '192.0.2.2', localSubnet: ['10.0.0.0/16'], remoteSubnet: ['10.0.1.0/24']}, /overlaps/],
      [{name: 'x', type: 'ipsec', remote: '192.0.2.2', remoteSubnet: ['10.0.1.1/24']}, /host bits/],
      [{name: 'x', type: 'ipsec', remote: '192.0.2.2', proposals: 'aes;rm'}, /not a proposal list/],
      [{name: 'x', type: 'ipsec', remote: '192.0.2.2', cert: '/a'}, /--cert, --key and --ca together/],
      [{name: 'x', type: 'wireguard', remote: '192.0.2.2'}, /needs --peer-public-key/],
      [{name: 'x', type: 'wireguard', remote: '192.0.2.2', peerPublicKey: 'abc'}, /not a WireGuard key/],
      [
        {name: 'x', type: 'wireguard', remote: '192.0.2.2', peerPublicKey: 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='},
        /needs --address .* or --remote-subnet/,
      ],
      [{name: 'x', type: 'ipsec', remote: '192.0.2.2', table: 100}, /--table is not available for IPsec/],
      [{name: 'x', type: 'ipsec', remote: '192.0.2.2', localId: 'a"b'}, /not a usable IKE identity/],
      [{name: 'x', type: 'wireguard', remote: '2001:db8::1', peerPublicKey: 'x'}, /mixes IPv4 and IPv6/],
      [{name: 'bad name', type: 'vxlan', remote: '192.0.2.2', vni: 1}, /tunnel name/],
      [{name: 'x', type: 'vxlan', remote: '192.0.2.2', vni: 1, remoteSubnet: ['10.2.0.0/24']}, /--peer-address/],
    ]
    for (const [input, re] of cases) {
      await assert.rejects(defineTunnel(input as never, rec.runner()), (e: Error) => e instanceof UsageError && re.test(e.message), JSON.stringify(input))
    }
  })

  it('fills the WireGuard endpoint from the remote and the listen port', async () => {
    const rec = new Recorder().on('route get', {stdout: routeGet})
    const key = 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='
    const {def} = await defineTunnel(
      {name: 'wg', type: 'wireguard', remote: '192.0.2.2', peerPublicKey: key, listenPort: 51000, address: '10.99.0.1/24'},
      rec.runner(),
    )
    assert.equal(def.wireguard!.endpoint, '192.0.2.2:51000')
    assert.equal(def.wireguard!.ifname, 'wg-wg')
  })
})
