import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, it} from 'node:test'

// dist/test/unit -> the repository root, where bin/run.js runs the built bundle.
const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'run.js')
const netkit = (...args: string[]) =>
  spawnSync(process.execPath, [bin, ...args], {encoding: 'utf8', env: {...process.env, NETKIT_STATE_DIR: '/nonexistent-netkit-test'}})

describe('bad usage on the command line', () => {
  it('is one line and exit 2, with --verbose too (no stack trace for a flag that does not exist)', () => {
    for (const args of [
      ['route', 'list', '--bogus'],
      ['route', 'list', '--bogus', '--verbose'],
    ]) {
      const r = netkit(...args)
      assert.equal(r.status, 2, r.stderr)
      assert.equal(r.stderr, 'error: Nonexistent flag: --bogus; see --help for the usage\n')
    }
  })
})
