import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {planHost} from '../../src/lib/apply/plan.js'
import {applyHost} from '../../src/lib/apply/run.js'
import {NetkitError, UsageError} from '../../src/lib/errors.js'
import {recordMany, ROOT_SCOPE} from '../../src/lib/ownership.js'
import {Recorder} from '../helpers/recorder.js'

const KEY = '0x' + 'ab'.repeat(36)
const OTHER = '0x' + 'cd'.repeat(36)
const sad = (key: string) => `src 192.0.2.1 dst 192.0.2.2
\tproto esp spi 0x00001000 reqid 1 mode tunnel
\treplay-window 0 flag af-unspec
\taead rfc4106(gcm(aes)) ${key} 128
\tanti-replay context: seq 0x0, oseq 0x0, bitmap 0x00000000
\tsel src 0.0.0.0/0 dst 0.0.0.0/0
`

describe('SAs (xfrmStates) in a host file', () => {
  let dir = ''
  const saved = {...process.env}
  let file = ''
  let keyFile = ''
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'netkit-sa-'))
    Object.assign(process.env, {NETKIT_STATE_DIR: join(dir, 'state'), NETKIT_CONFIG_DIR: join(dir, 'config'), NETKIT_IPROUTE2_DIR: join(dir, 'iproute2')})
    keyFile = join(dir, 'sa.hex')
    writeFileSync(keyFile, `${KEY}\n`, {mode: 0o600})
    file = `version: 1\nxfrmStates:\n  - {src: 192.0.2.1, dst: 192.0.2.2, spi: 0x1000, reqid: 1, aead: {alg: "rfc4106(gcm(aes))", keyFile: ${keyFile}}}\n`
  })
  after(() => {
    process.env = saved
    rmSync(dir, {recursive: true, force: true})
  })
  // A host with nothing on it but the SAD given.
  const host = (sadText: string, rec = new Recorder()) =>
    rec
      .on(/-d -j -batch -/, {stdout: '[]\n[]\n[]\n[]\n[]\n[]\n'})
      .on(/-6 -d -j -batch -/, {stdout: '[]\n[]\n'})
      .on('xfrm state list', {stdout: sadText})
  const input = (text: string) => ({text, source: 'host.yaml', version: 'test'})

  it('adds an SA with its key on stdin only, <redacted> wherever it is shown', async () => {
    // The kernel holds the SA once ip has added it (so that the read-back verifies it).
    let added = false
    const rec = host(
      '',
      new Recorder().on(/-batch -$/, (call) => ((added ||= Boolean(call.input?.includes('xfrm state add'))), {})),
    )
    rec.on('xfrm state list', () => ({stdout: added ? sad(KEY) : ''}))
    const runner = rec.runner()
    const r = await applyHost(runner, input(file))
    assert.deepEqual(
      r.changes.map((c) => [c.action, c.object]),
      [['add', 'SA 192.0.2.1 -> 192.0.2.2 spi 0x1000']],
    )
    const batch = rec.calls.find((c) => c.input?.includes('xfrm state add'))!
    assert.ok(batch.input!.includes(KEY.slice(2)), 'the key reaches ip on stdin')
    assert.ok(
      rec.calls.every((c) => !c.args.join(' ').includes(KEY.slice(2))),
      'and never an argv',
    )
    // The first change of a host also names netkit's routing protocol in its iproute2 folder (a file, shown as written).
    assert.deepEqual(runner.journal, [
      `write ${join(dir, 'iproute2', 'rt_protos.d', 'netkit.conf')} (mode 0644)`,
      "ip xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x1000 mode tunnel reqid 1 aead 'rfc4106(gcm(aes))' <redacted> 128",
    ])
    assert.ok(!JSON.stringify(r).includes(KEY.slice(2)))
  })

  it('the same SA with the same key is unchanged; another key in the file is a change (delete and add)', async () => {
    recordMany(
      ROOT_SCOPE,
      [
        {kind: 'applied', key: 'xfrm-state:192.0.2.1 192.0.2.2 0x00001000'},
        {kind: 'xfrm-state', key: '192.0.2.1 192.0.2.2 0x00001000'},
      ],
      [],
    )
    assert.deepEqual((await planHost(host(sad(KEY)).runner(), input(file))).changes, [])
    const plan = await planHost(host(sad(OTHER)).runner(), input(file))
    assert.deepEqual(
      plan.changes.map((c) => [c.action, c.desc, c.why]),
      [['change', 'SA 192.0.2.1 -> 192.0.2.2 spi 0x1000', 'its key differs']],
    )
    assert.ok(!plan.changes[0].why!.includes('cd'), 'the reason does not show the key')
    // Undo puts back the SA as it was: the live key, read from the kernel, as a Secret.
    assert.ok(plan.changes[0].live!.add[0].args.some((a) => typeof a !== 'string' && (a as {value: string}).value === OTHER))
  })

  it('a foreign SA in the way is a conflict; a key file that does not fit the algorithm is bad input naming the entry', async () => {
    recordMany(
      ROOT_SCOPE,
      [],
      [
        {kind: 'applied', key: 'xfrm-state:192.0.2.1 192.0.2.2 0x00001000'},
        {kind: 'xfrm-state', key: '192.0.2.1 192.0.2.2 0x00001000'},
      ],
    )
    await assert.rejects(planHost(host(sad(OTHER)).runner(), input(file)), (e: unknown) => e instanceof NetkitError && e.code === 'E_CONFLICT')
    writeFileSync(keyFile, '0x1234\n', {mode: 0o600})
    await assert.rejects(planHost(host('').runner(), input(file)), (e: unknown) => {
      assert.ok(e instanceof UsageError)
      assert.match(e.what, /^host file: xfrmStates\.0: aead\.keyFile .* holds a 16-bit key/)
      return true
    })
    writeFileSync(keyFile, `${KEY}\n`, {mode: 0o600})
  })
})
