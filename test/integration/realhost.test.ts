import assert from 'node:assert/strict'
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {makeNs, skipUnlessRoot} from '../helpers/hosts.js'
import {bootHost} from '../helpers/realhost.js'

describe('the simulated host (test harness)', {skip: skipUnlessRoot}, () => {
  it('has its own /etc/netkit, /etc/iproute2, /run and PID 1, and netkit runs in it with its defaults', () => {
    const h = bootHost(makeNs('rh'))
    assert.equal(h.sh('cat', ['/proc/1/cmdline']).split('\0')[0], 'sleep', "PID 1 is the host's own")
    assert.equal(h.sh('hostname', []).trim(), h.ns)
    assert.equal(h.sh('sh', ['-c', 'ls -A /run']).trim().split('\n').filter(Boolean).sort().join(','), 'lock')
    const t = h.cli(['table', 'add', 'rhvpn', '173'])
    assert.equal(t.code, 0, t.stderr)
    assert.match(readFileSync(join(h.iproute2Dir, 'rt_tables.d', 'netkit.conf'), 'utf8'), /^173\trhvpn$/m, "the name went to the host's /etc/iproute2")
    assert.ok(
      !existsSync('/etc/iproute2/rt_tables.d/netkit.conf') || !readFileSync('/etc/iproute2/rt_tables.d/netkit.conf', 'utf8').includes('rhvpn'),
      "not the machine's",
    )
    assert.deepEqual(
      h
        .cli(['table', 'list', '--json'])
        .json.result.filter((r: any) => r.name === 'rhvpn')
        .map((r: any) => r.id),
      [173],
    )
    h.stop()
    assert.ok(!existsSync(`/proc/${h.pid}`))
    assert.ok(!existsSync(join('/etc/netns', h.ns)))
  })

  it('names netkit registers in /etc/iproute2 read back as numbers: table, route and rule lists, and apply converges', () => {
    const h = bootHost(makeNs('rn'))
    h.sh('ip', ['link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1'])
    h.sh('ip', ['link', 'set', 'v0', 'up'])
    assert.equal(h.cli(['table', 'add', 'vpn', '173']).code, 0)
    const r = h.cli(['route', 'add', '10.9.0.0/24', '--dev', 'v0', '--table', 'vpn'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(h.ipj(['route', 'show', 'table', 'all']).find((x: any) => x.dst === '10.9.0.0/24')?.table, 'vpn', 'ip itself prints the name now')
    const routes = h.cli(['route', 'list', '--table', 'all', '--json']).json.result.filter((x: any) => x.dst === '10.9.0.0/24')
    assert.deepEqual(
      routes.map((x: any) => x.table),
      [173],
    )
    assert.doesNotMatch(h.cli(['route', 'list', '--table', 'all']).stdout, /NaN/)
    assert.equal(h.cli(['rule', 'add', '--to', '10.9.0.0/24', '--table', 'vpn', '--priority', '1000']).code, 0)
    assert.deepEqual(
      h
        .cli(['rule', 'list', '--json'])
        .json.result.filter((x: any) => x.priority === 1000)
        .map((x: any) => x.table),
      [173],
    )
    assert.doesNotMatch(h.cli(['rule', 'list']).stdout, /NaN/)

    const file = JSON.stringify({
      version: 1,
      tables: {vpn2: 174},
      routes: [{to: '10.8.0.0/24', dev: 'v0', table: 'vpn2'}],
      rules: [{to: '10.8.0.0/24', table: 'vpn2', priority: 1001}],
    })
    const first = h.cli(['apply', '-f', '-', '--json'], {input: file})
    assert.equal(first.code, 0, first.stderr)
    const again = h.cli(['apply', '-f', '-', '--json'], {input: file})
    assert.equal(again.code, 0, again.stderr)
    assert.equal(again.json.result.changed, false, 'a re-run is a no-op')
    assert.match(h.cli(['diff', '-f', '-'], {input: file}).stdout, /the host matches/)
    h.stop()
  })
})
