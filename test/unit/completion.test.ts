import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {bashCompletion} from '../../src/lib/completion.js'

const commands = [
  {
    id: 'tunnel:add',
    flags: [
      {name: 'type', type: 'option' as const},
      {name: 'remote', type: 'option' as const},
    ],
  },
  {id: 'tunnel:list', flags: [{name: 'json', type: 'boolean' as const}]},
  {id: 'ns:add', flags: [{name: 'dry-run', type: 'boolean' as const}]},
]

function complete(words: string[]): string[] {
  const file = join(tmpdir(), `nk-completion-${process.pid}.bash`)
  writeFileSync(file, bashCompletion('netkit', commands))
  const script = `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _netkit_complete; printf '%s\\n' "\${COMPREPLY[@]}"`
  const r = spawnSync('bash', ['-c', script], {encoding: 'utf8'})
  rmSync(file, {force: true})
  return r.stdout.split('\n').filter(Boolean)
}

describe('bash completion', () => {
  it('completes topics, then commands, then the flags of the command', () => {
    assert.deepEqual(complete(['netkit', '']), ['ns', 'tunnel'])
    assert.deepEqual(complete(['netkit', 'tunnel', '']), ['add', 'list'])
    assert.deepEqual(complete(['netkit', 'tunnel', 'add', 'x', '--r']), ['--remote'])
    assert.deepEqual(complete(['netkit', 'ns', 'add', 'a', '--']), ['--dry-run'])
  })
})
