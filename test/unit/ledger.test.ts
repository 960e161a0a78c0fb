/**
 * The ledger (src/lib/ownership.ts) as apply writes it: many records at once,
 * written only when they change it.
 */
import assert from 'node:assert/strict'
import {mkdtempSync, readFileSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {ledgerScopes, owned, recordMany, ROOT_SCOPE} from '../../src/lib/ownership.js'

describe('the ledger, many records at once', () => {
  let dir = ''
  const saved = process.env.NETKIT_STATE_DIR
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'netkit-ledger-'))
    process.env.NETKIT_STATE_DIR = dir
  })
  after(() => {
    if (saved === undefined) delete process.env.NETKIT_STATE_DIR
    else process.env.NETKIT_STATE_DIR = saved
    rmSync(dir, {recursive: true, force: true})
  })
  const file = () => join(dir, 'owned.json')
  const keys = Array.from({length: 5000}, (_, i) => `route:254 10.${i >> 8}.${i & 255}.0/24 0`)

  it('records what is new, and leaves the file alone when a call changes nothing', () => {
    recordMany(ROOT_SCOPE, [...keys.map((key) => ({kind: 'applied' as const, key})), {kind: 'xfrm-policy', key: 'a b out -'}], [])
    assert.equal(Object.keys(owned(ROOT_SCOPE, 'applied')).length, 5000)
    const before = statSync(file(), {bigint: true})
    const text = readFileSync(file(), 'utf8')
    // Claiming again what is there, and releasing what is not: nothing to write.
    recordMany(
      ROOT_SCOPE,
      keys.map((key) => ({kind: 'applied' as const, key})),
      [
        {kind: 'applied', key: 'route:254 192.0.2.0/24 0'},
        {kind: 'addr', key: 'v0 10.0.0.1/24'},
      ],
    )
    const now = statSync(file(), {bigint: true})
    assert.equal(now.ino, before.ino, 'the file was not written again')
    assert.equal(now.mtimeNs, before.mtimeNs)
    assert.equal(readFileSync(file(), 'utf8'), text)
  })

  it('releases many records, dropping a kind and a scope once they are empty', () => {
    recordMany(
      ROOT_SCOPE,
      [],
      keys.slice(0, 4000).map((key) => ({kind: 'applied' as const, key})),
    )
    assert.deepEqual(Object.keys(owned(ROOT_SCOPE, 'applied')), keys.slice(4000))
    recordMany(ROOT_SCOPE, [], [...keys.slice(4000).map((key) => ({kind: 'applied' as const, key})), {kind: 'applied', key: 'toString'}])
    assert.deepEqual(owned(ROOT_SCOPE, 'applied'), {})
    assert.deepEqual(Object.keys(owned(ROOT_SCOPE, 'xfrm-policy')), ['a b out -'])
    recordMany(ROOT_SCOPE, [], [{kind: 'xfrm-policy', key: 'a b out -'}])
    assert.deepEqual(ledgerScopes(), [])
    assert.throws(() => statSync(file()), 'nothing owned: no file')
  })
})
