import assert from 'node:assert/strict'
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {makeNs, skipUnlessRoot} from '../helpers/hosts.js'
import {bootHost} from '../helpers/realhost.js'

describe('the simulated host (test harness)', {skip: skipUnlessRoot}, () => {
  it('has its own /etc/netkit, /etc/iproute2, /run and PID 1, and netkit runs in it with its defaults', () => {
    const h = bootHost(makeNs('rh'))
    assert.equal(h.sh('cat', ['/proc/1/cmdline']).split('\0')[0], 'sleep', 'PID 1 is the host\'s own')
    assert.equal(h.sh('hostname', []).trim(), h.ns)
    assert.equal(h.sh('sh', ['-c', 'ls -A /run']).trim().split('\n').filter(Boolean).sort().join(','), 'lock')
    const t = h.cli(['table', 'add', 'rhvpn', '173'])
    assert.equal(t.code, 0, t.stderr)
    assert.match(readFileSync(join(h.iproute2Dir, 'rt_tables.d', 'netkit.conf'), 'utf8'), /^173\trhvpn$/m, 'the name went to the host\'s /etc/iproute2')
    assert.ok(!existsSync('/etc/iproute2/rt_tables.d/netkit.conf') || !readFileSync('/etc/iproute2/rt_tables.d/netkit.conf', 'utf8').includes('rhvpn'), 'not the machine\'s')
    assert.deepEqual(h.cli(['table', 'list', '--json']).json.result.filter((r: any) => r.name === 'rhvpn').map((r: any) => r.id), [173])
    h.stop()
    assert.ok(!existsSync(`/proc/${h.pid}`))
    assert.ok(!existsSync(join('/etc/netns', h.ns)))
  })
})
