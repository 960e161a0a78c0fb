import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {NetkitError} from '../../src/lib/errors.js'
import {runPlan, type Step} from '../../src/lib/plan.js'
import {Recorder} from '../helpers/recorder.js'

function step(name: string, log: string[], opts: {fail?: boolean; noop?: boolean; failUndo?: boolean} = {}): Step {
  return {
    title: name,
    apply: async () => {
      if (opts.fail) throw new NetkitError('E_TEST', `${name} failed`)
      log.push(`do ${name}`)
      return opts.noop ? false : undefined
    },
    undo: async () => {
      if (opts.failUndo) throw new Error(`cannot undo ${name}`)
      log.push(`undo ${name}`)
    },
  }
}

describe('plan', () => {
  it('runs every step in order and reports what changed', async () => {
    const log: string[] = []
    const r = await runPlan([step('a', log), step('b', log, {noop: true}), step('c', log)], {runner: new Recorder().runner()})
    assert.deepEqual(log, ['do a', 'do b', 'do c'])
    assert.deepEqual(r, {changed: ['a', 'c'], unchanged: ['b']})
  })

  it('undoes the steps already done, in reverse, when one fails, and rethrows its error', async () => {
    const log: string[] = []
    await assert.rejects(
      runPlan([step('a', log), step('b', log, {noop: true}), step('c', log), step('d', log, {fail: true}), step('e', log)], {runner: new Recorder().runner()}),
      /d failed/,
    )
    assert.deepEqual(log, ['do a', 'do b', 'do c', 'undo c', 'undo a'])
  })

  it('says so when undoing fails too', async () => {
    const log: string[] = []
    await assert.rejects(runPlan([step('a', log, {failUndo: true}), step('b', log, {fail: true})], {runner: new Recorder().runner()}), (e: NetkitError) => {
      assert.match(e.message, /b failed; undoing the steps already done also failed \(a: cannot undo a\)/)
      return true
    })
  })

  it('a hangup (the SSH session closing) while a step runs: the step ends, then all is undone and the error says why', async () => {
    const log: string[] = []
    const hangup: Step = {
      ...step('b', log),
      apply: async () => {
        log.push('do b')
        process.emit('SIGHUP', 'SIGHUP')
      },
    }
    await assert.rejects(runPlan([step('a', log), hangup, step('c', log)], {runner: new Recorder().runner()}), (e: NetkitError) => {
      assert.equal(e.code, 'E_INTERRUPTED')
      assert.match(e.message, /SIGHUP: the terminal or SSH session closed/)
      return true
    })
    assert.deepEqual(log, ['do a', 'do b', 'undo b', 'undo a'])
    assert.equal(process.listenerCount('SIGHUP'), 0, 'and the handlers are gone')
  })
})
