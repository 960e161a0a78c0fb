/**
 * Who plans `apply --try --detach` (pending.ts plansFirst): the starter only for the file last
 * applied and verified here, where a no-change run is likely (then no waiter starts); any other
 * file starts the waiter at once, whose plan is the only one, and which reports "unchanged" as the
 * starter would when it finds nothing to do. A change undone (rolled back, not confirmed in time)
 * is not recorded as applied; a refused file leaves the last outcome as it was.
 */
import assert from 'node:assert/strict'
import {existsSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {skipUnlessRoot} from '../helpers/hosts.js'
import {hostForFile} from '../helpers/realhost.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** A phase only a plan prints (memo.ts's reads, or the file parsed and the host read). */
const PLANNED = /netkit timing: (memo read|file parsed|live read)/

describe('apply --try --detach: who plans (integration)', {skip: skipUnlessRoot}, () => {
  const {host} = hostForFile('hdetach')
  const etc = (name: string) => join(host().configDir, name)
  const log = () => join(host().stateDir, 'apply-detached.log')
  const pending = () => join(host().stateDir, 'apply-pending.json')
  const outcome = () => join(host().stateDir, 'apply-outcome.json')
  const lo = () =>
    host()
      .ipj(['-4', 'addr', 'show', 'dev', 'lo'])[0]
      .addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)
  const file = (name: string, addresses: string[], comment = '') => {
    writeFileSync(etc(name), `${comment}version: 1\naddresses:\n${addresses.map((a) => `  - {dev: lo, address: ${a}}`).join('\n')}\n`)
    return `/etc/netkit/${name}`
  }
  /** A detached apply with the phases timed; whether the starter planned, and whether it started a waiter. */
  function detach(path: string, seconds = 60) {
    rmSync(log(), {force: true})
    const r = host().cli(['apply', '-f', path, '--try', String(seconds), '--detach', '--json'], {env: {NETKIT_TIMING: '1'}})
    return {...r, starterPlanned: PLANNED.test(r.stderr), waiter: existsSync(log()), waiterLog: existsSync(log()) ? readFileSync(log(), 'utf8') : ''}
  }
  async function until(what: string, fn: () => boolean, seconds = 20): Promise<void> {
    const deadline = Date.now() + seconds * 1000
    for (let i = 0; i < seconds * 10 && Date.now() < deadline; i++) {
      if (fn()) return
      await sleep(100)
    }
    assert.fail(`timed out waiting for ${what}`)
  }

  it('the file last applied: the starter plans and starts no waiter; another file: no plan in the starter, the waiter says "unchanged"', () => {
    const a = file('a.yaml', ['10.251.0.1/32'])
    const applied = host().cli(['apply', '-f', a])
    assert.equal(applied.code, 0, applied.stderr)

    const same = detach(a)
    assert.equal(same.code, 0, same.stderr)
    assert.ok(same.starterPlanned, `the starter planned: ${same.stderr}`)
    assert.equal(same.waiter, false, 'no waiter started')
    assert.equal(same.json.result.pending, false)

    // The same objects in another text: not the file last applied, so the waiter plans (and finds nothing to do).
    const b = file('b.yaml', ['10.251.0.1/32'], '# the same, commented\n')
    const other = detach(b)
    assert.equal(other.code, 0, other.stderr)
    assert.equal(other.starterPlanned, false, `the starter did not plan: ${other.stderr}`)
    assert.ok(other.waiter, 'the waiter was started')
    assert.match(other.waiterLog, /netkit timing: planned/, 'the waiter planned')
    // The report the starter would have given itself (the memo's shortcut aside: b's digests are not a's).
    const {memo, file: fa, ...mine} = same.json.result
    const {file: fb, ...theirs} = other.json.result
    assert.equal(memo, true)
    assert.deepEqual(theirs, mine)
    assert.deepEqual([fa, fb], ['/etc/netkit/a.yaml', '/etc/netkit/b.yaml'])
    assert.deepEqual(Object.keys(other.json.result), ['pending', 'changes', 'unchanged', 'foreign', 'changed', 'verified', 'rolledBack', 'kept', 'file'])
    assert.deepEqual(other.json.warnings, [])
    assert.equal(existsSync(pending()), false, 'nothing pending')
    assert.equal(existsSync(outcome()), false, 'no outcome recorded')
    const c = file('c.yaml', ['10.251.0.1/32'], '# once more\n')
    const text = host().cli(['apply', '-f', c, '--try', '60', '--detach'])
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /^the host already matches \/etc\/netkit\/c\.yaml \(1 objects\); nothing to do, nothing to confirm\n$/)
    const confirm = host().cli(['apply', '--confirm', '--json'])
    assert.equal(confirm.code, 0, confirm.stderr)
    assert.deepEqual(confirm.json.result, {pending: false, asked: 'confirm', outcome: 'none'})

    // Found matching by the waiter: now the file last applied, planned by the starter.
    const again = detach(c)
    assert.equal(again.code, 0, again.stderr)
    assert.ok(again.starterPlanned)
    assert.equal(again.waiter, false)
  })

  it("the waiter's warnings are the starter's (its plan warned: weak proposals), also with the waiter's error", () => {
    writeFileSync(etc('weak.psk'), `${'k'.repeat(40)}\n`, {mode: 0o600})
    const tunnel = `tunnels:\n  weak:\n    type: ipsec\n    remote: 198.51.100.2\n    local: 10.251.0.1\n    localSubnets: [10.251.0.1/32]\n    remoteSubnets: [10.252.0.1/32]\n    pskFile: /etc/netkit/weak.psk\n    proposals: aes128-sha1-modp1024\n`
    // Listed twice: refused after the desired state is made (and the tunnel's proposals looked at).
    writeFileSync(etc('weak.yaml'), `version: 1\naddresses:\n  - {dev: lo, address: 10.251.0.1/32}\n  - {dev: lo, address: 10.251.0.1/32}\n${tunnel}`)
    const r = detach('/etc/netkit/weak.yaml')
    assert.equal(r.starterPlanned, false)
    assert.ok(r.waiter)
    assert.equal(r.code, 2, r.stderr)
    assert.equal(r.json.ok, false)
    assert.equal(r.json.warnings.length, 1, JSON.stringify(r.json))
    assert.match(r.json.warnings[0], /^weak algorithms in the proposals \(.*sha1/)
    assert.equal(existsSync(pending()), false)
  })

  it('a change rolled back or not confirmed in time is not recorded as applied; a confirmed one is', async () => {
    const a = '/etc/netkit/a.yaml'
    assert.equal(host().cli(['apply', '-f', a]).code, 0)
    const d = file('d.yaml', ['10.251.0.1/32', '10.251.0.2/32'])
    const first = detach(d)
    assert.equal(first.code, 0, first.stderr)
    assert.equal(first.starterPlanned, false)
    assert.equal(first.json.result.pending, true)
    assert.ok(lo().includes('10.251.0.2/32'))
    const rb = host().cli(['apply', '--rollback', '--json'])
    assert.equal(rb.json.result.outcome, 'rolled back', rb.stderr)
    assert.ok(!lo().includes('10.251.0.2/32'))

    // Not confirmed in time: undone, and still not the file last applied.
    const short = detach(d, 2)
    assert.equal(short.starterPlanned, false, 'd was rolled back: not recorded as applied')
    assert.equal(short.json.result.pending, true, short.stderr)
    await until('the change to be undone', () => !existsSync(pending()) && !lo().includes('10.251.0.2/32'))
    const late = host().cli(['apply', '--confirm'])
    assert.equal(late.code, 1)
    assert.match(late.stderr, /nothing to confirm: the change from \/etc\/netkit\/d\.yaml was undone/)

    // A file refused (bad) leaves that news as it was: it changed nothing.
    const bad = detach(file('bad.yaml', ['10.251.0.300/32']))
    assert.equal(bad.code, 2, bad.stderr)
    assert.equal(bad.json.ok, false)
    assert.equal(bad.starterPlanned, false)
    assert.equal(host().cli(['apply', '--confirm']).code, 1, 'still: the change from d.yaml was undone')

    const kept = detach(d)
    assert.equal(kept.starterPlanned, false, 'd expired: not recorded as applied')
    assert.equal(kept.json.result.pending, true, kept.stderr)
    const ok = host().cli(['apply', '--confirm', '--json'])
    assert.equal(ok.json.result.outcome, 'confirmed', ok.stderr)
    assert.equal(ok.json.result.doctor, undefined, 'no doctor unless asked')
    const now = detach(d)
    assert.ok(now.starterPlanned, 'confirmed: the file last applied')
    assert.equal(now.waiter, false)
    assert.equal(now.json.result.pending, false)
    assert.equal(host().cli(['apply', '-f', a]).code, 0)
    assert.deepEqual(lo(), ['127.0.0.1/8', '10.251.0.1/32'])
  })

  it('--confirm --doctor keeps the change, then checks the host as "netkit doctor" does, its report added', () => {
    const e = file('e.yaml', ['10.251.0.1/32', '10.251.0.5/32'])
    const pendingE = detach(e)
    assert.equal(pendingE.json.result.pending, true, pendingE.stderr)
    const r = host().cli(['apply', '--confirm', '--doctor', '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.json.result.outcome, 'confirmed')
    assert.ok(lo().includes('10.251.0.5/32'), 'kept')
    const alone = host().cli(['doctor', '--json'])
    assert.deepEqual(Object.keys(r.json.result.doctor), Object.keys(alone.json.result), 'the shape of "netkit doctor --json"')
    assert.deepEqual(
      r.json.result.doctor.checks.map((c: {id: string; result: string}) => `${c.id} ${c.result}`),
      alone.json.result.checks.map((c: {id: string; result: string}) => `${c.id} ${c.result}`),
    )
    assert.equal(r.json.result.doctor.passed, true)
    // The waiter that kept the change checked the host (this process did not run the doctor again), its report 0600.
    assert.match(readFileSync(log(), 'utf8'), /^netkit doctor \(asked with the confirmation\): 0 failed, \d+ warnings, \d+ ok, \d+ skipped$/m)
    const report = join(host().stateDir, 'apply-doctor.json')
    assert.equal(statSync(report).mode & 0o777, 0o600)
    assert.deepEqual(JSON.parse(readFileSync(report, 'utf8')).result, r.json.result.doctor)
    // The outcome is recorded first (a waiter killed during its doctor leaves the change recorded as confirmed).
    const recorded = JSON.parse(readFileSync(outcome(), 'utf8'))
    assert.equal(recorded.outcome, 'confirmed')
    assert.ok(recorded.at <= JSON.parse(readFileSync(report, 'utf8')).at, 'the outcome before the report')
    // For people: the confirmation, then the doctor's table and its summary line.
    assert.equal(detach(file('f.yaml', ['10.251.0.1/32'])).json.result.pending, true)
    const text = host().cli(['apply', '--confirm', '--doctor'])
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /^confirmed: keeping 1 change from \/etc\/netkit\/f\.yaml\n\n[A-Z]+\n[\s\S]*\n\d+ failed, \d+ warnings, \d+ ok, \d+ skipped\n$/)
    assert.deepEqual(lo(), ['127.0.0.1/8', '10.251.0.1/32'])
  })
})
