import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, it} from 'node:test'

import {hostFileReference} from '../../src/lib/apply/schema-reference.js'
import {doctorChecksReference} from '../../src/lib/doctor/reference.js'

// dist/test/unit -> the repository root
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const page = (name: string) => readFileSync(join(root, 'docs', name), 'utf8')

describe('generated reference pages', () => {
  it('docs/host-file.md is what the schema says (run "node scripts/gen-docs.mjs" after changing it)', () => {
    assert.equal(page('host-file.md'), hostFileReference())
  })
  it('docs/doctor-checks.md lists the registry (run "node scripts/gen-docs.mjs" after adding a check)', () => {
    assert.equal(page('doctor-checks.md'), doctorChecksReference())
  })
  it('every field of the host file is described', () => {
    const bare = hostFileReference()
      .split('\n')
      .filter((l) => /^\| `/.test(l) && / \|$/.test(l) && l.split('|').at(-2)!.trim() === '')
    assert.deepEqual(bare, [])
  })
})
