/**
 * The Debian package (scripts/build-deb.sh), installed with apt as an operator
 * would, and its netkit run on a simulated host. Runs only with NETKIT_DEB set
 * to the .deb (scripts/test-deb.sh, after the single binary is built): it
 * installs a package on the machine, and removes it after.
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {cliResult, type CliResult} from '../helpers/cli.js'
import {makeNs, skipUnlessRoot} from '../helpers/hosts.js'
import {bootHost, type SimHost} from '../helpers/realhost.js'

const DEB = process.env.NETKIT_DEB
const apt = (...args: string[]) =>
  spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=300', ...args], {
    encoding: 'utf8',
    env: {...process.env, DEBIAN_FRONTEND: 'noninteractive'},
    timeout: 600_000,
  })

describe('the netkit Debian package (integration)', {skip: skipUnlessRoot || (DEB ? false : 'set NETKIT_DEB to a .deb (scripts/test-deb.sh)')}, () => {
  let h: SimHost
  // The binary unpacks itself into the caller's cache directory: a private one, not the machine's /root/.cache.
  const cache = mkdtempSync(join(tmpdir(), 'netkit-deb-cache-'))
  const installed = (args: string[]): CliResult =>
    cliResult(
      spawnSync('nsenter', ['-t', String(h.pid), '-m', '-p', '-n', '-u', '--', '/usr/bin/netkit', ...args], {
        encoding: 'utf8',
        env: {PATH: '/usr/sbin:/usr/bin:/sbin:/bin', XDG_CACHE_HOME: cache},
        timeout: 60_000,
      }),
    )

  before(() => {
    assert.equal(spawnSync('dpkg-query', ['-W', 'netkit']).status, 1, 'netkit is not installed as a package before the test')
    const r = apt('install', '-y', '-q', '--no-install-recommends', DEB!)
    assert.equal(r.status, 0, r.stdout + r.stderr)
    h = bootHost(makeNs('deb'))
  })
  after(() => {
    h?.stop()
    rmSync(cache, {recursive: true, force: true})
    const r = apt('remove', '-y', '-q', 'netkit')
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.ok(!existsSync('/usr/bin/netkit'), 'apt-get remove took /usr/bin/netkit')
  })

  it('installs with apt: the binary, the unit, completion and docs, declared as Debian wants them', () => {
    const fields = spawnSync('dpkg-query', ['-W', '-f', '${Status}|${Depends}|${Recommends}', 'netkit'], {encoding: 'utf8'}).stdout.split('|')
    assert.equal(fields[0], 'install ok installed')
    assert.match(fields[1], /^iproute2, procps, libc6 \(>= [\d.]+\)/)
    assert.match(fields[2], /strongswan-swanctl/)
    assert.match(fields[2], /wireguard-tools/)
    const files = spawnSync('dpkg', ['-L', 'netkit'], {encoding: 'utf8'}).stdout.split('\n')
    for (const f of [
      '/usr/bin/netkit',
      '/lib/systemd/system/netkit.service',
      '/usr/share/bash-completion/completions/netkit',
      '/usr/share/zsh/vendor-completions/_netkit',
      '/usr/share/doc/netkit/copyright',
      '/usr/share/doc/netkit/boot.md',
    ]) {
      assert.ok(files.includes(f), `${f} in the package`)
    }
    const unit = readFileSync('/lib/systemd/system/netkit.service', 'utf8')
    assert.match(unit, /^ExecStart=\/usr\/bin\/netkit service boot$/m)
    const v = spawnSync('systemd-analyze', ['verify', '/lib/systemd/system/netkit.service'], {encoding: 'utf8'})
    assert.equal(v.status, 0, v.stderr)
    assert.match(readFileSync('/usr/share/bash-completion/completions/netkit', 'utf8'), /^complete -o default -F _netkit_complete netkit$/m)
  })

  it('its netkit runs on a host: --help, --version and the doctor', () => {
    const help = installed(['--help'])
    assert.equal(help.code, 0, help.stderr)
    assert.match(help.stdout, /^USAGE\n {2}\$ netkit \[COMMAND\]$/m)
    const version = installed(['--version'])
    assert.match(version.stdout, new RegExp(`^netkit/${JSON.parse(readFileSync('package.json', 'utf8')).version} linux-`))
    // The unit "netkit service install" would write runs the binary itself (no node: it is the single binary).
    assert.match(installed(['service', 'unit']).stdout, /^ExecStart=\/usr\/bin\/netkit service boot$/m)
    const doctor = installed(['doctor', '--json'])
    assert.ok(doctor.json?.ok, doctor.stdout + doctor.stderr)
    assert.ok(doctor.json.result.checks.length > 0)
    assert.equal(doctor.json.result.summary.fail, 0, JSON.stringify(doctor.json.result.checks.filter((c: any) => c.result === 'fail')))
  })
})
