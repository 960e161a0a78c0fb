/**
 * A signal while `apply --try` waits for its answer undoes the change: the
 * host, and what netkit stores, are as before the apply.
 */
import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {exitOf, stderrUntil} from '../helpers/cli.js'
import {ipj, skipUnlessRoot} from '../helpers/hosts.js'
import {twoHosts} from '../helpers/topology.js'

describe('a signal at the apply --try prompt (integration)', {skip: skipUnlessRoot}, () => {
  const scratch = mkdtempSync(join(tmpdir(), 'netkit-test-'))
  after(() => rmSync(scratch, {recursive: true, force: true}))
  for (const signal of ['SIGHUP', 'SIGTERM', 'SIGINT'] as const) {
    it(`${signal}: a tunnel whose address the change would move keeps its address, its stored definition and its device`, async () => {
      const {A, hA, hB} = twoHosts(`g${signal.slice(3, 5).toLowerCase()}`)
      const peer = hB.cli(['tunnel', 'pubkey', 'site']).stdout.trim()
      const file = (address: string) => `version: 1\ntunnels:\n  site: {type: wireguard, remote: 192.0.2.2, address: ${address}, peerPublicKey: "${peer}"}\n`
      const first = hA.cli(['apply', '-f', '-'], {input: file('10.99.0.1/24')})
      assert.equal(first.code, 0, first.stderr)
      const addrs = () => ipj(A, ['-4', 'addr', 'show', 'dev', 'wg-site'])[0]?.addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)
      assert.deepEqual(addrs(), ['10.99.0.1/24'])

      const moved = join(scratch, `moved-${signal}.yaml`)
      writeFileSync(moved, file('10.99.0.7/24'))
      const child = hA.cliStart(['apply', '-f', moved, '--try', '30'])
      const exited = exitOf(child)
      await stderrUntil(child, /keep these changes\?/)
      assert.deepEqual(addrs(), ['10.99.0.7/24'], 'the change was made')
      child.kill(signal)
      assert.equal(await exited, 1)
      assert.deepEqual(addrs(), ['10.99.0.1/24'], 'the device is back with its address')
      const stored = hA.cli(['export', '--json']).json?.result ?? hA.cli(['export']).stdout
      assert.match(JSON.stringify(stored), /10\.99\.0\.1\/24/, 'the stored definition is the old one')
      assert.doesNotMatch(JSON.stringify(stored), /10\.99\.0\.7/)
      assert.notEqual(hA.cli(['tunnel', 'list', '--json']).json.result[0]?.state, 'down')
      assert.match(hA.cli(['diff', '-f', '-'], {input: file('10.99.0.1/24')}).stdout, /the host matches/)
    })
  }
})
