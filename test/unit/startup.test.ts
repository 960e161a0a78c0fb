import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {readdirSync, readFileSync} from 'node:fs'
import {describe, it} from 'node:test'

// dist/test/unit/ -> the package root
const root = new URL('../../../', import.meta.url)
const read = (p: string) => readFileSync(new URL(p, root), 'utf8')

describe('start-up: what the bundle carries (docs/performance.md)', () => {
  it("sorts the commands the same by code point as oclif's localeCompare did", () => {
    const ids = Object.keys(JSON.parse(read('oclif.manifest.json')).commands as Record<string, unknown>)
    const byLocale = [...ids].sort((a, b) => a.localeCompare(b))
    const byCodePoint = [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    assert.deepEqual(byCodePoint, byLocale)
    assert.doesNotMatch(read('dist/bundle/netkit.cjs'), /a\.id\.localeCompare\(b\.id\)/)
  })

  it('keeps the large libraries out of the main bundle: each in dist/bundle/lazy/, with its code cache', () => {
    const meta = JSON.parse(read('dist/meta.json')) as {inputs: Record<string, unknown>}
    const inMain = Object.keys(meta.inputs).filter((f) => /node_modules\/(zod|execa|js-yaml|listr2|inquirer|eta|table|iconv-lite|rxjs)\//.test(f))
    assert.deepEqual(inMain, [])
    const lazy = readdirSync(new URL('dist/bundle/lazy/', root)).sort()
    for (const pkg of ['eta', 'execa', 'inquirer', 'js-yaml', 'listr2', 'table', 'zod']) {
      assert.ok(lazy.includes(`${pkg}.cjs`) && lazy.includes(`${pkg}.cjs.cache`), `${pkg} in ${lazy.join(' ')}`)
    }
  })

  it('is ASCII (one other character makes V8 hold the whole file as two-byte text)', () => {
    assert.doesNotMatch(read('dist/bundle/netkit.cjs'), /[^\x00-\x7f]/)
  })

  it('answers a list command from the main bundle and the table package alone', () => {
    const bin = new URL('bin/run.js', root).pathname
    // Every bundle is compiled through vm.Script (bin/load.js, the lazy loader): note their names.
    const code = `const vm = require('node:vm'), path = require('node:path'), Script = vm.Script, seen = new Set();
      vm.Script = function (source, options) { seen.add(path.basename(options.filename)); return new Script(source, options) };
      process.on('exit', () => process.stderr.write('LOADED ' + [...seen].sort().join(' ') + '\\n'));
      process.argv = [process.argv[0], ${JSON.stringify(bin)}, 'ns', 'list'];
      import(${JSON.stringify(bin)});`
    const r = spawnSync(process.execPath, ['-e', code], {encoding: 'utf8'})
    assert.equal(r.status, 0, r.stderr)
    // (the table package only when there are namespaces to list)
    assert.match(r.stderr, /^LOADED netkit\.cjs( table\.cjs)?$/m)
  })
})
