#!/usr/bin/env node
/**
 * A fleet with Ansible (issue 17): the netkit_mesh role (ansible/site.yml) on
 * N simulated hosts reached by ssh (test/helpers/sshhost.ts), a WireGuard full
 * mesh. Times, from the controller: nothing to every pair pinging (the whole
 * playbook: install, keys, render, rollout, and the verify play that pings
 * every pair over the overlay), a no-change re-run, one host joining (right
 * after: ssh connections still open), another joining with every ssh connection
 * closed first (a run started later: a new connection per host); and the
 * memory per host (resident set of every process of a host, its sshd
 * included, and of its wireguard-go alone).
 * Targets on the 2-core machine: 50 hosts meshed < 120 s, re-run < 30 s, join < 30 s.
 * The hosts run the single binary, as the role installs it (bench/single-binary.mjs builds it).
 * Usage: npm run build && node bench/fleet.mjs [20,50] [--serial 100%] [--profile 12] [--strategy linear,mitogen_linear] [--node]
 * (--profile N: each run's N slowest tasks, summed over batches, and CPU: ansible-playbook's, the machine's;
 * --node: the hosts run this checkout through node instead (node bin/run.js);
 * --strategy: Ansible's strategies to run, each on a fresh world: default linear, and mitogen_linear
 * when Debian's ansible-mitogen is installed)
 */
import {spawnSync} from 'node:child_process'
import {readFileSync, readdirSync} from 'node:fs'
import {join} from 'node:path'

import {useSingleBinary} from './single-binary.mjs'

const {sshWorld} = await import('../dist/test/helpers/sshhost.js')
const {controller, explain} = await import('../dist/test/helpers/ansible.js')
const netkitUsed = useSingleBinary()

const sizes = (process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : '20,50').split(',').map(Number)
const at = process.argv.indexOf('--serial')
const serial = at > 0 ? process.argv[at + 1] : '100%'
const targets = {mesh: 120, rerun: 30, join: 30}
const pat = process.argv.indexOf('--profile')
const profileTop = pat > 0 ? Number(process.argv[pat + 1] ?? 12) : 0
// Mitogen's strategies, where the Python that runs ansible-playbook finds them (Debian: ansible-mitogen).
const ansiblePython = readFileSync(spawnSync('sh', ['-c', 'command -v ansible-playbook'], {encoding: 'utf8'}).stdout.trim(), 'utf8')
  .split('\n')[0]
  .replace(/^#!\s*/, '')
  .split(/\s+/)
const mitogenDir = spawnSync(
  ansiblePython[0],
  [...ansiblePython.slice(1), '-c', 'import os, ansible_mitogen; print(os.path.dirname(ansible_mitogen.__file__))'],
  {encoding: 'utf8'},
).stdout?.trim()
const hasMitogen = Boolean(mitogenDir)
const sat = process.argv.indexOf('--strategy')
const strategies = sat > 0 ? process.argv[sat + 1].split(',') : ['linear', ...(hasMitogen ? ['mitogen_linear'] : [])]
if (!hasMitogen && strategies.some((x) => x.startsWith('mitogen')))
  throw new Error("--strategy mitogen_*: install Debian's ansible-mitogen (apt-get install --no-install-recommends ansible-mitogen)")
if (!hasMitogen && sat < 0) console.log('(mitogen not measured: apt-get install --no-install-recommends ansible-mitogen)')

/** Resident memory (KiB) of every process in a host's PID namespace, and of its wireguard-go. */
function memory(h) {
  const proc = `/proc/${h.pid}/root/proc`
  let total = 0
  let wg = 0
  for (const p of readdirSync(proc).filter((x) => /^\d+$/.test(x))) {
    try {
      const status = readFileSync(join(proc, p, 'status'), 'utf8')
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
      total += kb
      if (/^Name:\s+wireguard-go/m.test(status)) wg += kb
    } catch {
      // gone
    }
  }
  return {total, wg}
}

/** Busy CPU seconds of the whole machine so far (every core; other helpers' work included). */
function machineCpu() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  const idle = f[3] + f[4]
  return (f.reduce((a, b) => a + b, 0) - idle) / 100
}

/** The load average of the machine (1 and 5 minutes): other work competes with the bench. */
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 2).join('/')

/** Closes the controller's ssh connections to every host (Ansible's ControlPersist masters). */
function closeConnections(ctl) {
  const dir = join(ctl.dir, 'cp')
  for (const f of readdirSync(dir)) spawnSync('ssh', ['-o', `ControlPath=${join(dir, f)}`, '-O', 'exit', 'host'], {stdio: 'ignore'})
}

/** When the hosts' results of a task came in (seconds after the task started): the first, the median, the last. */
function spread(results) {
  if (results.length < 2) return ''
  const s = results.map((r) => r.seconds).sort((a, b) => a - b)
  return ` (hosts done at ${s[0].toFixed(1)} / ${s[Math.floor(s.length / 2)].toFixed(1)} / ${s.at(-1).toFixed(1)} s)`
}

/** Runs a playbook and notes where its time went: the tasks (summed per name, a task once per batch), CPU. */
async function timed(label, ctl, inv, args) {
  const cpu0 = machineCpu()
  const load0 = load()
  const run = await ctl.playbook(inv, args, {timeoutMs: 900_000})
  const busy = machineCpu() - cpu0
  run.load = `${load0} before, ${load()} after`
  const per = new Map()
  for (const t of run.tasks) per.set(t.task, (per.get(t.task) ?? 0) + t.seconds)
  const top = [...per.entries()].sort((a, b) => b[1] - a[1]).slice(0, profileTop)
  if (profileTop > 0)
    console.log(
      [
        `  [${label}] ${run.seconds.toFixed(1)} s wall, ${run.tasks.length} task starts; CPU: ansible-playbook ${run.cpuSeconds.toFixed(1)} s, machine ${busy.toFixed(1)} s (of ${(run.seconds * 2).toFixed(0)} s on 2 cores); load ${run.load}`,
        ...top.map(
          ([t, s]) =>
            `      ${s.toFixed(1).padStart(6)} s  ${t}${spread(
              Object.values(run.results)
                .flat()
                .filter((r) => r.task === t),
            )}`,
        ),
      ].join('\n'),
    )
  return run
}

const mib = (kb) => (kb / 1024).toFixed(1)
const mark = (s, target) => `${s.toFixed(1)} s${s < target ? '' : ` (target < ${target} s: MISSED)`}`

let failed = 0
for (const n of sizes)
  for (const strategy of strategies)
    try {
      await bench(n, strategy)
    } catch (error) {
      // One strategy failing (a host that did not answer in time) does not hide the others' figures.
      failed += 1
      console.log(`fleet of ${n}, strategy ${strategy}: FAILED (load ${load()}): ${error.message}`)
    }
process.exitCode = failed ? 1 : 0

async function bench(n, strategy) {
  const names = Array.from({length: n}, (_, i) => `n${i + 1}`)
  const t0 = Date.now()
  const world = sshWorld('hf', names)
  try {
    const boot = (Date.now() - t0) / 1000
    const ctl = controller(world, {strategy, strategyPlugins: strategy.startsWith('mitogen') ? `${mitogenDir}/plugins/strategy` : undefined})
    // The hosts share /usr with the machine: every host "installs" the same shared netkit (its checksum matches: no copy).
    const inventory = (list) =>
      ctl.inventory('bench', Object.fromEntries(list.map((x) => [x, ctl.hostVars(x)])), {
        netkit_bin: ctl.netkit,
        netkit_check_timeout: 60,
        netkit_verify_timeout: 60,
        // A change must be confirmed within this: a batch's apply, checks and confirmations take
        // longer than the default 120 s with 50 hosts on a busy machine (the first hosts' waiters undid theirs).
        netkit_try_seconds: 900,
      })
    const args = ['-e', `netkit_serial=${serial}`]
    console.log(`fleet of ${n}, strategy ${strategy}: hosts booted in ${boot.toFixed(1)} s, load ${load()}; ${netkitUsed}`)
    const mesh = await timed('mesh', ctl, inventory(names), args)
    if (mesh.code !== 0) throw new Error(`the mesh of ${n} did not come up:\n${explain(mesh)}`)
    const rerun = await timed('re-run', ctl, inventory(names), args)
    if (rerun.code !== 0) throw new Error(`re-run failed:\n${explain(rerun)}`)
    const changed = Object.values(rerun.stats).reduce((s, x) => s + x.changed, 0)
    const newcomer = `n${n + 1}`
    world.add(newcomer)
    const join = await timed('join', ctl, inventory([...names, newcomer]), args)
    if (join.code !== 0) throw new Error(`join failed:\n${explain(join)}`)
    // The same with every ssh connection closed first, as for a run started minutes after the last
    // (ControlPersist keeps them only a while): each host then costs a new ssh connection.
    const second = `n${n + 2}`
    world.add(second)
    closeConnections(ctl)
    const coldJoin = await timed('join, new ssh connections', ctl, inventory([...names, newcomer, second]), args)
    if (coldJoin.code !== 0) throw new Error(`join (new connections) failed:\n${explain(coldJoin)}`)
    const mem = world.hosts.map(memory)
    const avg = (k) => mem.reduce((s, m) => s + m[k], 0) / mem.length
    console.log(
      [
        `fleet of ${n} simulated hosts, WireGuard full mesh, serial ${serial}, strategy ${strategy}:`,
        `  nothing to every pair pinging: ${mark(mesh.seconds, targets.mesh)} (load ${mesh.load})`,
        `  re-run, nothing changed:       ${mark(rerun.seconds, targets.rerun)} (changed=${changed}; load ${rerun.load})`,
        `  one host joining:              ${mark(join.seconds, targets.join)} (hosts changed: ${Object.values(join.stats).filter((x) => x.changed > 0).length}; load ${join.load})`,
        `  another, new ssh connections:  ${coldJoin.seconds.toFixed(1)} s (hosts changed: ${Object.values(coldJoin.stats).filter((x) => x.changed > 0).length}; load ${coldJoin.load})`,
        `  memory per host:               ${mib(avg('total'))} MiB resident (wireguard-go ${mib(avg('wg'))} MiB, sshd the rest)`,
      ].join('\n'),
    )
  } finally {
    world.stop()
  }
}
