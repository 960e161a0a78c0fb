/**
 * A fleet on simulated hosts: `fleet render` turns one inventory into each
 * host's bundle, each host applies its own, and every pair pings over the
 * overlay. Then commit-confirm: `apply --try --detach` outlives the session
 * that started it until `--confirm`; unconfirmed, it is undone after SECONDS;
 * `--rollback` undoes it at once.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {dump as toYaml, load} from 'js-yaml'

import {cli} from '../helpers/cli.js'
import {makeNs, sh, skipUnlessRoot} from '../helpers/hosts.js'
import {bootHost, type SimHost} from '../helpers/realhost.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const NAMES = ['a', 'b', 'c']
const EXTRA = '10.250.0.1/32'

describe('fleet render and commit-confirm on simulated hosts (integration)', {skip: skipUnlessRoot}, () => {
  const scratch = mkdtempSync(join(tmpdir(), 'netkit-fleet-'))
  const out = join(scratch, 'out')
  const hosts = new Map<string, SimHost>()
  const h = (name: string) => hosts.get(name)!

  before(() => {
    // An underlay: a bridge in a namespace of its own, each host on it with 192.0.2.N.
    const br = makeNs('hfbr')
    sh('ip', ['-n', br, 'link', 'add', 'br0', 'type', 'bridge'])
    sh('ip', ['-n', br, 'link', 'set', 'br0', 'up'])
    NAMES.forEach((name, i) => {
      const ns = makeNs(`hf${name}`)
      sh('ip', ['-n', ns, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', br])
      sh('ip', ['-n', br, 'link', 'set', `p${i}`, 'master', 'br0', 'up'])
      sh('ip', ['-n', ns, 'addr', 'add', `192.0.2.${i + 1}/24`, 'dev', 'u0'])
      sh('ip', ['-n', ns, 'link', 'set', 'u0', 'up'])
      hosts.set(name, bootHost(ns))
    })
  })
  after(() => {
    for (const x of hosts.values()) x.stop()
    rmSync(scratch, {recursive: true, force: true})
  })

  const overlay = (name: string) => `10.99.0.${NAMES.indexOf(name) + 1}`
  const loAddrs = (name: string) =>
    h(name)
      .ipj(['-4', 'addr', 'show', 'dev', 'lo'])[0]
      .addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)

  async function pings(from: string, to: string, seconds = 20): Promise<boolean> {
    const deadline = Date.now() + seconds * 1000
    for (let i = 0; i < seconds * 3 && Date.now() < deadline; i++) {
      try {
        h(from).sh('ping', ['-c', '1', '-W', '1', overlay(to)])
        return true
      } catch {
        await sleep(250)
      }
    }
    return false
  }

  it('renders an IPsec full mesh of 3 hosts; each applies its own bundle; every pair pings over the overlay', async () => {
    const inventory = join(scratch, 'fleet.yaml')
    writeFileSync(
      inventory,
      `version: 1\ntype: ipsec\ntopology: full-mesh\npool: 10.99.0.0/24\nhosts:\n${NAMES.map((n, i) => `  ${n}: {address: 192.0.2.${i + 1}}`).join('\n')}\n`,
    )
    const r = cli(['fleet', 'render', '-i', inventory, '-o', out, '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(
      r.json.result.hosts.map((x: any) => [x.name, x.overlay]),
      NAMES.map((n) => [n, overlay(n)]),
    )
    assert.doesNotMatch(r.stdout, /0s[A-Za-z0-9+/]{43}=/, 'no key in the output')
    for (const name of NAMES) {
      // As Ansible's copy would: the bundle to the host's /etc/netkit/fleet, keys kept 0600.
      cpSync(join(out, name), join(h(name).configDir, 'fleet'), {recursive: true})
      for (const peer of NAMES.filter((p) => p !== name)) assert.equal(statSync(join(h(name).configDir, 'fleet/secrets', `${peer}.psk`)).mode & 0o777, 0o600)
    }
    for (const name of NAMES) {
      const a = h(name).cli(['apply', '-f', '/etc/netkit/fleet/host.yaml'])
      assert.equal(a.code, 0, a.stderr)
    }
    for (const from of NAMES) for (const to of NAMES) if (from !== to) assert.ok(await pings(from, to), `${from} pings ${to} over the overlay`)
    const again = h('a').cli(['diff', '-f', '/etc/netkit/fleet/host.yaml', '--json'])
    assert.equal(again.code, 0)
    assert.deepEqual(again.json.result.changes, [], 'the bundle is applied: nothing left to change')
    assert.equal(again.json.result.changed, false)
  })

  /** Host a's bundle with one more address on lo: the change the commit-confirm tests make. */
  function tryFile(): string {
    const doc = load(readFileSync(join(h('a').configDir, 'fleet/host.yaml'), 'utf8')) as {addresses: unknown[]}
    doc.addresses.push({dev: 'lo', address: EXTRA})
    writeFileSync(join(h('a').configDir, 'fleet/try.yaml'), toYaml(doc))
    return '/etc/netkit/fleet/try.yaml'
  }

  /** Runs netkit in host a inside a session of its own (a stand-in for an SSH session), and returns that session's process group. */
  function inSession(args: string[]): {pgid: number; output: () => string} {
    const run = h('a').command(args)
    const at = run.args.indexOf('--')
    const argv = run.args.slice(at + 1)
    const child = spawn(run.file, [...run.args.slice(0, at + 1), 'sh', '-c', '"$@"; echo "exit $?"; exec sleep 60', 'sh', ...argv], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: run.env,
    })
    let text = ''
    child.stdout!.on('data', (d) => (text += d))
    child.stderr!.on('data', (d) => (text += d))
    child.unref()
    return {pgid: child.pid!, output: () => text}
  }

  async function until(what: string, fn: () => boolean, seconds = 30): Promise<void> {
    const deadline = Date.now() + seconds * 1000
    for (let i = 0; i < seconds * 10 && Date.now() < deadline; i++) {
      if (fn()) return
      await sleep(100)
    }
    assert.fail(`timed out waiting for ${what}`)
  }

  const pendingFile = () => join(h('a').stateDir, 'apply-pending.json')

  it('--try --detach: the change outlives the session that started it, and stays once confirmed', async () => {
    const file = tryFile()
    const session = inSession(['apply', '-f', file, '--try', '20', '--detach'])
    await until('the detached apply to report', () => /exit \d+/.test(session.output()))
    assert.match(session.output(), /PENDING: run "netkit apply --confirm" within 20 s/)
    assert.match(session.output(), /exit 0/)
    // The SSH session closes: a hangup to its process group, then it is killed.
    process.kill(-session.pgid, 'SIGHUP')
    await sleep(300)
    try {
      process.kill(-session.pgid, 'SIGKILL')
    } catch {
      // gone already
    }
    await sleep(700)
    assert.ok(loAddrs('a').includes(EXTRA), 'the change stays after the session closed')
    const waiter = JSON.parse(readFileSync(pendingFile(), 'utf8'))
    assert.ok(
      h('a')
        .processes()
        .some((p) => p.startsWith(`${waiter.pid} `)),
      'its waiter runs',
    )
    // While it waits, it holds the host lock.
    const busy = h('a').cli(['apply', '-f', '/etc/netkit/fleet/host.yaml'])
    assert.equal(busy.code, 1)
    assert.match(busy.stderr, /another netkit command is changing this host/)

    const ok = h('a').cli(['apply', '--confirm', '--json'])
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(ok.json.result.pending, false)
    assert.equal(ok.json.result.outcome, 'confirmed')
    assert.equal(existsSync(pendingFile()), false)
    assert.ok(loAddrs('a').includes(EXTRA), 'kept')
    const twice = h('a').cli(['apply', '--confirm'])
    assert.equal(twice.code, 0, 'a second --confirm is harmless')
    assert.match(twice.stdout, /nothing to confirm/)
    assert.ok(await pings('a', 'b'), 'the mesh still carries traffic')
    // Back to the bundle (and the lock is free again).
    const back = h('a').cli(['apply', '-f', '/etc/netkit/fleet/host.yaml'])
    assert.equal(back.code, 0, back.stderr)
    assert.ok(!loAddrs('a').includes(EXTRA))
  })

  it('--try 3 --detach not confirmed: undone after 3 s; a late --confirm says so and fails', async () => {
    const file = tryFile()
    const t0 = Date.now()
    const r = h('a').cli(['apply', '-f', file, '--try', '3', '--detach', '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.json.result.pending, true)
    assert.ok(loAddrs('a').includes(EXTRA))
    await until('the change to be undone', () => !loAddrs('a').includes(EXTRA), 20)
    assert.ok(Date.now() - t0 >= 3000, 'not before its time')
    await until('the waiter to end', () => !existsSync(pendingFile()), 10)
    const late = h('a').cli(['apply', '--confirm'])
    assert.equal(late.code, 1)
    assert.match(late.stderr, /nothing to confirm: the change from \/etc\/netkit\/fleet\/try\.yaml was undone .*not confirmed in time/)
    assert.ok(await pings('a', 'c'), 'the mesh is as before')
  })

  it('--rollback undoes the pending change now; an apply with nothing to change leaves no waiter', async () => {
    const file = tryFile()
    const r = h('a').cli(['apply', '-f', file, '--try', '60', '--detach'])
    assert.equal(r.code, 0, r.stderr)
    assert.ok(loAddrs('a').includes(EXTRA))
    const t0 = Date.now()
    const rb = h('a').cli(['apply', '--rollback', '--json'])
    assert.equal(rb.code, 0, rb.stderr)
    assert.equal(rb.json.result.outcome, 'rolled back')
    assert.ok(Date.now() - t0 < 30_000)
    assert.ok(!loAddrs('a').includes(EXTRA), 'undone')
    assert.equal(existsSync(pendingFile()), false)
    const none = h('a').cli(['apply', '--rollback'])
    assert.equal(none.code, 0)
    assert.match(none.stdout, /nothing to roll back/)

    // Nothing to change: known before any waiter starts (a fleet's no-change run pays for one netkit process, not two).
    const log = join(h('a').stateDir, 'apply-detached.log')
    rmSync(log, {force: true})
    const same = h('a').cli(['apply', '-f', '/etc/netkit/fleet/host.yaml', '--try', '60', '--detach', '--json'])
    assert.equal(same.code, 0, same.stderr)
    assert.equal(same.json.result.pending, false)
    assert.deepEqual(same.json.result.changes, [])
    assert.equal(existsSync(pendingFile()), false, 'no waiter')
    assert.equal(existsSync(log), false, 'no waiter was even started (it would have opened its log)')
    assert.match(h('a').cli(['apply', '--confirm']).stdout, /nothing to confirm/)
  })
})
