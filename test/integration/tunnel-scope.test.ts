import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {skipUnlessRoot} from '../helpers/hosts.js'
import {hostForFile} from '../helpers/realhost.js'

describe('tunnel commands act only where they are told (integration)', {skip: skipUnlessRoot}, () => {
  const {nk, sh, ipj, makeNs} = hostForFile('ts')

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
})
