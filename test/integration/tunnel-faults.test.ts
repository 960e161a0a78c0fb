/**
 * A step of `tunnel add` that fails half way leaves nothing behind: a wrapper
 * `ip` first on PATH fails one chosen change, as a flaky kernel or a full
 * table would.
 */
import assert from 'node:assert/strict'
import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {dump, skipUnlessRoot} from '../helpers/hosts.js'
import {twoHosts} from '../helpers/topology.js'

const IP = '/usr/sbin/ip'

describe('tunnel add when a change fails half way (integration)', {skip: skipUnlessRoot}, () => {
  const bin = mkdtempSync(join(tmpdir(), 'netkit-faults-'))
  after(() => rmSync(bin, {recursive: true, force: true}))
  // Fails an `ip -batch` whose lines mark a WireGuard device as netkit's (the step after wireguard-go made it).
  writeFileSync(
    join(bin, 'ip'),
    `#!/bin/sh
case " $* " in
  *" -batch "*)
    input=$(cat)
    case "$input" in *"link set wg-"*" alias netkit"*) echo 'RTNETLINK answers: Operation not permitted' >&2; echo 'Command failed -:1' >&2; exit 2 ;; esac
    printf '%s\\n' "$input" | exec ${IP} "$@" ;;
esac
exec ${IP} "$@"
`,
  )
  chmodSync(join(bin, 'ip'), 0o755)

  it('WireGuard: a failure marking the device stops wireguard-go and removes the device', () => {
    const {A, hA} = twoHosts('fw')
    const key = hA.cli(['tunnel', 'pubkey', 'peer']).stdout.trim()
    const before = dump(A)
    const r = hA.cli(['tunnel', 'add', 'wa', '--type', 'wireguard', '--remote', '192.0.2.2', '--peer-public-key', key, '--address', '10.99.0.1/24', '--no-wait'], {env: {PATH: `${bin}:${process.env.PATH}`}})
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /^error: not permitted to change WireGuard device wg-wa/m)
    assert.equal(dump(A), before, 'no device, address or route left')
    assert.deepEqual(hA.processes(), [], 'no wireguard-go left')
    const again = hA.cli(['tunnel', 'add', 'wa', '--type', 'wireguard', '--remote', '192.0.2.2', '--peer-public-key', key, '--address', '10.99.0.1/24', '--no-wait'])
    assert.equal(again.code, 0, `a re-run without the fault works: ${again.stderr}`)
    assert.equal(hA.cli(['tunnel', 'del', 'wa']).code, 0)
    assert.deepEqual(hA.processes(), [])
  })
})
