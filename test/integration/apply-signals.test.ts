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
import {ipj, sh, skipUnlessRoot} from '../helpers/hosts.js'
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

  it('kill -9 half way through a 20,000-route apply: the re-run converges, and a one-route file then leaves exactly one route', async () => {
    const {A, hA} = twoHosts('gk')
    const routes = Array.from({length: 20_000}, (_, i) => `  - {to: 10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32, dev: br0}`)
    const big = join(scratch, 'big.yaml')
    writeFileSync(big, `version: 1\nlinks: [{name: br0, type: bridge, up: true}]\nroutes:\n${routes.join('\n')}\n`)
    const child = hA.cliStart(['apply', '-f', big])
    const exited = exitOf(child)
    const netkitRoutes = () => ipj(A, ['route', 'show', 'table', 'main']).filter((r: any) => r.protocol === 'netkit' || r.protocol === '178').length
    // Killed while the kernel takes the routes in: some are made, not all.
    let seen = 0
    for (let i = 0; i < 3000 && seen === 0; i++) {
      seen = Number(sh('sh', ['-c', `ip -n ${A} route show proto 178 | wc -l`]).trim())
      if (seen === 0) await new Promise((r) => setTimeout(r, 5))
    }
    child.kill('SIGKILL')
    await exited
    const left = netkitRoutes()
    assert.ok(left > 0, 'some routes were made before the kill')
    const again = hA.cli(['apply', '-f', big], {timeoutMs: 120_000})
    assert.equal(again.code, 0, again.stderr.slice(-500))
    assert.equal(netkitRoutes(), 20_000, `the re-run converges (${left} routes were left by the killed run)`)
    const one = join(scratch, 'one.yaml')
    writeFileSync(one, 'version: 1\nlinks: [{name: br0, type: bridge, up: true}]\nroutes:\n  - {to: 10.100.0.0/32, dev: br0}\n')
    const small = hA.cli(['apply', '-f', one], {timeoutMs: 120_000})
    assert.equal(small.code, 0, small.stderr.slice(-500))
    assert.equal(netkitRoutes(), 1, 'exactly the one route of the file is left')
    assert.match(hA.cli(['diff', '-f', one]).stdout, /the host matches/)
  })
})
