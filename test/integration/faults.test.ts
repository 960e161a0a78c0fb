/**
 * Fault injection (test/helpers/faults.ts): every changing call of a command,
 * in turn, fails; each failing run must leave the host exactly as it was.
 * The scenarios are test/helpers/fault-scenarios.ts: those marked for the
 * suite run here (FAULTS_ALL=1: every one), each printing
 * "faults: SCENARIO: failing runs N, runs not restored M" (bench/faults.mjs
 * collects them).
 */
import assert from 'node:assert/strict'
import {after, describe, it} from 'node:test'

import {faultKit} from '../helpers/faults.js'
import {figures, scenarios} from '../helpers/fault-scenarios.js'
import {skipUnlessRoot} from '../helpers/hosts.js'

const ALL = process.env.FAULTS_ALL === '1'
const ONLY = process.env.FAULTS_ONLY

describe('fault injection: a failure at any changing call leaves the host as before (integration)', {skip: skipUnlessRoot}, () => {
  const kit = faultKit()
  after(() => kit.cleanup())
  for (const s of scenarios) {
    if (ONLY ? !s.name.includes(ONLY) : !(ALL || s.suite)) continue
    it(s.name, (t) => {
      const r = s.run(kit)
      t.diagnostic(`faults: ${figures(s.name, r)}`)
      for (const x of r.notRestored)
        t.diagnostic(`faults:   not restored after call ${x.n} (${x.fault}) failed, exit ${x.exit}, ${x.error}: ${x.changed.join(' | ')}`)
      assert.ok(r.calls > 0, 'the wrappers saw its changing calls')
      assert.equal(r.aborted, undefined)
      assert.deepEqual(r.notRestored, [], 'every failing run left the host as before')
    })
  }
})
