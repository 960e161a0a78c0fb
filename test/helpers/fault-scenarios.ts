/**
 * The fault sweeps (faults.ts) over netkit's changing commands: tunnel add
 * (WireGuard and IPsec, on the first host and on the second, whose peer is up
 * so that the add waits for the handshake or the SA), `--replace`, and apply
 * from nothing and from one file to another. Each scenario sets up its own
 * pair of simulated hosts and returns the sweep's result. The integration test
 * (test/integration/faults.test.ts) runs those marked `suite`;
 * bench/faults.mjs runs them all.
 */
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'

import {type FaultKit, sweep, type SweepResult} from './faults.js'
import {filesUnder} from './hosts.js'
import type {SimHost} from './realhost.js'
import {twoHosts} from './topology.js'

export interface Scenario {
  name: string
  /** Part of the integration suite (the others run in bench/faults.mjs only). */
  suite: boolean
  run(kit: FaultKit): SweepResult
}

const PEER = 'hq97es4O1JAzBov3N2k/PtbfqQSJD6yyOhRvxekajl4='

const scratch = mkdtempSync(join(tmpdir(), 'netkit-faults-'))
process.on('exit', () => rmSync(scratch, {recursive: true, force: true}))
const psk = join(scratch, 'site.psk')
writeFileSync(psk, 'correct horse battery staple 2026\n', {mode: 0o600})

/** Keeps the host's secrets as they are now; the returned function writes back those that went. */
function keep(h: SimHost): () => void {
  const saved = filesUnder(h.configDir).map((f) => ({f, text: readFileSync(f), mode: statSync(f).mode & 0o777}))
  return () => {
    for (const {f, text, mode} of saved)
      if (!existsSync(f)) {
        mkdirSync(dirname(f), {recursive: true, mode: 0o700})
        writeFileSync(f, text, {mode})
      }
  }
}

/** Runs netkit in a host with the fault kit's environment, failing loudly when a reset does not work. */
const ok = (h: SimHost, args: string[]) => {
  const r = h.cli(args)
  if (r.code !== 0) throw new Error(`netkit ${args.join(' ')} failed in ${h.ns}: ${r.stderr.slice(-600)}`)
}

const wgAdd = (name: string, remote: string, peer: string, address: string, extra: string[] = []) => [
  'tunnel',
  'add',
  name,
  '--type',
  'wireguard',
  '--remote',
  remote,
  '--peer-public-key',
  peer,
  '--address',
  address,
  ...extra,
]
const ipsecAdd = (name: string, remote: string, local: string, rem: string, extra: string[] = []) => [
  'tunnel',
  'add',
  name,
  '--type',
  'ipsec',
  '--remote',
  remote,
  '--psk-file',
  psk,
  '--local-subnet',
  local,
  '--remote-subnet',
  rem,
  ...extra,
]

export const scenarios: Scenario[] = [
  {
    name: 'tunnel add (WireGuard, first host)',
    suite: false,
    run(kit) {
      const {hA} = twoHosts('fw')
      const add = wgAdd('fw', '192.0.2.2', PEER, '10.99.0.1/24', ['--remote-subnet', '10.2.0.0/24', '--no-wait'])
      return sweep(hA, kit, (env) => hA.cli(add, {env}), {reset: () => ok(hA, ['tunnel', 'del', 'fw'])})
    },
  },
  {
    name: 'tunnel add (WireGuard, second host: waits for the handshake)',
    suite: true,
    run(kit) {
      const {hA, hB} = twoHosts('fh')
      const ka = hA.cli(['tunnel', 'pubkey', 'fh']).stdout.trim()
      const kb = hB.cli(['tunnel', 'pubkey', 'fh']).stdout.trim()
      ok(hB, wgAdd('fh', '192.0.2.1', ka, '10.99.0.2/24', ['--remote-subnet', '10.1.0.0/24', '--no-wait']))
      const add = wgAdd('fh', '192.0.2.2', kb, '10.99.0.1/24', ['--remote-subnet', '10.2.0.0/24', '--timeout', '10'])
      // "tunnel del" removes the key pair the peer knows: the reset puts it back, as a user would keep it.
      const keys = keep(hA)
      return sweep(hA, kit, (env) => hA.cli(add, {env}), {reset: () => (ok(hA, ['tunnel', 'del', 'fh']), keys())})
    },
  },
  {
    name: 'tunnel add --replace (WireGuard)',
    suite: false,
    run(kit) {
      const {hA} = twoHosts('fr')
      // Its routes in a table of its own, with a policy rule: rules stay when their device goes, routes do not.
      const old = wgAdd('fr', '192.0.2.2', PEER, '10.99.0.1/24', ['--remote-subnet', '10.2.0.0/24', '--table', '120', '--no-wait'])
      ok(hA, old)
      const replace = wgAdd('fr', '192.0.2.2', PEER, '10.99.0.5/24', ['--remote-subnet', '10.3.0.0/24', '--table', '121', '--no-wait', '--replace'])
      return sweep(hA, kit, (env) => hA.cli(replace, {env}), {reset: () => ok(hA, [...old, '--replace'])})
    },
  },
  {
    name: 'tunnel add (IPsec, first host)',
    suite: false,
    run(kit) {
      const {hA} = twoHosts('fi')
      kit.intoHost(hA)
      const add = ipsecAdd('fi', '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait'])
      return sweep(hA, kit, (env) => hA.cli(add, {env}), {reset: () => ok(hA, ['tunnel', 'del', 'fi']), charonHang: true})
    },
  },
  {
    name: 'tunnel add (IPsec, second host, initiating: waits for the SA)',
    suite: false,
    run(kit) {
      const {hA, hB} = twoHosts('fs')
      kit.intoHost(hA)
      ok(hB, ipsecAdd('fs', '192.0.2.1', '10.2.0.0/24', '10.1.0.0/24', ['--no-wait']))
      const add = ipsecAdd('fs', '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--timeout', '20'])
      return sweep(hA, kit, (env) => hA.cli(add, {env}), {reset: () => ok(hA, ['tunnel', 'del', 'fs'])})
    },
  },
  {
    name: 'tunnel add (IPsec, second host, answering: waits for the peer to start the SA)',
    suite: false,
    run(kit) {
      const {hA, hB} = twoHosts('ft')
      kit.intoHost(hB)
      ok(hA, ipsecAdd('ft', '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait']))
      const add = ipsecAdd('ft', '192.0.2.1', '10.2.0.0/24', '10.1.0.0/24', ['--timeout', '20'])
      return sweep(hB, kit, (env) => hB.cli(add, {env}), {reset: () => ok(hB, ['tunnel', 'del', 'ft'])})
    },
  },
  {
    name: 'tunnel add --replace (IPsec)',
    suite: true,
    run(kit) {
      const {hA} = twoHosts('fp')
      kit.intoHost(hA)
      const old = ipsecAdd('fp', '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait'])
      ok(hA, old)
      const replace = ipsecAdd('fp', '192.0.2.2', '10.1.0.0/24', '10.3.0.0/24', ['--no-wait', '--replace'])
      // A charon that never opens VICI: in the first-host scenario, and in wait-signals.test.ts (10 s each: not here too).
      return sweep(hA, kit, (env) => hA.cli(replace, {env}), {reset: () => ok(hA, [...old, '--replace'])})
    },
  },
  {
    name: 'tunnel add and --replace (IPsec, next to another tunnel: charon keeps running)',
    suite: false,
    run(kit) {
      const {hA} = twoHosts('fn')
      kit.intoHost(hA)
      ok(hA, ipsecAdd('other', '192.0.2.2', '10.1.7.0/24', '10.2.7.0/24', ['--no-wait']))
      const add = ipsecAdd('fn', '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--no-wait'])
      const a = sweep(hA, kit, (env) => hA.cli(add, {env}), {reset: () => ok(hA, ['tunnel', 'del', 'fn'])})
      ok(hA, add)
      const replace = ipsecAdd('fn', '192.0.2.2', '10.1.0.0/24', '10.3.0.0/24', ['--no-wait', '--replace'])
      const r = sweep(hA, kit, (env) => hA.cli(replace, {env}), {reset: () => ok(hA, [...add, '--replace'])})
      return {
        failing: a.failing + r.failing,
        tolerated: a.tolerated + r.tolerated,
        notRestored: [...a.notRestored, ...r.notRestored],
        calls: a.calls + r.calls,
        tools: [...a.tools, ...r.tools],
        charonHangs: a.charonHangs + r.charonHangs,
        aborted: a.aborted ?? r.aborted,
      }
    },
  },
  {
    name: 'tunnel add --replace (IPsec, second host: the old tunnel comes back with its SA)',
    suite: false,
    run(kit) {
      const {hA, hB} = twoHosts('fq')
      kit.intoHost(hA)
      ok(hB, ipsecAdd('fq', '192.0.2.1', '10.2.0.0/24', '10.1.0.0/24', ['--no-wait']))
      const old = ipsecAdd('fq', '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--timeout', '20'])
      ok(hA, old)
      // The new definition (another DPD interval) comes up with the peer as it is; a failing run must bring the old one back, SA and all.
      const replace = ipsecAdd('fq', '192.0.2.2', '10.1.0.0/24', '10.2.0.0/24', ['--timeout', '20', '--replace', '--dpd', '20'])
      return sweep(hA, kit, (env) => hA.cli(replace, {env}), {reset: () => ok(hA, [...old, '--replace']), settleMs: 20_000})
    },
  },
  {
    name: 'apply from nothing',
    suite: false,
    run(kit) {
      const {hA} = twoHosts('fa')
      const {f1, empty} = applyFiles()
      // Nothing, as apply leaves it after the file was applied and emptied again (its memo of the host is there, as after any apply).
      ok(hA, ['apply', '-f', f1])
      ok(hA, ['apply', '-f', empty])
      return sweep(hA, kit, (env) => hA.cli(['apply', '-f', f1], {env}), {reset: () => ok(hA, ['apply', '-f', empty])})
    },
  },
  {
    name: 'apply from one file to another',
    suite: true,
    run(kit) {
      const {hA} = twoHosts('fb')
      const {f1, f2} = applyFiles()
      ok(hA, ['apply', '-f', f1])
      return sweep(hA, kit, (env) => hA.cli(['apply', '-f', f2], {env}), {reset: () => ok(hA, ['apply', '-f', f1])})
    },
  },
]

function applyFiles(): {f1: string; f2: string; empty: string} {
  const f1 = join(scratch, 'f1.yaml')
  const f2 = join(scratch, 'f2.yaml')
  const empty = join(scratch, 'empty.yaml')
  writeFileSync(
    f1,
    [
      'version: 1',
      'tables: {fvpn: 171}',
      // The MTU the other file changes, said here, so that applying this file after it sets it back.
      'links: [{name: br0, type: bridge, up: true, mtu: 1500}, {name: v0, type: veth, peer: v1, up: true}]',
      'addresses: [{dev: br0, address: 10.5.0.1/24}]',
      'routes: [{to: 10.8.0.0/24, dev: br0}, {to: 10.9.0.0/24, dev: br0, table: fvpn}]',
      'rules: [{from: 10.5.0.0/24, table: fvpn, priority: 1500}]',
      'proxyArp: [{address: 10.5.0.50, dev: br0}]',
      'sysctls: {ip_forward: 1}',
      '',
    ].join('\n'),
  )
  writeFileSync(
    f2,
    [
      'version: 1',
      'tables: {fvpn: 171}',
      'links: [{name: br0, type: bridge, up: true, mtu: 1400}, {name: v2, type: veth, peer: v3, up: true}]',
      'addresses: [{dev: br0, address: 10.5.0.1/24}, {dev: v2, address: 10.6.0.1/24}]',
      'routes: [{to: 10.8.1.0/24, dev: br0}, {to: 10.9.0.0/24, dev: br0, table: fvpn}]',
      'rules: [{from: 10.6.0.0/24, table: fvpn, priority: 1501}]',
      'proxyArp: [{address: 10.5.0.51, dev: br0}]',
      '',
    ].join('\n'),
  )
  writeFileSync(empty, 'version: 1\n')
  return {f1, f2, empty}
}

/** One line a reviewer reads: the figures of a scenario. */
export function figures(name: string, r: SweepResult): string {
  return `${name}: failing runs ${r.failing}, runs not restored ${r.notRestored.length}${r.tolerated ? ` (and ${r.tolerated} run${r.tolerated === 1 ? '' : 's'} that went through in spite of the fault)` : ''} over ${r.calls} changing calls${r.charonHangs ? ` and ${r.charonHangs} charon start${r.charonHangs === 1 ? '' : 's'} that never opened VICI` : ''}${r.aborted ? `; sweep stopped: ${r.aborted}` : ''}`
}
