/**
 * The set-up's last step (scripts/install-cli.sh): `netkit` on PATH and its
 * completion, tried in a private prefix (the machine's /usr/local is left alone).
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {after, describe, it} from 'node:test'
import {fileURLToPath} from 'node:url'

const repo = fileURLToPath(new URL('../../../', import.meta.url))
const script = join(repo, 'scripts/install-cli.sh')

describe('scripts/install-cli.sh: netkit on PATH after the set-up', () => {
  const prefix = mkdtempSync(join(tmpdir(), 'netkit-prefix-'))
  after(() => rmSync(prefix, {recursive: true, force: true}))
  const install = () => spawnSync('bash', [script], {encoding: 'utf8', env: {...process.env, PREFIX: prefix}})
  // A newcomer's shell: the prefix's bin and the system's, node where the system has it.
  const PATH = `${prefix}/bin:${dirname(process.execPath)}:/usr/sbin:/usr/bin:/sbin:/bin`

  it('links netkit into PREFIX/bin, and a newcomer\'s first "netkit --help" works', () => {
    const r = install()
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /^setup: netkit is on PATH \(.*\/bin\/netkit -> .*\/bin\/run\.js\); start with: netkit --help$/m)
    const link = join(prefix, 'bin/netkit')
    assert.equal(readlinkSync(link), join(repo, 'bin/run.js'))
    const help = spawnSync('bash', ['-c', 'cd / && netkit --help'], {encoding: 'utf8', env: {PATH, HOME: prefix}})
    assert.equal(help.status, 0, help.stderr)
    assert.match(help.stdout, /^USAGE\n {2}\$ netkit \[COMMAND\]$/m)
    assert.match(help.stdout, /^ {2}service +netkit at boot/m)
    assert.equal(install().status, 0, 'running it again is fine')
    assert.ok(lstatSync(link).isSymbolicLink())
  })

  it('installs bash completion where bash-completion looks, and it completes', () => {
    const file = join(prefix, 'share/bash-completion/completions/netkit')
    assert.match(readFileSync(file, 'utf8'), /^complete -o default -F _netkit_complete netkit$/m)
    const out = spawnSync('bash', ['-c', `source ${file}; COMP_WORDS=(netkit tun); COMP_CWORD=1; _netkit_complete; echo "\${COMPREPLY[*]}"`], {
      encoding: 'utf8',
    })
    assert.equal(out.stdout.trim(), 'tunnel')
  })

  it('leaves a netkit that is not a symlink (the single binary copied there) alone', () => {
    const link = join(prefix, 'bin/netkit')
    rmSync(link)
    mkdirSync(dirname(link), {recursive: true})
    writeFileSync(link, '#!/bin/sh\necho mine\n', {mode: 0o755})
    const r = install()
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stderr, /is not a symlink \(the single binary\?\): left as it is/)
    assert.equal(readFileSync(link, 'utf8'), '#!/bin/sh\necho mine\n')
  })
})
