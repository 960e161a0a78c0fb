import assert from 'node:assert/strict'
import {chmodSync, mkdtempSync, rmSync, utimesSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {toolVersion, whichTool} from '../../src/lib/tool-versions.js'

describe("the wrapped tools' versions, asked once per binary (tool-versions.ts)", () => {
  const dir = mkdtempSync(join(tmpdir(), 'netkit-tv-'))
  const saved = process.env.NETKIT_STATE_DIR
  process.env.NETKIT_STATE_DIR = join(dir, 'state')
  after(() => {
    if (saved === undefined) delete process.env.NETKIT_STATE_DIR
    else process.env.NETKIT_STATE_DIR = saved
    rmSync(dir, {recursive: true, force: true})
  })
  const tool = join(dir, 'faketool')
  writeFileSync(tool, '#!/bin/sh\necho faketool 1.2.3\n')
  chmodSync(tool, 0o755)
  let asked = 0
  const probe = (version: string) => async () => {
    asked++
    return {exitCode: 0, stdout: `faketool ${version}\n`, stderr: ''}
  }

  it('finds a tool on PATH (an executable file), or a path as given', () => {
    assert.equal(whichTool('faketool', `/nonexistent:${dir}`), tool)
    assert.equal(whichTool(tool), tool)
    assert.equal(whichTool('faketool', '/nonexistent'), undefined)
    writeFileSync(join(dir, 'notexec'), '')
    assert.equal(whichTool('notexec', dir), undefined)
  })

  it('asks the first time, answers from the state directory after, and asks again when the binary changes', async () => {
    assert.equal((await toolVersion(tool, probe('1.2.3'))).stdout, 'faketool 1.2.3\n')
    assert.equal((await toolVersion(tool, probe('9.9.9'))).stdout, 'faketool 1.2.3\n')
    assert.equal(asked, 1)
    // An upgrade: another file (size and time) at the same path.
    writeFileSync(tool, '#!/bin/sh\necho faketool 1.3.0 (upgraded)\n')
    utimesSync(tool, new Date(), new Date(Date.now() + 5000))
    assert.equal((await toolVersion(tool, probe('1.3.0'))).stdout, 'faketool 1.3.0\n')
    assert.equal(asked, 2)
  })

  it('never keeps "not installed": a tool that is not there is asked each time', async () => {
    const missing = async () => ({exitCode: 127, stdout: '', stderr: 'not found'})
    assert.equal((await toolVersion(join(dir, 'gone'), missing)).exitCode, 127)
    assert.equal((await toolVersion(join(dir, 'gone'), missing)).exitCode, 127)
  })
})
