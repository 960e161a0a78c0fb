import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {nsName, skipUnlessRoot} from '../helpers/hosts.js'
import {hostForFile} from '../helpers/realhost.js'

describe('netkit ns (integration)', {skip: skipUnlessRoot}, () => {
  // One simulated host (realhost.ts): its namespaces live in its own /run/netns, and netkit runs there with its defaults.
  const H = hostForFile('nh')
  const {cli, tryRun} = H

  it('adds a namespace with lo up, is idempotent, lists it as owned, and deletes it', () => {
    const name = nsName('ns')
    const add = cli(['ns', 'add', name])
    assert.equal(add.code, 0, add.stderr)
    assert.match(add.stdout, /added network namespace/)
    const lo = JSON.parse(tryRun('ip', ['-n', name, '-j', 'link', 'show', 'lo']).stdout)
    assert.ok(lo[0].flags.includes('UP'), 'lo is up')

    const again = cli(['ns', 'add', name])
    assert.equal(again.code, 0)
    assert.match(again.stdout, /already exists; nothing to do/)
    assert.deepEqual(again.json, undefined)

    const list = cli(['ns', 'list', '--owned', '--json'])
    assert.equal(list.code, 0)
    assert.ok(list.json.ok)
    assert.deepEqual(
      list.json.result.filter((r: any) => r.name === name),
      [{name, id: null, owned: true}],
    )

    const dry = cli(['ns', 'del', name, '--dry-run'])
    assert.equal(dry.stdout, `ip netns del ${name}\n`)
    assert.equal(tryRun('ip', ['-n', name, 'link', 'show', 'lo']).code, 0, 'dry run left it')

    const del = cli(['ns', 'del', name, '--json'])
    assert.equal(del.code, 0)
    assert.equal(del.json.result.changed, true)
    assert.notEqual(tryRun('ip', ['-n', name, 'link', 'show']).code, 0, 'gone')
    const del2 = cli(['ns', 'del', name, '--json'])
    assert.equal(del2.json.result.changed, false)
  })

  it('refuses to delete a namespace where processes still run (they would keep it alive, unnamed)', async () => {
    const name = nsName('bz')
    assert.equal(cli(['ns', 'add', name]).code, 0)
    const {spawn} = await import('node:child_process')
    const child = spawn('nsenter', ['-t', String(H.host().pid), '-m', '-p', '-n', '-u', '--', 'ip', 'netns', 'exec', name, 'sleep', '60'], {stdio: 'ignore'})
    try {
      for (let i = 0; i < 50 && tryRun('ip', ['netns', 'pids', name]).stdout.trim() === ''; i++) await new Promise((r) => setTimeout(r, 50))
      const r = cli(['ns', 'del', name])
      assert.equal(r.code, 2)
      assert.match(r.stderr, /^error: 1 process still run in network namespace \S+: sleep \(\d+\); stop them first/)
      assert.equal(tryRun('ip', ['-n', name, 'link', 'show', 'lo']).code, 0, 'still there')
    } finally {
      // nsenter does not pass signals on: end the sleep itself, inside the host.
      tryRun('kill', tryRun('ip', ['netns', 'pids', name]).stdout.split(/\s+/).filter(Boolean))
      await new Promise((r) => child.once('exit', r))
    }
    assert.equal(cli(['ns', 'del', name]).code, 0)
  })

  it('refuses to delete a namespace it did not create, exit 2, and leaves it', () => {
    const name = nsName('fx')
    tryRun('ip', ['netns', 'add', name])
    const del = cli(['ns', 'del', name])
    assert.equal(del.code, 2)
    assert.match(del.stderr, /^error: network namespace .* was not created by netkit; .*--force/)
    assert.equal(tryRun('ip', ['-n', name, 'link', 'show', 'lo']).code, 0)
  })

  it('takes arguments only from the command line, never from piped standard input', () => {
    const name = nsName('in')
    const r = cli(['ns', 'add'], {input: `${name}\n`})
    assert.equal(r.code, 2)
    assert.match(r.stderr, /^error: Missing 1 required arg: name/)
    assert.notEqual(tryRun('ip', ['-n', name, 'link', 'show', 'lo']).code, 0, `no namespace ${name} from what was piped in`)
  })

  it('rejects bad names with exit 2 and creates nothing', () => {
    for (const bad of ['a/b', 'a b', 'x;rm', '$(id)', '..']) {
      const r = cli(['ns', 'add', bad])
      assert.equal(r.code, 2, bad)
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line')
    }
  })

  it('--netns with an unknown namespace is bad input', () => {
    const r = cli(['ns', 'list', '--netns', 'nkt-does-not-exist'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /does not exist/)
  })
})
