import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {skipUnlessRoot} from '../helpers/hosts.js'
import {hostForFile} from '../helpers/realhost.js'

describe('tunnel commands act only where they are told (integration)', {skip: skipUnlessRoot}, () => {
  const {host, nk, sh, ipj, makeNs} = hostForFile('ts')

  it('tunnel up --all --netns X brings up the tunnels of X only; --all alone, those of every namespace', () => {
    const spaces = [makeNs('tx'), makeNs('ty')]
    for (const ns of spaces) {
      sh('ip', ['-n', ns, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u1'])
      sh('ip', ['-n', ns, 'addr', 'add', '192.0.2.1/24', 'dev', 'u0'])
      sh('ip', ['-n', ns, 'link', 'set', 'u0', 'up'])
      sh('ip', ['-n', ns, 'link', 'set', 'u1', 'up'])
      const add = nk('tunnel', 'add', 'v1', '--type', 'vxlan', '--remote', '192.0.2.2', '--vni', '7', '--address', '10.9.0.1/24', '--netns', ns)
      assert.equal(add.code, 0, add.stderr)
      assert.equal(nk('tunnel', 'down', 'v1', '--netns', ns).code, 0)
    }
    const [X, Y] = spaces
    const dry = nk('tunnel', 'up', '--all', '--netns', X, '--dry-run')
    assert.equal(dry.code, 0, dry.stderr)
    assert.match(dry.stdout, new RegExp(`ip -n ${X} `))
    assert.doesNotMatch(dry.stdout, new RegExp(`ip -n ${Y} `), 'nothing in the other namespace')
    const up = nk('tunnel', 'up', '--all', '--netns', X, '--json')
    assert.equal(up.code, 0, up.stderr)
    assert.deepEqual(
      up.json.result.tunnels.map((t: any) => t.netns),
      [X],
    )
    assert.equal(ipj(X, ['link', 'show']).filter((l: any) => l.ifname === 'vx-v1').length, 1)
    assert.equal(ipj(Y, ['link', 'show']).filter((l: any) => l.ifname === 'vx-v1').length, 0, "Y's tunnel stays down")
    const all = nk('tunnel', 'up', '--all', '--json')
    assert.deepEqual(all.json.result.tunnels.map((t: any) => [t.netns, t.changed]).sort(), [
      [X, false],
      [Y, true],
    ])
  })

  it('run inside a namespace by "ip netns exec" (no --netns): the wireguard-go it starts is its own, listed with its pid and stopped by del', () => {
    const ns = makeNs('tw')
    sh('ip', ['-n', ns, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u1'])
    sh('ip', ['-n', ns, 'addr', 'add', '192.0.2.1/24', 'dev', 'u0'])
    sh('ip', ['-n', ns, 'link', 'set', 'u0', 'up'])
    sh('ip', ['-n', ns, 'link', 'set', 'u1', 'up'])
    const via = ['ip', 'netns', 'exec', ns]
    const file = join(host().configDir, 'inside.yaml')
    writeFileSync(
      file,
      'version: 1\ntunnels:\n  wx:\n    type: wireguard\n    address: 10.77.0.1/24\n    listenPort: 51999\n    peers:\n      p2: {publicKey: ' +
        'fvpYOMxJ2xrpQzdsjQNmBd5Sq4rIh6uFDES2Kgp5M1w=, endpoint: "192.0.2.2:51999", allowedIps: [10.77.0.2/32]}\n',
    )
    const applied = host().cli(['apply', '-f', '/etc/netkit/inside.yaml'], {via})
    assert.equal(applied.code, 0, applied.stderr)
    const listed = host().cli(['tunnel', 'show', 'wx', '--json'], {via})
    assert.equal(listed.code, 0, listed.stderr)
    const wx = listed.json.result
    const running = sh('ip', ['netns', 'pids', ns])
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter((p) => sh('cat', [`/proc/${p}/comm`]).trim() === 'wireguard-go')
    assert.equal(running.length, 1, `one wireguard-go in the namespace: ${sh('ps', ['-eo', 'pid,comm,args'])} ${applied.stdout}`)
    assert.equal(wx?.status?.details?.wireguardGoPid, running[0], 'its pid is listed')
    const del = host().cli(['tunnel', 'del', 'wx'], {via})
    assert.equal(del.code, 0, del.stderr)
    assert.deepEqual(sh('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean), [], 'its wireguard-go stopped: nothing left running in the namespace')
  })
})
