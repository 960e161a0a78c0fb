import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {neighbourTable} from '../../src/lib/doctor/checks/kernel.js'
import type {DoctorContext} from '../../src/lib/doctor/types.js'
import {neighbourTables, parseNeighbourStat, parseNtables, roomyLimits} from '../../src/lib/neighbours.js'
import {Recorder} from '../helpers/recorder.js'

// /proc/net/stat/arp_cache on a 2-CPU machine after a 50-host mesh on one flat underlay (read here).
const STAT = `entries  allocs   destroys hash_grows lookups  hits     res_failed rcv_probes_mcast rcv_probes_ucast periodic_gc_runs forced_gc_runs unresolved_discards table_fulls
00000366 000017d3 00001a45 00000002   0001d717 0000bf2d 0000004f   00000000         00000000         00000075         00026d1f       00000000            00026a9a
00000366 00001778 0000140c 00000006   0001b2c5 0000abaf 00000038   00000000         00000000         00000000         00025732       00000000            000254bb
`

// `ip -j -s ntable show`, trimmed: each table, then its per-device parameter sets.
const NTABLES = JSON.stringify([
  {family: 'inet', name: 'arp_cache', thresh1: 128, thresh2: 512, thresh3: 1024, entries: 870, table_fulls: 311125},
  {family: 'inet', name: 'arp_cache', dev: 'u0', refcnt: 1, reachable: 24492},
  {family: 'inet6', name: 'ndisc_cache', thresh1: 128, thresh2: 512, thresh3: 1024, entries: 3, table_fulls: 0},
])

const tableOf = (entries: number, overflows = 0, limit = 1024) => ({name: 'arp_cache', family: 4 as const, entries, limit, overflows})

/** The check's findings for the tables `ip ntable` reports (a runner that reads through the recorder: no /proc). */
async function findings(tables: unknown[]) {
  const rec = new Recorder().on('ntable', {stdout: JSON.stringify(tables)})
  return neighbourTable.run.call(neighbourTable, {runner: rec.runner()} as unknown as DoctorContext)
}

describe("the kernel's neighbour tables (doctor: kernel.neighbours)", () => {
  it('reads the entries and the overflows (summed over CPUs) from /proc/net/stat', () => {
    assert.deepEqual(parseNeighbourStat(STAT), {entries: 0x366, overflows: 0x26a9a + 0x254bb})
    assert.equal(parseNeighbourStat(''), undefined)
  })

  it('reads each table, not its per-device parameters, from ip -j -s ntable', () => {
    assert.deepEqual(parseNtables(NTABLES), [
      {name: 'arp_cache', family: 4, entries: 870, limit: 1024, overflows: 311125},
      {name: 'ndisc_cache', family: 6, entries: 3, limit: 1024, overflows: 0},
    ])
  })

  it('asks ip where /proc does not say (a namespace of its own)', async () => {
    const rec = new Recorder().on('ntable', {stdout: NTABLES})
    const tables = await neighbourTables(rec.runner())
    assert.deepEqual(rec.lines, ['ip -j -s ntable show'])
    assert.equal(tables.length, 2)
  })

  it('proposes limits with room to double, in powers of two', () => {
    assert.deepEqual(roomyLimits(tableOf(870)), {thresh1: 512, thresh2: 1024, thresh3: 2048})
    assert.deepEqual(roomyLimits(tableOf(5000)), {thresh1: 4096, thresh2: 8192, thresh3: 16384})
  })

  it('is ok with room, warns nearly full, fails full and overflowing; past overflows alone are history', async () => {
    const verdicts = async (entries: number, overflows: number) =>
      (await findings([{family: 'inet', name: 'arp_cache', thresh3: 1024, entries, table_fulls: overflows}])).map((f) => f.result)
    assert.deepEqual(await verdicts(100, 0), ['ok'])
    assert.deepEqual(await verdicts(100, 5000), ['ok'])
    assert.deepEqual(await verdicts(870, 0), ['warn'])
    assert.deepEqual(await verdicts(1000, 311125), ['fail'])
    const [f] = await findings([{family: 'inet', name: 'arp_cache', thresh3: 1024, entries: 1000, table_fulls: 7}])
    assert.match(f.reason!, /full: 1000 entries of 1024 .*overflowed 7 times/)
    assert.equal(
      f.fix,
      'raise its limits, in the root namespace (one table for the whole machine): sysctl -w net.ipv4.neigh.default.gc_thresh1=512 net.ipv4.neigh.default.gc_thresh2=1024 net.ipv4.neigh.default.gc_thresh3=2048; keep them in /etc/sysctl.d/',
    )
  })
})
