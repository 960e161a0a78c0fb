/**
 * Who plans an `apply --try --detach`: the starter only when the file is the one last applied and
 * verified (or found matching) in the scope (pending.ts plansFirst, memo.ts lastApplied); any other
 * file goes to the waiter at once, without a single read in the starter. On the recorded host of
 * apply-planner.test.ts (fixtures/apply-host.ts), without root.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {fileDigest, lastApplied, loadMemo, saveMemo} from '../../src/lib/apply/memo.js'
import {plansFirst, unchangedReport} from '../../src/lib/apply/pending.js'
import {planHost} from '../../src/lib/apply/plan.js'
import {ROOT_SCOPE, scopeOf} from '../../src/lib/ownership.js'
import {APPLIED, recordedHost, recordedHostState} from './fixtures/apply-host.js'

const file = (text = APPLIED) => ({text, source: 'host.yaml', version: 'test'})
/** The same objects, another text: a file that changes nothing, but not the one recorded. */
const commented = `# edited\n${APPLIED}`

const host = recordedHost

describe('apply --try --detach: who plans', () => {
  recordedHostState('netkit-detach-hint-')

  it('nothing recorded: the starter does not plan (not one read), the waiter will', async () => {
    const h = host()
    assert.equal(plansFirst(h.runner(), file()), false)
    assert.equal(await unchangedReport(h.runner(), file(), 'host.yaml'), undefined)
    assert.deepEqual(h.lines, [])
  })

  it('the file last found matching: the starter plans, and reports "unchanged" itself', async () => {
    // An apply that found nothing to do (remember: a mutating apply) records the file.
    assert.deepEqual((await planHost(host().runner(), file(), {remember: true})).changes, [])
    assert.equal(lastApplied(ROOT_SCOPE), fileDigest(APPLIED, 'host.yaml', 'test'))
    const h = host()
    assert.equal(plansFirst(h.runner(), file()), true)
    const r = await unchangedReport(h.runner(), file(), 'host.yaml')
    assert.ok(h.lines.length > 0, 'the starter read the host')
    assert.equal(r?.pending, false)
    assert.deepEqual(r?.changes, [])
    assert.deepEqual(Object.keys(r!), ['pending', 'changes', 'unchanged', 'foreign', 'changed', 'verified', 'rolledBack', 'kept', 'memo', 'file'])
  })

  it('another file (even one that changes nothing), another netkit version, another scope: the waiter plans', async () => {
    await planHost(host().runner(), file(), {remember: true})
    const h = host()
    assert.equal(plansFirst(h.runner(), file(commented)), false)
    assert.equal(plansFirst(h.runner(), {...file(), version: 'next'}), false)
    assert.equal(plansFirst(h.runner(), {...file(), source: 'host.json'}), false, 'parsed as JSON: another file')
    assert.equal(plansFirst(h.runner({netns: 'other'}), file()), false)
    assert.equal(await unchangedReport(h.runner(), file(commented), 'host.yaml'), undefined)
    assert.deepEqual(h.lines, [], 'not one read in the starter')
  })

  it('reads record nothing: diff (planHost without remember) leaves no file applied', async () => {
    assert.deepEqual((await planHost(host().runner(), file())).changes, [])
    assert.equal(lastApplied(ROOT_SCOPE), undefined)
    assert.equal(plansFirst(host().runner(), file()), false)
  })

  it('a plan with changes records nothing (only a verified, kept change does: run.ts)', async () => {
    await planHost(host().runner(), file(), {remember: true})
    const changed = APPLIED.replace('10.1.0.50', '10.1.0.51')
    assert.notEqual(changed, APPLIED)
    assert.ok((await planHost(host().runner(), file(changed), {remember: true})).changes.length > 0)
    assert.equal(lastApplied(ROOT_SCOPE), fileDigest(APPLIED, 'host.yaml', 'test'), 'still the file last found matching')
  })

  it('kept per scope, next to the memo; a file with tunnels (no memo) is recorded too', () => {
    saveMemo(scopeOf('a'), undefined, 'digest-a')
    saveMemo(ROOT_SCOPE, undefined, 'digest-root')
    assert.equal(lastApplied(scopeOf('a')), 'digest-a')
    assert.equal(lastApplied(ROOT_SCOPE), 'digest-root')
    assert.equal(loadMemo(ROOT_SCOPE, 'digest-root'), undefined)
    saveMemo(ROOT_SCOPE, undefined, 'digest-2')
    assert.equal(lastApplied(ROOT_SCOPE), 'digest-2')
    assert.equal(lastApplied(scopeOf('a')), 'digest-a')
  })
})
