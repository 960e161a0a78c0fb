/**
 * SIGINT, SIGTERM and SIGHUP while `tunnel add` waits: for an IPsec SA, for a
 * WireGuard handshake, for charon's VICI socket, for the replaced tunnel's
 * handshake, and while a second command waits for the host's lock. After each,
 * the host is exactly as before (a full dump, faults.ts hostState: links,
 * addresses, routes, rules, sysctls, processes, netkit's files), so no stored
 * definition differs from what runs.
 */
import assert from 'node:assert/strict'
import type {ChildProcess} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {exitOf, stderrUntil} from '../helpers/cli.js'
import {faultKit, hostState} from '../helpers/faults.js'
import {skipUnlessRoot} from '../helpers/hosts.js'
import {twoHosts} from '../helpers/topology.js'

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('a signal while tunnel add waits (integration)', {skip: skipUnlessRoot}, () => {
  const kit = faultKit()
  const scratch = mkdtempSync(join(tmpdir(), 'netkit-test-'))
  after(() => {
    kit.cleanup()
    rmSync(scratch, {recursive: true, force: true})
  })
  const psk = join(scratch, 'site.psk')
  writeFileSync(psk, 'correct horse battery staple 2026\n', {mode: 0o600})
  const PEER = 'hq97es4O1JAzBov3N2k/PtbfqQSJD6yyOhRvxekajl4='
  const ipsec = [
    'tunnel',
    'add',
    'sa',
    '--type',
    'ipsec',
    '--remote',
    '192.0.2.2',
    '--psk-file',
    psk,
    '--local-subnet',
    '10.1.0.0/24',
    '--remote-subnet',
    '10.2.0.0/24',
    '--timeout',
    '40',
  ]
  const wg = (address: string, extra: string[] = []) => [
    'tunnel',
    'add',
    'hs',
    '--type',
    'wireguard',
    '--remote',
    '192.0.2.2',
    '--peer-public-key',
    PEER,
    '--address',
    address,
    '--remote-subnet',
    '10.2.0.0/24',
    ...extra,
  ]

  /** Starts a command, waits until it is in the wait `moment` names (and a little longer), signals it; returns its exit code. */
  async function signalAt(child: ChildProcess, moment: RegExp, signal: NodeJS.Signals): Promise<{code: number; stderr: string}> {
    let stderr = ''
    child.stderr!.on('data', (d) => (stderr += d))
    const exited = exitOf(child)
    await stderrUntil(child, moment, 40_000)
    await sleep(700)
    child.kill(signal)
    return {code: await exited, stderr}
  }

  /**
   * Each wait, with a signal each. The three signals are one handler (plan.ts's Interruption): the suite
   * rotates them over the waits; SIGNALS_ALL=1 (bench/faults.mjs) runs every wait with every signal.
   */
  const rounds: NodeJS.Signals[][] =
    process.env.SIGNALS_ALL === '1' ? SIGNALS.map((s) => [s, s, s, s, s]) : [['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGINT', 'SIGTERM']]
  for (const [sa, vici, lock, handshake, replace] of rounds) {
    it(`${sa} waiting for the SA, ${vici} for charon's VICI, ${lock} for the lock, ${handshake} for the handshake, ${replace} for the replaced tunnel's handshake`, async (t) => {
      const {hA} = twoHosts(`w${sa.slice(3, 5).toLowerCase()}${replace.slice(3, 5).toLowerCase()}`)
      kit.intoHost(hA)
      const before = hostState(hA)
      let runs = 0
      const notRestored: string[] = []
      /** After `signalled` runs (each ended by its signal), the host must be as `want`. */
      const same = (want: string, what: string, signalled = 1) => {
        runs += signalled
        if (hostState(hA) !== want) notRestored.push(what)
        assert.equal(hostState(hA), want, `${what}: the host is as before`)
      }
      const report = () =>
        t.diagnostic(
          `faults: signals (${[...new Set([sa, vici, lock, handshake, replace])].join(', ')}) during each wait of tunnel add: failing runs ${runs} (each ended by its signal), runs not restored ${notRestored.length}${notRestored.length ? ` (${notRestored.join('; ')})` : ''}`,
        )

      try {
        // The IPsec SA (the peer never answers).
        let r = await signalAt(hA.cliStart(ipsec), /\[#\] ip .*route replace unreachable 10\.2\.0\.0\/24/, sa)
        assert.equal(r.code, 1, r.stderr)
        assert.match(r.stderr, /^error: interrupted/m)
        same(before, `${sa} waiting for the SA`)

        // charon's VICI socket: a charon that never opens it.
        r = await signalAt(hA.cliStart(ipsec, {env: kit.env(0, {charon: 'hang', charonStart: 1})}), /\[#\] .*charon/, vici)
        assert.equal(r.code, 1, r.stderr)
        assert.match(r.stderr, /^error: interrupted/m)
        same(before, `${vici} waiting for charon's VICI`)

        // The WireGuard handshake; meanwhile a second command waits for the lock, and is signalled first.
        const holder = hA.cliStart(wg('10.99.0.1/24', ['--timeout', '40']))
        let holderErr = ''
        holder.stderr!.on('data', (d) => (holderErr += d))
        const holderExit = exitOf(holder)
        await stderrUntil(holder, /persistent-keepalive 1/, 40_000)
        const waiter = await signalAt(hA.cliStart([...ipsec, '--no-wait']), /waiting for another netkit command to finish/, lock)
        assert.notEqual(waiter.code, 0, 'the waiting command stopped')
        assert.doesNotMatch(waiter.stderr, /\[#\]/, 'it changed nothing')
        holder.kill(handshake)
        assert.equal(await holderExit, 1, holderErr)
        assert.match(holderErr, /^error: interrupted/m)
        same(before, `${lock} waiting for the lock, ${handshake} waiting for the handshake`, 2)

        // The handshake of a replaced tunnel: the old one comes back, with its definition.
        assert.equal(hA.cli(wg('10.99.0.1/24', ['--no-wait'])).code, 0)
        const withOld = hostState(hA)
        r = await signalAt(hA.cliStart(wg('10.99.0.5/24', ['--timeout', '40', '--replace'])), /persistent-keepalive 1/, replace)
        assert.equal(r.code, 1, r.stderr)
        same(withOld, `${replace} waiting for the replaced tunnel's handshake`)
        assert.match(JSON.stringify(hA.cli(['tunnel', 'show', 'hs', '--json']).json.result), /"10\.99\.0\.1\/24"/, 'the old definition is stored')
        assert.equal(hA.cli(['tunnel', 'del', 'hs']).code, 0)
        assert.deepEqual(hA.processes(), [])
      } finally {
        report()
      }
    })
  }
})
