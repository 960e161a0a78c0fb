import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {answerPending, pendingPath, running} from '../../src/lib/apply/pending.js'
import {startOf} from '../../src/lib/lock.js'
import {cli} from '../helpers/cli.js'

const dir = mkdtempSync(join(tmpdir(), 'netkit-confirm-'))
process.env.NETKIT_STATE_DIR = dir
const env = {NETKIT_STATE_DIR: dir, NETKIT_CONFIG_DIR: join(dir, 'config')}

describe('apply --confirm / --rollback', () => {
  after(() => rmSync(dir, {recursive: true, force: true}))

  it('with nothing pending: says so, and a re-run is harmless', async () => {
    assert.deepEqual(await answerPending('confirm', {doctor: true}), {result: {pending: false, asked: 'confirm', outcome: 'none'}})
    const r = cli(['apply', '--confirm', '--json'], {env})
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(r.json.result, {pending: false, asked: 'confirm', outcome: 'none'})
    const rb = cli(['apply', '--rollback'], {env})
    assert.equal(rb.code, 0)
    assert.match(rb.stdout, /nothing to roll back: no change is pending/)
  })

  it('a waiter killed without a word (kill -9): said, and its record is dropped', async () => {
    const dead = spawnSync('true').pid!
    writeFileSync(
      pendingPath(),
      JSON.stringify({
        pid: dead,
        started: '1',
        file: '/etc/netkit/fleet/host.yaml',
        since: '',
        deadline: '',
        seconds: 60,
        changes: 2,
        log: join(dir, 'apply-detached.log'),
      }),
    )
    await assert.rejects(
      answerPending('rollback'),
      (e: any) => e.code === 'E_WAITER_GONE' && /is gone without confirming or undoing it: the change is still in place/.test(e.message),
    )
    assert.equal(existsSync(pendingPath()), false)
  })

  it('a zombie is not running; a pid reused by another process is told apart by its start time', () => {
    assert.equal(running(process.pid, startOf(process.pid)!), true)
    assert.equal(running(process.pid, '1'), false)
  })

  it('refuses what cannot be meant, exit 2: --detach without --try, --confirm with a file, --doctor without --confirm, no file at all', () => {
    for (const args of [
      ['apply', '-f', 'x.yaml', '--detach'],
      ['apply', '--confirm', '-f', 'x.yaml'],
      ['apply', '--confirm', '--rollback'],
      ['apply', '--rollback', '--doctor'],
      ['apply', '-f', 'x.yaml', '--doctor'],
      ['apply'],
      ['apply', '-f', '-', '--try', '5', '--detach'],
    ]) {
      const r = cli(args, {env, input: ''})
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
    }
  })
})
