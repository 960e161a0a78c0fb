/**
 * Two hosts of a fleet applying their IPsec bundles at the same moment
 * (kernel-libipsec): the lower address starts the SA, the other answers. When
 * the initiator's first try reaches the answering host while its charon runs
 * but has no connection for it yet, the answer is NO_PROPOSAL_CHOSEN and the
 * initiator does not try again. `netkit apply` on the answering host then starts
 * the SA itself.
 */
import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {makeNs, sh, skipUnlessRoot} from '../helpers/hosts.js'
import {bootHost, type SimHost} from '../helpers/realhost.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const PSK = '0sAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='

describe('apply: the answering end of an IPsec tunnel starts the SA when its peer was refused before (integration)', {skip: skipUnlessRoot}, () => {
  const hosts: Record<string, SimHost> = {}

  before(() => {
    const br = makeNs('hiqbr')
    sh('ip', ['-n', br, 'link', 'add', 'br0', 'type', 'bridge'])
    sh('ip', ['-n', br, 'link', 'set', 'br0', 'up'])
    ;['x', 'y'].forEach((name, i) => {
      const ns = makeNs(`hiq${name}`)
      sh('ip', ['-n', ns, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', br])
      sh('ip', ['-n', br, 'link', 'set', `p${i}`, 'master', 'br0', 'up'])
      sh('ip', ['-n', ns, 'addr', 'add', `192.0.2.${i + 1}/24`, 'dev', 'u0'])
      sh('ip', ['-n', ns, 'link', 'set', 'u0', 'up'])
      hosts[name] = bootHost(ns)
    })
  })
  after(() => {
    for (const h of Object.values(hosts)) h.stop()
  })

  /** A host file: the overlay address on lo and IPsec tunnels to `peers` (name -> [underlay, overlay]). */
  function hostFile(name: string, me: [string, string], peers: Record<string, [string, string]>): string {
    const h = hosts[name]
    writeFileSync(join(h.configDir, 'peer.psk'), `${PSK}\n`, {mode: 0o600})
    const tunnels = Object.entries(peers)
      .map(
        ([p, [addr, ov]]) =>
          `  ${p}:\n    type: ipsec\n    local: ${me[0]}\n    remote: ${addr}\n    localSubnets: [${me[1]}/32]\n    remoteSubnets: [${ov}/32]\n    pskFile: /etc/netkit/peer.psk\n`,
      )
      .join('')
    writeFileSync(join(h.configDir, 'host.yaml'), `version: 1\naddresses:\n  - {dev: lo, address: ${me[1]}/32}\ntunnels:\n${tunnels}`)
    return '/etc/netkit/host.yaml'
  }
  const charonLog = (h: SimHost) => {
    try {
      return readFileSync(join(h.stateDir, 'daemons/@root/charon.log'), 'utf8')
    } catch {
      return ''
    }
  }

  it('the initiator was told NO_PROPOSAL_CHOSEN (the answering charon ran without its connection): the answering apply starts the SA', async () => {
    const x: [string, string] = ['192.0.2.1', '10.97.0.1']
    const y: [string, string] = ['192.0.2.2', '10.97.0.2']
    // y's charon runs, with a tunnel to another host (nobody there) but none to x yet.
    let r = hosts.y.cli(['apply', '-f', hostFile('y', y, {z: ['192.0.2.9', '10.97.0.9']})])
    assert.equal(r.code, 0, r.stderr)
    // x (the lower address: it starts the SA) applies: y refuses it, and x does not try again.
    r = hosts.x.cli(['apply', '-f', hostFile('x', x, {y})])
    assert.equal(r.code, 0, r.stderr)
    for (let i = 0; i < 50 && !charonLog(hosts.y).includes('no IKE config found for 192.0.2.2...192.0.2.1'); i++) await sleep(200)
    assert.match(charonLog(hosts.x), /received NO_PROPOSAL_CHOSEN/, 'x was refused')
    // y applies its bundle with x in it.
    r = hosts.y.cli(['apply', '-f', hostFile('y', y, {x, z: ['192.0.2.9', '10.97.0.9']})])
    assert.equal(r.code, 0, r.stderr)
    let ok = false
    for (let i = 0; i < 20 && !ok; i++) {
      try {
        hosts.x.sh('ping', ['-c', '1', '-W', '1', '-I', x[1], y[1]])
        ok = true
      } catch {
        await sleep(250)
      }
    }
    assert.ok(ok, `x pings y over the tunnel\n${charonLog(hosts.y).split('\n').slice(-15).join('\n')}`)
  })
})
