/**
 * The netkit_mesh Ansible role with netkit_type: ipsec, on real Ansible against
 * simulated hosts reached by ssh (test/helpers/sshhost.ts): one pre-shared key
 * per pair made on the controller, one IPsec tunnel per peer on each host, its
 * own charon (kernel-libipsec here: ESP in UDP 4500). One world for the whole
 * file; the tests run in order and build on each other.
 */
import assert from 'node:assert/strict'
import {readFileSync, readdirSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {load} from 'js-yaml'

import {bootSshWorld, changedHosts, controller, explain, type PlaybookRun, skipUnlessAnsible} from '../helpers/ansible.js'
import {skipUnlessRoot} from '../helpers/hosts.js'
import type {SshHost, SshWorld} from '../helpers/sshhost.js'
import {captureDuring} from '../helpers/topology.js'

const NAMES = ['a', 'b', 'c']
/** An address inside a's subnet (netkit_subnets), on a's lo: the mesh carries it too. */
const SUBNET_ADDR = '10.1.0.1'

describe('the netkit_mesh Ansible role builds an IPsec mesh on simulated hosts (integration)', {skip: skipUnlessRoot || skipUnlessAnsible}, () => {
  let world: SshWorld
  let ctl: ReturnType<typeof controller>
  let first: PlaybookRun
  const host = (name: string): SshHost => {
    const h = world.hosts.find((x) => x.name === name)
    if (!h) throw new Error(`no host ${name}`)
    return h
  }
  /** An IPsec full mesh of these hosts (name -> extra host vars); a carries the subnet 10.1.0.0/24. */
  const inventory = (hosts: Record<string, Record<string, unknown>>) =>
    ctl.inventory('mesh', Object.fromEntries(Object.entries(hosts).map(([n, v]) => [n, ctl.hostVars(n, v)])), {
      netkit_type: 'ipsec',
      netkit_bin: '/root/bin/netkit',
      netkit_try_seconds: 120, // the role's default: a loaded machine confirms late
      // The last host of a rollout answers peers that started before it came up: it is reached within
      // seconds (netkit's charon asks a silent peer again every 5 s), not after IKE's growing waits.
      netkit_check_timeout: 15,
    })
  const fleetDir = () => join(ctl.dir, 'fleet-mesh')
  const a = {netkit_subnets: ['10.1.0.0/24']}
  const overlayOf = (): Record<string, string> => (load(readFileSync(join(fleetDir(), 'out/overlay.yaml'), 'utf8')) as {hosts: Record<string, string>}).hosts
  /** Every PSK the controller made (each pair's key, as in the bundles). */
  const psks = (): string[] => {
    const out = new Set<string>()
    for (const n of readdirSync(join(fleetDir(), 'out')))
      try {
        for (const f of readdirSync(join(fleetDir(), 'out', n, 'secrets'))) out.add(readFileSync(join(fleetDir(), 'out', n, 'secrets', f), 'utf8').trim())
      } catch {
        // overlay.yaml, or a host with no secrets folder
      }
    return [...out]
  }
  /** The names of the IPsec tunnels netkit has on a host. */
  const tunnels = (name: string): string[] => {
    const r = host(name).cli(['tunnel', 'list', '--json'])
    assert.equal(r.code, 0, r.stderr)
    return (r.json.result as Array<{name: string; type: string}>)
      .filter((t) => t.type === 'ipsec')
      .map((t) => t.name)
      .sort()
  }
  const secretsOn = (name: string) => readdirSync(join(host(name).configDir, 'fleet/secrets')).sort()
  /** One ping from `from` (sourced from its overlay address, as the role's verify does), bounded. */
  const ping = (from: string, to: string, source: string) => {
    try {
      host(from).sh('ping', ['-c', '1', '-W', '2', '-I', source, to])
      return true
    } catch {
      return false
    }
  }

  before(() => {
    world = bootSshWorld('hi', NAMES)
    ctl = controller(world)
    // A machine on a's subnet, as far as the mesh can tell.
    host('a').sh('ip', ['addr', 'add', `${SUBNET_ADDR}/32`, 'dev', 'lo'])
  })
  after(() => world?.stop())

  it('builds an IPsec full mesh: every pair pings over the overlay and to the subnets, only ESP and IKE on the underlay', async () => {
    // Very verbose (-vvv prints every command Ansible runs on a host, its ssh command line included)
    // and with --diff, as a user debugging a run would: still no key in the output (test 2).
    first = await ctl.playbook(inventory({a, b: {}, c: {}}), ['-e', 'netkit_serial=2', '-vvv', '--diff'])
    assert.equal(first.code, 0, explain(first))
    // Bundles with keys go by the same one task as any other (the script on the shell's stdin).
    for (const n of NAMES) {
      const applied = first.results[n].filter((r) => r.task.includes('Apply the bundle')).map((r) => `${r.task}${r.skipped ? ' (skipped)' : ''}`)
      assert.deepEqual(applied, ['netkit_mesh : Apply the bundle, undone by itself unless confirmed (netkit apply --try --detach)'], n)
    }
    assert.match(first.stdout, /EXEC .*\/bin\/sh -s -- /, 'the output shows the command lines the apply ran on the hosts')
    for (const n of NAMES) {
      assert.deepEqual(
        tunnels(n),
        NAMES.filter((p) => p !== n),
        `${n} has one IPsec tunnel per peer`,
      )
      assert.ok(
        first.results[n].some((r) => /Every pair pings/.test(r.task) && !r.failed),
        `verified on ${n}`,
      )
    }
    const overlay = overlayOf()
    assert.deepEqual(Object.keys(overlay).sort(), NAMES)
    for (const from of NAMES)
      for (const to of NAMES) if (from !== to) assert.ok(ping(from, overlay[to], overlay[from]), `${from} pings ${to} (${overlay[to]}) over the overlay`)
    for (const from of ['b', 'c']) assert.ok(ping(from, SUBNET_ADDR, overlay[from]), `${from} reaches a's subnet`)

    const cap = await captureDuring(world.underlay, 'br0', [...Object.values(overlay), SUBNET_ADDR], async () => {
      for (const to of ['b', 'c']) host('a').sh('ping', ['-c', '2', '-i', '0.2', '-W', '1', '-I', overlay.a, overlay[to]])
      host('b').sh('ping', ['-c', '2', '-i', '0.2', '-W', '1', '-I', overlay.b, SUBNET_ADDR])
    })
    assert.deepEqual(cap.clear, [], 'no overlay or subnet address crosses the underlay in clear')
    const ikeOrEsp = /^\S+ IP 192\.0\.2\.\d+\.(4500|500) > 192\.0\.2\.\d+\.(4500|500): /
    assert.deepEqual(
      cap.lines.filter((l) => !ikeOrEsp.test(l)),
      [],
      'only IKE and ESP-in-UDP between the hosts',
    )
    assert.ok(cap.lines.filter((l) => /UDP-encap: ESP/.test(l)).length >= 12, `the pings went as ESP:\n${cap.lines.slice(0, 8).join('\n')}`)
  })

  it("each host holds only its own pairs' keys, 0600; no key in Ansible's output nor in any netkit --json it registered", () => {
    const keys = psks()
    assert.equal(keys.length, 3, 'one key per pair')
    for (const n of NAMES) {
      const peers = NAMES.filter((p) => p !== n)
      assert.deepEqual(
        secretsOn(n),
        peers.map((p) => `${p}.psk`),
        `${n} has the keys of its pairs only`,
      )
      assert.equal(statSync(join(host(n).configDir, 'fleet/secrets')).mode & 0o777, 0o700)
      for (const p of peers) {
        const file = join(host(n).configDir, 'fleet/secrets', `${p}.psk`)
        assert.equal(statSync(file).mode & 0o777, 0o600, `${file} is 0600`)
        assert.equal(readFileSync(file, 'utf8'), readFileSync(join(host(p).configDir, 'fleet/secrets', `${n}.psk`), 'utf8'), `${n} and ${p} hold one key`)
      }
    }
    // The keys reach a host inside its apply script, on the standard input of its shell: nothing of
    // it may stay in /root (Ansible's temporary folder; the key itself, or the file's content in
    // base64 as the script carries it).
    const filesUnder = (dir: string): string[] =>
      readdirSync(dir, {withFileTypes: true}).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]))
    for (const n of NAMES)
      for (const f of filesUnder(host(n).home)) {
        const text = readFileSync(f, 'utf8')
        for (const k of keys) assert.ok(!text.includes(k) && !text.includes(Buffer.from(k).toString('base64').slice(0, 40)), `no key left in ${f}`)
      }
    const scripts = readdirSync(join(fleetDir(), 'apply')).map((f) => readFileSync(join(fleetDir(), 'apply', f), 'utf8'))
    assert.ok(
      keys.every((k) => scripts.some((t) => t.includes(Buffer.from(k).toString('base64').slice(0, 40)))),
      'the apply scripts carry the keys in base64 (what the scan above looks for)',
    )
    for (const f of readdirSync(join(fleetDir(), 'apply')))
      assert.equal(statSync(join(fleetDir(), 'apply', f)).mode & 0o777, 0o600, `the controller's apply script ${f} (it holds keys) is 0600`)
    const said = [first.stdout, first.stderr, ...Object.values(first.results).flatMap((rs) => rs.map((r) => `${r.msg ?? ''}\n${r.stdout ?? ''}`))].join('\n')
    assert.ok(said.includes('"result"'), 'the output holds netkit --json results (the test reads what the role registered)')
    assert.match(first.stdout, /\+\+\+ after/, 'the output holds --diff diffs (of files the role wrote)')
    for (const k of keys) {
      assert.ok(!said.includes(k), 'no PSK in the playbook output')
      assert.ok(!said.includes(k.slice(2)), 'no PSK (base64) in the playbook output')
      assert.ok(
        !said.includes(Buffer.from(k).toString('base64').slice(0, 40)),
        'no key file as the apply script carries it (base64) in the output or on a command line',
      )
    }
  })

  it('a re-run with nothing changed reports changed=0 on every host', async () => {
    const run = await ctl.playbook(inventory({a, b: {}, c: {}}), ['-e', 'netkit_serial=100%'])
    assert.equal(run.code, 0, explain(run))
    assert.deepEqual(changedHosts(run), [], `changed tasks: ${JSON.stringify(Object.fromEntries(NAMES.map((h) => [h, run.changedTasks(h)])))}`)
  })

  it('a host marked netkit_state: absent leaves: its tunnels and keys are removed, every peer drops it', async () => {
    const run = await ctl.playbook(inventory({a, b: {}, c: {netkit_state: 'absent'}}), ['-e', 'netkit_serial=100%'])
    assert.equal(run.code, 0, explain(run))
    assert.deepEqual(tunnels('a'), ['b'])
    assert.deepEqual(tunnels('b'), ['a'])
    assert.deepEqual(tunnels('c'), [], 'c has no tunnel')
    for (const n of ['a', 'b']) assert.ok(!secretsOn(n).includes('c.psk'), `${n} no longer holds the key of its pair with c`)
    const overlay = overlayOf()
    assert.deepEqual(Object.keys(overlay).sort(), ['a', 'b'])
    assert.ok(ping('a', overlay.b, overlay.a), 'a and b still pair')
    assert.ok(!readdirSync(join(fleetDir(), 'out')).includes('c'), 'no bundle for c')
  })
})
