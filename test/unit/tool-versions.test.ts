/**
 * The doctor's tool versions, kept between runs (src/lib/doctor/tool-versions.ts): a
 * binary is asked once; replaced (a package upgrade), it is asked again; a tool that is
 * not installed is asked every time and nothing is kept for it; no cache, or one that
 * cannot be written, and every tool is asked as before.
 */
import assert from 'node:assert/strict'
import {chmodSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {toolVersions} from '../../src/lib/doctor/tool-versions.js'
import type {Invocation, Runner} from '../../src/lib/runner.js'

const dir = mkdtempSync(join(tmpdir(), 'netkit-tool-versions-'))
after(() => rmSync(dir, {recursive: true, force: true}))

/** A runner whose probes answer "TOOL version N" (N counts the probes) and are recorded. */
function prober(missing: string[] = []) {
  const asked: string[] = []
  const runner = {
    async probe(inv: Invocation) {
      asked.push(`${inv.tool} ${inv.args.join(' ')}`)
      if (missing.some((m) => inv.tool.endsWith(m))) return {exitCode: 127, stdout: '', stderr: 'not found'}
      return {exitCode: 0, stdout: `${inv.tool} version 1.${asked.length}\n`, stderr: ''}
    },
  } as unknown as Runner
  return {runner, asked}
}

function binary(name: string, content = '#!/bin/sh\necho 1\n'): string {
  const file = join(dir, name)
  writeFileSync(`${file}.new`, content)
  chmodSync(`${file}.new`, 0o755)
  // As a package manager does: a new file renamed over the old one (a new inode).
  renameSync(`${file}.new`, file)
  return file
}

describe('tool versions: asked once per installed binary', () => {
  it('a second run answers from the cache; a replaced binary is asked again', async () => {
    const ip = binary('ip')
    const wg = binary('wg')
    const cache = join(dir, 'state', 'tool-versions.json')
    const probes = [
      {tool: ip, args: ['-V']},
      {tool: wg, args: ['--version']},
    ]
    const first = prober()
    const a = await toolVersions(first.runner, probes, cache)
    assert.deepEqual(first.asked, [`${ip} -V`, `${wg} --version`])
    assert.equal(statSync(cache).mode & 0o777, 0o644)

    const second = prober()
    const b = await toolVersions(second.runner, probes, cache)
    assert.deepEqual(second.asked, [], 'nothing asked again')
    assert.deepEqual(b, a, 'the same answers')

    binary('wg', '#!/bin/sh\necho 2\n')
    const third = prober()
    const c = await toolVersions(third.runner, probes, cache)
    assert.deepEqual(third.asked, [`${wg} --version`], 'only the replaced binary')
    assert.deepEqual(c[0], a[0])
    assert.match(c[1].stdout, /version 1\.1/)

    // Other arguments are another question.
    const fourth = prober()
    await toolVersions(fourth.runner, [{tool: ip, args: ['-Version']}], cache)
    assert.deepEqual(fourth.asked, [`${ip} -Version`])
  })

  it('a tool on PATH is found as the runner would find it; a missing one is asked every time and not kept', async () => {
    binary('swanctl')
    const cache = join(dir, 'path', 'tool-versions.json')
    const path = process.env.PATH
    process.env.PATH = `${join(dir, 'nowhere')}:${dir}`
    try {
      for (let i = 0; i < 2; i++) {
        const p = prober(['wireguard-go'])
        const r = await toolVersions(
          p.runner,
          [
            {tool: 'swanctl', args: ['--version']},
            {tool: 'wireguard-go', args: ['--version']},
          ],
          cache,
        )
        assert.deepEqual(p.asked, i === 0 ? ['swanctl --version', 'wireguard-go --version'] : ['wireguard-go --version'])
        assert.equal(r[1].exitCode, 127)
      }
      assert.deepEqual(Object.keys(JSON.parse(readFileSync(cache, 'utf8')).tools), [join(dir, 'swanctl')])
    } finally {
      process.env.PATH = path
    }
  })

  it('without a cache, or with one that cannot be written, every tool is asked', async () => {
    const ip = binary('ip')
    for (const cache of [undefined, join(dir, 'ip', 'under-a-file.json')]) {
      for (let i = 0; i < 2; i++) {
        const p = prober()
        const [r] = await toolVersions(p.runner, [{tool: ip, args: ['-V']}], cache)
        assert.deepEqual(p.asked, [`${ip} -V`])
        assert.equal(r.exitCode, 0)
      }
    }
  })

  it('a cache file that is not ours, or of another format, is ignored', async () => {
    const ip = binary('ip')
    const cache = join(dir, 'bad.json')
    for (const text of ['{', '[]', JSON.stringify({format: 99, tools: {[ip]: {}}}), 'null']) {
      writeFileSync(cache, text)
      const p = prober()
      await toolVersions(p.runner, [{tool: ip, args: ['-V']}], cache)
      assert.deepEqual(p.asked, [`${ip} -V`], text)
    }
  })
})
