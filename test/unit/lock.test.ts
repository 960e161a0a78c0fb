import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {fileURLToPath} from 'node:url'

import {CHANGES_HOST} from '../../src/lib/base-command.js'
import {lockHost, lockPath, startOf} from '../../src/lib/lock.js'

const dir = mkdtempSync(join(tmpdir(), 'netkit-lock-'))
process.env.NETKIT_STATE_DIR = dir

/** The pid of a process that has exited (pids are not reused that fast). */
const deadPid = (): number => spawnSync('true').pid!

describe('the host lock', () => {
  after(() => rmSync(dir, {recursive: true, force: true}))

  it('is taken with its holder written in the same step, re-entrant in a process, and gone after the last release', async () => {
    const outer = await lockHost('netkit lab up')
    const holder = JSON.parse(readFileSync(lockPath(), 'utf8'))
    assert.equal(holder.pid, process.pid)
    assert.equal(holder.started, startOf(process.pid))
    assert.equal(holder.what, 'netkit lab up')
    const inner = await lockHost('netkit apply x.yaml')
    inner()
    assert.ok(existsSync(lockPath()), 'the outer holder still holds it')
    inner()
    assert.ok(existsSync(lockPath()), 'a release counts once')
    outer()
    assert.equal(existsSync(lockPath()), false)
  })

  it('refuses at once, naming the holder, while a live process holds it', async () => {
    writeFileSync(lockPath(), JSON.stringify({pid: 1, started: startOf(1), since: '2026-12-01T10:11:12.000Z', what: 'netkit tunnel add site'}))
    await assert.rejects(
      lockHost('netkit apply'),
      (e: any) => e.code === 'E_BUSY' && e.message === 'another netkit command is changing this host (pid 1: netkit tunnel add site, since 10:11:12 UTC)',
    )
    assert.equal(JSON.parse(readFileSync(lockPath(), 'utf8')).pid, 1, "the holder's lock is left alone")
    rmSync(lockPath())
  })

  it('waits, bounded, and tells once whom it waits for', async () => {
    writeFileSync(lockPath(), JSON.stringify({pid: 1, started: startOf(1), since: '2026-12-01T10:11:12.000Z', what: 'netkit apply'}))
    const told: string[] = []
    const t0 = Date.now()
    await assert.rejects(lockHost('netkit tunnel del x', {waitMs: 400, onWait: (h) => told.push(h)}), /E_BUSY|another netkit command/)
    assert.ok(Date.now() - t0 >= 400 && Date.now() - t0 < 3000)
    assert.deepEqual(told, ['pid 1: netkit apply, since 10:11:12 UTC'])
    rmSync(lockPath())
  })

  it('takes over a lock whose holder is gone (kill -9) or whose pid now belongs to another process', async () => {
    for (const stale of [
      {pid: deadPid(), started: '1'},
      {pid: 1, started: 'not-when-pid-1-started'},
    ]) {
      writeFileSync(lockPath(), JSON.stringify({...stale, since: new Date().toISOString(), what: 'netkit apply'}))
      const release = await lockHost('netkit tunnel add b')
      assert.equal(JSON.parse(readFileSync(lockPath(), 'utf8')).pid, process.pid)
      release()
    }
  })

  it('an empty or half-written lock (an older netkit killed while writing it) is recovered, never blocking forever', async () => {
    writeFileSync(lockPath(), '')
    const old = new Date(Date.now() - 60_000)
    utimesSync(lockPath(), old, old)
    const release = await lockHost('netkit apply')
    assert.equal(JSON.parse(readFileSync(lockPath(), 'utf8')).pid, process.pid)
    release()
    writeFileSync(lockPath(), '{"pid": 12')
    const t0 = Date.now()
    const again = await lockHost('netkit apply')
    assert.ok(Date.now() - t0 >= 2000, 'a fresh unreadable lock may be one being written: waited for it')
    again()
  })

  it('every command is classed: those that change the host take the lock, the rest only read', () => {
    const manifest = JSON.parse(readFileSync(fileURLToPath(new URL('../../../oclif.manifest.json', import.meta.url)), 'utf8'))
    const reads = [
      'addr:list',
      'autocomplete',
      'bridge:list',
      'diff',
      'export',
      'fleet:render',
      'help',
      'lab:status',
      'link:list',
      'metrics',
      'ns:exec',
      'ns:list',
      'proxyarp:list',
      'route:list',
      'rule:list',
      'service:status',
      'service:unit',
      'sysctl:get',
      'sysctl:list',
      'table:list',
      'tunnel:list',
      'tunnel:peer:list',
      'tunnel:show',
      'xfrm:policy:list',
      'xfrm:state:list',
    ]
    for (const id of Object.keys(manifest.commands))
      assert.ok(Boolean(CHANGES_HOST[id]) !== reads.includes(id), `${id}: in exactly one of CHANGES_HOST and the read-only list`)
    for (const id of Object.keys(CHANGES_HOST)) assert.ok(id in manifest.commands, `${id} is a command`)
    assert.equal((CHANGES_HOST.doctor as (f: object) => boolean)({fix: true}), true)
    assert.equal((CHANGES_HOST.doctor as (f: object) => boolean)({}), false)
  })
  it('a holder that has ended but is not reaped yet (a zombie) holds nothing', async () => {
    // sh starts a short sleep, then becomes a long one that never collects it: the short one stays a zombie.
    const sh = spawn('sh', ['-c', 'sleep 1 & echo $!; exec sleep 8'], {stdio: ['ignore', 'pipe', 'ignore']})
    const pid = Number(await new Promise<string>((resolve) => sh.stdout!.once('data', (d) => resolve(String(d)))))
    try {
      assert.ok(startOf(pid) !== undefined, 'running at first')
      await new Promise((r) => setTimeout(r, 1500))
      assert.match(readFileSync(`/proc/${pid}/stat`, 'utf8'), /\) Z /, 'a zombie now')
      assert.equal(startOf(pid), undefined)
    } finally {
      sh.kill('SIGKILL')
    }
  })
})
