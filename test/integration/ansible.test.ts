/**
 * The Ansible role (ansible/roles/netkit_mesh, through ansible/site.yml) on
 * real Ansible against simulated hosts reached by ssh (test/helpers/sshhost.ts):
 * the controller is the root namespace, each host a namespace with its own
 * sshd, /root, /run, /etc/netkit and PID 1, joined by an underlay bridge.
 * One world for the whole file; the tests run in order and build on each other.
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {chmodSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {load} from 'js-yaml'

import {bootSshWorld, changedHosts, controller, explain, skipUnlessAnsible} from '../helpers/ansible.js'
import {dump, filesUnder, skipUnlessRoot} from '../helpers/hosts.js'
import type {SshHost, SshWorld} from '../helpers/sshhost.js'
import {captureDuring} from '../helpers/topology.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A dump (hosts.ts) with each list in a fixed order: the same state read in any order compares equal. */
const sorted = (d: string) =>
  d
    .split('\n')
    .map((l) => {
      try {
        const v = JSON.parse(l)
        return Array.isArray(v) ? JSON.stringify(v.map((x) => JSON.stringify(x)).sort()) : l
      } catch {
        return l
      }
    })
    .join('\n')

describe('the netkit_mesh Ansible role on simulated hosts (integration)', {skip: skipUnlessRoot || skipUnlessAnsible}, () => {
  let world: SshWorld
  let ctl: ReturnType<typeof controller>
  const host = (name: string): SshHost => {
    const h = world.hosts.find((x) => x.name === name)
    if (!h) throw new Error(`no host ${name}`)
    return h
  }
  /** The inventory: these hosts (name -> extra host vars), a WireGuard full mesh unless `vars` says otherwise. */
  const inventory = (hosts: Record<string, Record<string, unknown>>, vars: Record<string, unknown> = {}) =>
    ctl.inventory('mesh', Object.fromEntries(Object.entries(hosts).map(([n, v]) => [n, ctl.hostVars(n, v)])), {
      netkit_bin: '/root/bin/netkit',
      netkit_try_seconds: 60,
      netkit_check_timeout: 20,
      ...vars,
    })
  const fleetDir = () => join(ctl.dir, 'fleet-mesh')
  /** The names of the peers on a host's WireGuard interface, by their public keys in pubkeys.yaml. */
  const wgPeers = (name: string): string[] => {
    const keys = load(readFileSync(join(fleetDir(), 'pubkeys.yaml'), 'utf8')) as Record<string, string>
    const byKey = new Map(Object.entries(keys).map(([n, k]) => [k, n]))
    return host(name)
      .sh('wg', ['show', 'wg-mesh', 'peers'])
      .split('\n')
      .filter(Boolean)
      .map((k) => byKey.get(k) ?? k)
      .sort()
  }
  const pendingFile = (name: string) => join(host(name).stateDir, 'apply-pending.json')
  async function until(what: string, fn: () => boolean, seconds: number): Promise<void> {
    const deadline = Date.now() + seconds * 1000
    for (let i = 0; i < seconds * 5 && Date.now() < deadline; i++) {
      if (fn()) return
      await sleep(200)
    }
    assert.fail(`timed out waiting for ${what}`)
  }

  before(() => {
    world = bootSshWorld('ha', ['a', 'b', 'c'])
    ctl = controller(world)
  })
  after(() => world?.stop())

  it('builds a WireGuard full mesh: binary installed, keys gathered into pubkeys.yaml, every pair pings, only ciphertext on the underlay', async () => {
    // Two batches: a and b, then c (which checks it reaches them before it confirms).
    const run = await ctl.playbook(inventory({a: {}, b: {}, c: {}}), ['-e', 'netkit_serial=2'])
    assert.equal(run.code, 0, explain(run))
    // One task applies each host's bundle (one round trip), and no other apply task is even skipped
    // there (a skipped task still costs Ansible a worker per host).
    for (const n of ['a', 'b', 'c']) {
      const applied = run.results[n].filter((r) => r.task.includes('Apply the bundle')).map((r) => `${r.task}${r.skipped ? ' (skipped)' : ''}`)
      assert.deepEqual(applied, ['netkit_mesh : Apply the bundle, undone by itself unless confirmed (netkit apply --try --detach)'], n)
      // The script started netkit's waiter itself (no starting netkit in between): its report, one line of JSON, is the task's output.
      const out = run.results[n].find((r) => r.task.includes('Apply the bundle'))?.stdout ?? ''
      const report = JSON.parse(out.trim())
      assert.equal(out.trim().split('\n').length, 1, out)
      assert.equal(report.pending, true, out)
      assert.equal(report.log, join('/run/netkit', 'apply-detached.log'), out)
      assert.equal(report.ok, undefined, `not the starter's JSON envelope: ${out}`)
    }
    for (const n of ['a', 'b', 'c']) {
      assert.ok(existsSync(join(host(n).home, 'bin/netkit')), `netkit installed on ${n}`)
      assert.deepEqual(
        wgPeers(n),
        ['a', 'b', 'c'].filter((p) => p !== n),
        `${n} has the two others as peers`,
      )
    }
    // pubkeys.yaml: each host's own public key; no private key ever reached the controller.
    const keys = load(readFileSync(join(fleetDir(), 'pubkeys.yaml'), 'utf8')) as Record<string, string>
    for (const n of ['a', 'b', 'c']) assert.equal(keys[n], host(n).cli(['tunnel', 'pubkey', 'mesh']).stdout.trim())
    const privates = ['a', 'b', 'c'].map((n) => readFileSync(join(host(n).configDir, 'secrets/mesh.key'), 'utf8').trim())
    for (const f of filesUnder(ctl.dir)) for (const k of privates) assert.ok(!readFileSync(f, 'utf8').includes(k), `no private key in ${f}`)
    // Every host was verified (doctor and pings): a and b (the first batch) by the verify play; c, of
    // the last batch, right after its confirmation, so the verify play skipped it.
    const verifyTask = (n: string) => run.results[n].find((r) => /Every pair pings/.test(r.task))
    for (const n of ['a', 'b']) assert.ok(verifyTask(n) && !verifyTask(n)?.skipped && !verifyTask(n)?.failed, `verified on ${n}: ${explain(run)}`)
    const kept = run.results.c.find((r) => /Keep the change/.test(r.task))
    // c's check reached a and b just before its confirmation: its verification does not ping them again.
    assert.match(
      kept?.stdout ?? '',
      /^c reaches its 2 peers over the overlay \(2 of them in its check, before the confirmation\); netkit doctor passes$/m,
      explain(run),
    )
    assert.match(kept?.stdout ?? '', /^netkit: verified$/m, explain(run))
    // Confirmed without a netkit process: the answer given to the waiter the apply started, which ran the doctor's checks.
    assert.match(kept?.stdout ?? '', /^c: change confirmed \(its waiter told, pid \d+\)$/m, explain(run))
    assert.match(readFileSync(join(host('c').stateDir, 'apply-detached.log'), 'utf8'), /^netkit doctor \(asked with the confirmation\): 0 failed/m)
    assert.ok(verifyTask('c')?.skipped, `c not verified twice: ${explain(run)}`)

    const overlay = load(readFileSync(join(fleetDir(), 'out/overlay.yaml'), 'utf8')) as {hosts: Record<string, string>}
    const addrs = Object.values(overlay.hosts)
    assert.deepEqual(Object.keys(overlay.hosts).sort(), ['a', 'b', 'c'])
    const cap = await captureDuring(world.underlay, 'br0', addrs, async () => {
      for (const to of addrs) host('a').sh('ping', ['-c', '2', '-i', '0.2', '-W', '1', to])
    })
    assert.deepEqual(cap.clear, [], 'no overlay address crosses the underlay in clear')
    assert.ok(
      cap.lines.some((l) => /192\.0\.2\.\d+\.51820 > 192\.0\.2\.\d+\.51820: UDP/.test(l)),
      `WireGuard on the wire:\n${cap.lines.slice(0, 5).join('\n')}`,
    )
  })

  it('a re-run with nothing changed reports changed=0 on every host', async () => {
    const run = await ctl.playbook(inventory({a: {}, b: {}, c: {}}), ['-e', 'netkit_serial=100%'])
    assert.equal(run.code, 0, explain(run))
    assert.deepEqual(changedHosts(run), [], `changed tasks: ${JSON.stringify(Object.fromEntries(['a', 'b', 'c'].map((h) => [h, run.changedTasks(h)])))}`)
    // No host needs setting up: that play is skipped quietly (no "Could not match supplied host pattern").
    assert.doesNotMatch(`${run.stdout}\n${run.stderr}`, /Could not match supplied host pattern/)
  })

  it("a host's netkit rewritten in place (same file, same size) is found and installed again; the others are not touched", async () => {
    // The read keeps each binary's checksum with its inode, size and change time (the re-run above
    // used it): a rewrite in place keeps the inode and the size, and moves only the change time.
    const bin = join(host('a').home, 'bin/netkit')
    const memo = join(host('a').configDir, 'fleet/.netkit-binary.sha1')
    const good = readFileSync(bin, 'utf8')
    assert.match(readFileSync(memo, 'utf8'), new RegExp(` ${createHash('sha1').update(good).digest('hex')}\\n$`), 'the checksum is kept on the host')
    const inode = statSync(bin).ino
    writeFileSync(bin, `${good.slice(0, -1)} `)
    assert.equal(statSync(bin).ino, inode)
    assert.equal(statSync(bin).size, Buffer.byteLength(good))
    const run = await ctl.playbook(inventory({a: {}, b: {}, c: {}}), ['-e', 'netkit_serial=100%'])
    assert.equal(run.code, 0, explain(run))
    assert.deepEqual(run.changedTasks('a'), ['netkit_mesh : Install the netkit binary (copied only when it differs)'], explain(run))
    assert.deepEqual(changedHosts(run), ['a'], explain(run))
    assert.equal(readFileSync(bin, 'utf8'), good, "a's netkit is the controller's again")
  })

  it('pubkeys.yaml is the reference: a host reporting another key, or one with none that did not answer, stops the run before anything changes', async () => {
    const file = join(fleetDir(), 'pubkeys.yaml')
    const good = readFileSync(file, 'utf8')
    const keys = load(good) as Record<string, string>
    try {
      // a's stored key replaced by b's (a real key, not a's): a now reports another key than the stored one.
      writeFileSync(file, good.replace(`a: ${keys.a}`, `a: ${keys.b}`))
      let run = await ctl.playbook(inventory({a: {}, b: {}, c: {}}), ['-e', 'netkit_serial=100%'])
      assert.notEqual(run.code, 0, explain(run))
      assert.match(explain(run), /these hosts report a public key other than the one in \S*pubkeys\.yaml: a \(/, explain(run))
      assert.deepEqual(changedHosts(run), [], 'nothing changed')
      // c's key not stored, and c not in this run (--limit): its key is nowhere, and the mesh is never built without it.
      writeFileSync(file, good.replace(`c: ${keys.c}\n`, ''))
      run = await ctl.playbook(inventory({a: {}, b: {}, c: {}}), ['-e', 'netkit_serial=100%', '--limit', 'a,b'])
      assert.notEqual(run.code, 0, explain(run))
      assert.match(explain(run), /no public key for c: not in \S*pubkeys\.yaml and did not answer this run/, explain(run))
      assert.deepEqual(changedHosts(run), [], 'nothing changed')
    } finally {
      writeFileSync(file, good)
    }
  })

  it('the verification fails a host whose doctor fails, naming the failed check; the others pass', async () => {
    const key = join(host('a').configDir, 'secrets/mesh.key')
    chmodSync(key, 0o644)
    try {
      const run = await ctl.playbook(inventory({a: {}, b: {}, c: {}}), ['-e', 'netkit_serial=100%', '-e', 'netkit_verify_always=true'])
      assert.notEqual(run.code, 0, explain(run))
      const verify = (n: string) => run.results[n].find((r) => /Every pair pings/.test(r.task))
      assert.ok(verify('a')?.failed, explain(run))
      assert.match(verify('a')?.stdout ?? '', /^a: netkit doctor failed: .*wireguard\.keys/, explain(run))
      for (const n of ['b', 'c']) assert.ok(verify(n) && !verify(n)?.failed, `${n} passes: ${explain(run)}`)
      assert.deepEqual(changedHosts(run), [], 'nothing changed')
    } finally {
      chmodSync(key, 0o600)
    }
  })

  it('a change whose doctor then fails is kept (the waiter that keeps it runs the doctor); the host is named, failing only its verification', async () => {
    const key = join(host('a').configDir, 'secrets/mesh.key')
    const keepalive = (n: string) => host(n).sh('wg', ['show', 'wg-mesh', 'persistent-keepalive'])
    try {
      // A keepalive for every peer: a change on every host, confirmed in one batch, whose task then verifies each host.
      // a's own check (run after its apply, before its confirmation) leaves its private key readable by others, which
      // the apply would have refused: the doctor's check of the key fails there, after the confirmation.
      const run = await ctl.playbook(
        inventory({a: {netkit_check_command: `chmod 644 ${'/etc/netkit/secrets/mesh.key'}`}, b: {}, c: {}}, {netkit_keepalive: 25}),
        ['-e', 'netkit_serial=100%'],
      )
      assert.notEqual(run.code, 0, explain(run))
      const task = (n: string, re: RegExp) => run.results[n].find((r) => re.test(r.task))
      for (const n of ['a', 'b', 'c']) {
        const kept = task(n, /Keep the change/)
        assert.ok(kept && !kept.failed && !kept.skipped, `${n} confirmed: ${explain(run)}`)
        assert.match(keepalive(n), /\t25$/m, `${n} keeps the change`)
        assert.ok(!existsSync(pendingFile(n)), `nothing pending on ${n}`)
      }
      // a's doctor ran with its confirmation (by its waiter, told "confirm doctor"): the failed check is named there, and a is not marked verified.
      assert.match(task('a', /Keep the change/)?.stdout ?? '', /^a: netkit doctor failed: .*wireguard\.keys/m, explain(run))
      assert.doesNotMatch(task('a', /Keep the change/)?.stdout ?? '', /^netkit: verified$/m)
      // So the verify play verifies a again and fails it, naming the check; b and c verified themselves.
      assert.match(task('a', /Every pair pings/)?.stdout ?? '', /^a: netkit doctor failed: .*wireguard\.keys/, explain(run))
      assert.ok(task('a', /Every pair pings/)?.failed, explain(run))
      for (const n of ['b', 'c']) {
        assert.match(task(n, /Keep the change/)?.stdout ?? '', /^netkit: verified$/m, explain(run))
        assert.ok(task(n, /Every pair pings/)?.skipped, `${n} is not verified twice: ${explain(run)}`)
      }
    } finally {
      chmodSync(key, 0o600)
      const back = await ctl.playbook(inventory({a: {}, b: {}, c: {}}), ['-e', 'netkit_serial=100%'])
      assert.equal(back.code, 0, explain(back))
    }
    for (const n of ['a', 'b', 'c']) assert.doesNotMatch(keepalive(n), /\t25$/m, `${n} has no keepalive again`)
  })

  it('a change not confirmed (--skip-tags netkit_confirm) is undone on every host by itself', async () => {
    const before = Object.fromEntries(['a', 'b', 'c'].map((n) => [n, dump(host(n).ns)]))
    const keepalive = (n: string) =>
      host(n)
        .sh('wg', ['show', 'wg-mesh', 'persistent-keepalive'])
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t')[1])
    const run = await ctl.playbook(inventory({a: {}, b: {}, c: {}}, {netkit_keepalive: 25, netkit_try_seconds: 5}), [
      '--skip-tags',
      'netkit_check,netkit_confirm,netkit_verify',
      '-e',
      'netkit_serial=100%',
    ])
    assert.equal(run.code, 0, explain(run))
    assert.deepEqual(changedHosts(run), ['a', 'b', 'c'])
    for (const n of ['a', 'b', 'c']) await until(`${n}'s waiter to undo its change`, () => !existsSync(pendingFile(n)), 40)
    for (const n of ['a', 'b', 'c']) {
      assert.deepEqual(keepalive(n), ['off', 'off'], `${n}'s peers are back to no keepalive`)
      assert.equal(dump(host(n).ns), before[n], `${n} is as before`)
    }
    // The keepalives made both ends of every pair start a handshake at the same moment: such pairs can
    // go on retrying together (both responders) for tens of seconds. The next test starts from pairs
    // that answer: each pair pinged from one end until it does.
    const overlay = (load(readFileSync(join(fleetDir(), 'out/overlay.yaml'), 'utf8')) as {hosts: Record<string, string>}).hosts
    for (const [x, y] of [
      ['b', 'a'],
      ['c', 'a'],
      ['c', 'b'],
    ])
      await until(
        `${x} to reach ${y} over the overlay`,
        () => spawnSync('ip', ['netns', 'exec', host(x).ns, 'ping', '-c', '1', '-W', '1', overlay[y]]).status === 0,
        90,
      )
  })

  it('a host that stops answering mid-rollout stops the rollout: earlier batches confirmed, it undoes its own change, later hosts untouched', async () => {
    world.add('d')
    const before = Object.fromEntries(['b', 'c', 'd'].map((n) => [n, dump(host(n).ns)]))
    // b's own check cuts its management link: the controller loses it between apply and confirm. Its try
    // window leaves its check time for a first WireGuard handshake on a loaded machine (8 s once did not).
    const inv = inventory({a: {}, b: {netkit_check_command: 'ip link set m0 down'}, c: {}, d: {}}, {netkit_try_seconds: 15})
    try {
      const run = await ctl.playbook(inv, ['-e', 'netkit_serial=1'])
      assert.notEqual(run.code, 0, explain(run))
      assert.equal(run.stats.b?.unreachable, 1, explain(run))
      assert.deepEqual(wgPeers('a'), ['b', 'c', 'd'], 'a (the first batch) is confirmed with d')
      assert.ok(!existsSync(pendingFile('a')), 'nothing pending on a')
      for (const n of ['c', 'd']) assert.ok(!run.results[n].some((r) => /Apply|Copy this host/.test(r.task)), `the rollout never reached ${n}`)
      await until('b to undo its change by itself', () => !existsSync(pendingFile('b')), 40)
      host('b').setManagement(true)
      await until("b's management link to be up", () => host('b').ipj(['link', 'show', 'm0'])[0]?.operstate === 'UP', 10)
      // (b's management link went down and up: its routes are listed in another order, not changed.)
      for (const n of ['b', 'c', 'd']) assert.equal(sorted(dump(host(n).ns)), sorted(before[n]), `${n} is as before`)
    } finally {
      host('b').setManagement(true)
    }
  })

  it('the fourth host joins: only it and the peers that lacked it change, their sessions kept', async () => {
    const wgPid = (n: string) =>
      host(n)
        .processes()
        .find((p) => p.endsWith(' wireguard-go'))
    const pids = Object.fromEntries(['a', 'b', 'c'].map((n) => [n, wgPid(n)]))
    const run = await ctl.playbook(inventory({a: {}, b: {}, c: {}, d: {}}), ['-e', 'netkit_serial=100%'])
    assert.equal(run.code, 0, explain(run))
    assert.deepEqual(changedHosts(run), ['b', 'c', 'd'], 'a has d already (confirmed in the stopped rollout)')
    for (const n of ['a', 'b', 'c', 'd'])
      assert.deepEqual(
        wgPeers(n),
        ['a', 'b', 'c', 'd'].filter((p) => p !== n),
      )
    for (const n of ['a', 'b', 'c']) assert.equal(wgPid(n), pids[n], `${n}'s data path was not restarted`)
    // One batch: the changed hosts verified themselves right after their confirmation; the verify play
    // verified only a (unchanged, its peers changed).
    const verified = (n: string) => /^netkit: verified$/m.test(run.results[n].find((r) => /Keep the change/.test(r.task))?.stdout ?? '')
    const verifyRan = (n: string) => run.results[n].some((r) => /Every pair pings/.test(r.task) && !r.skipped && !r.failed)
    assert.deepEqual(
      ['a', 'b', 'c', 'd'].map((n) => [n, verified(n), verifyRan(n)]),
      [
        ['a', false, true],
        ['b', true, false],
        ['c', true, false],
        ['d', true, false],
      ],
      explain(run),
    )
  })

  it('a host marked netkit_state: absent leaves: its tunnel is removed, every peer drops it', async () => {
    const run = await ctl.playbook(inventory({a: {}, b: {}, c: {netkit_state: 'absent'}, d: {}}), ['-e', 'netkit_serial=100%'])
    assert.equal(run.code, 0, explain(run))
    for (const n of ['a', 'b', 'd'])
      assert.deepEqual(
        wgPeers(n),
        ['a', 'b', 'd'].filter((p) => p !== n),
      )
    assert.equal(
      host('c')
        .ipj(['link', 'show'])
        .filter((l: any) => l.ifname === 'wg-mesh').length,
      0,
      'c has no tunnel',
    )
    assert.deepEqual(
      host('c')
        .processes()
        .filter((p) => p.endsWith('wireguard-go')),
      [],
    )
    const keys = load(readFileSync(join(fleetDir(), 'pubkeys.yaml'), 'utf8')) as Record<string, string>
    assert.deepEqual(Object.keys(keys).sort(), ['a', 'b', 'd'])
    assert.ok(!readdirSync(join(fleetDir(), 'out')).includes('c'), 'no bundle for c')
  })

  it("a host whose apply netkit refuses fails, naming netkit's reason; the rollout stops and nothing changes", async () => {
    const peers = wgPeers('a')
    const run = await ctl.playbook(inventory({a: {netkit_try_seconds: 0}, b: {}, c: {netkit_state: 'absent'}, d: {}}), ['-e', 'netkit_serial=100%'])
    assert.notEqual(run.code, 0, explain(run))
    const said = run.results.a.map((r) => r.msg ?? '').join('\n')
    assert.match(said, /netkit rollout failed on a at "Apply the bundle[^"]*":[^]*--try 0 is out of range[^]*Nothing was changed on it/, explain(run))
    assert.deepEqual(changedHosts(run), [], explain(run))
    assert.ok(
      run.results.b.every((r) => !/Check|Keep the change/.test(r.task)),
      `the rollout stopped at the apply: ${explain(run)}`,
    )
    assert.deepEqual(wgPeers('a'), peers, "a's mesh as it was")
  })
})
