/**
 * Fault injection (test/helpers/faults.ts): every changing call of a command,
 * in turn, fails; each failing run must leave the host exactly as it was.
 * Prints "faults: SCENARIO: failing runs N, runs not restored M" for each
 * (bench/faults.mjs collects them).
 */
import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {faultKit, sweep, type SweepResult} from '../helpers/faults.js'
import {skipUnlessRoot} from '../helpers/hosts.js'
import {twoHosts} from '../helpers/topology.js'

const PEER = 'hq97es4O1JAzBov3N2k/PtbfqQSJD6yyOhRvxekajl4='

describe('fault injection: a failure at any changing call leaves the host as before (integration)', {skip: skipUnlessRoot}, () => {
  const kit = faultKit()
  const scratch = mkdtempSync(join(tmpdir(), 'netkit-test-'))
  after(() => {
    kit.cleanup()
    rmSync(scratch, {recursive: true, force: true})
  })
  const psk = join(scratch, 'site.psk')
  writeFileSync(psk, 'correct horse battery staple 2026\n', {mode: 0o600})
  const report = (t: {diagnostic: (s: string) => void}, what: string, r: SweepResult) => {
    t.diagnostic(`faults: ${what}: failing runs ${r.failing}, runs not restored ${r.notRestored.length}`)
    assert.ok(r.succeededAt !== undefined, `${what}: the command went through once no call failed`)
    assert.ok((r.calls ?? 0) > 0, `${what}: the wrappers saw its changing calls`)
    assert.deepEqual(r.notRestored, [], `${what}: every failing run left the host as before`)
  }

  it('tunnel add, WireGuard', (t) => {
    const {hA} = twoHosts('fw')
    const wg = ['tunnel', 'add', 'fw', '--type', 'wireguard', '--remote', '192.0.2.2', '--peer-public-key', PEER, '--address', '10.99.0.1/24', '--remote-subnet', '10.2.0.0/24', '--no-wait']
    report(t, 'tunnel add (WireGuard)', sweep(hA, kit, (env) => hA.cli(wg, {env})))
    const replace = ['tunnel', 'add', 'fw', '--type', 'wireguard', '--remote', '192.0.2.2', '--peer-public-key', PEER, '--address', '10.99.0.5/24', '--remote-subnet', '10.2.0.0/24', '--no-wait', '--replace']
    report(t, 'tunnel add --replace (WireGuard)', sweep(hA, kit, (env) => hA.cli(replace, {env})))
    assert.equal(hA.cli(['tunnel', 'del', 'fw']).code, 0)
  })

  it('tunnel add, IPsec', (t) => {
    const {hA} = twoHosts('fi')
    const ipsec = ['tunnel', 'add', 'fi', '--type', 'ipsec', '--remote', '192.0.2.2', '--psk-file', psk, '--local-subnet', '10.1.0.0/24', '--remote-subnet', '10.2.0.0/24', '--no-wait']
    report(t, 'tunnel add (IPsec)', sweep(hA, kit, (env) => hA.cli(ipsec, {env})))
    assert.equal(hA.cli(['tunnel', 'del', 'fi']).code, 0)
  })

  it('apply, from nothing and from one file to another', (t) => {
    const {hA} = twoHosts('fa')
    const f1 = join(scratch, 'f1.yaml')
    const f2 = join(scratch, 'f2.yaml')
    writeFileSync(f1, [
      'version: 1',
      'tables: {fvpn: 171}',
      'links: [{name: br0, type: bridge, up: true}, {name: v0, type: veth, peer: v1, up: true}]',
      'addresses: [{dev: br0, address: 10.5.0.1/24}]',
      'routes: [{to: 10.8.0.0/24, dev: br0}, {to: 10.9.0.0/24, dev: br0, table: fvpn}]',
      'rules: [{from: 10.5.0.0/24, table: fvpn, priority: 1500}]',
      'proxyArp: [{address: 10.5.0.50, dev: br0}]',
      'sysctls: {ip_forward: 1}',
      '',
    ].join('\n'))
    writeFileSync(f2, [
      'version: 1',
      'tables: {fvpn: 171}',
      'links: [{name: br0, type: bridge, up: true, mtu: 1400}, {name: v2, type: veth, peer: v3, up: true}]',
      'addresses: [{dev: br0, address: 10.5.0.1/24}, {dev: v2, address: 10.6.0.1/24}]',
      'routes: [{to: 10.8.1.0/24, dev: br0}, {to: 10.9.0.0/24, dev: br0, table: fvpn}]',
      'rules: [{from: 10.6.0.0/24, table: fvpn, priority: 1501}]',
      'proxyArp: [{address: 10.5.0.51, dev: br0}]',
      '',
    ].join('\n'))
    report(t, 'apply from nothing', sweep(hA, kit, (env) => hA.cli(['apply', '-f', f1], {env})))
    report(t, 'apply from one file to another', sweep(hA, kit, (env) => hA.cli(['apply', '-f', f2], {env})))
  })
})
