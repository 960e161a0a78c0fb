#!/usr/bin/env node
/**
 * A fleet with Ansible (issue 17): the netkit_mesh role (ansible/site.yml) on
 * N simulated hosts reached by ssh (test/helpers/sshhost.ts), a WireGuard full
 * mesh. Times, from the controller: nothing to every pair pinging (the whole
 * playbook: install, keys, render, rollout, and the verify play that pings
 * every pair over the overlay), a no-change re-run, one host joining; and the
 * memory per host (resident set of every process of a host, its sshd
 * included, and of its wireguard-go alone).
 * Targets on the 2-core machine: 50 hosts meshed < 120 s, re-run < 30 s, join < 30 s.
 * Usage: npm run build && node bench/fleet.mjs [20,50] [--serial 100%] [--profile 12]
 * (--profile N: each run's N slowest tasks, summed over batches, and CPU: ansible-playbook's, the machine's)
 */
import {readFileSync, readdirSync} from 'node:fs'
import {join} from 'node:path'

const {sshWorld} = await import('../dist/test/helpers/sshhost.js')
const {controller, explain} = await import('../dist/test/helpers/ansible.js')

const sizes = (process.argv[2] ?? '20,50').split(',').map(Number)
const at = process.argv.indexOf('--serial')
const serial = at > 0 ? process.argv[at + 1] : '100%'
const targets = {mesh: 120, rerun: 30, join: 30}
const pat = process.argv.indexOf('--profile')
const profileTop = pat > 0 ? Number(process.argv[pat + 1] ?? 12) : 0

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

/** Runs a playbook and notes where its time went: the tasks (summed per name, a task once per batch), CPU. */
async function timed(label, ctl, inv, args) {
  const cpu0 = machineCpu()
  const run = await ctl.playbook(inv, args, {timeoutMs: 900_000})
  const busy = machineCpu() - cpu0
  const per = new Map()
  for (const t of run.tasks) per.set(t.task, (per.get(t.task) ?? 0) + t.seconds)
  const top = [...per.entries()].sort((a, b) => b[1] - a[1]).slice(0, profileTop)
  if (profileTop > 0)
    console.log(
      [
        `  [${label}] ${run.seconds.toFixed(1)} s wall, ${run.tasks.length} task starts; CPU: ansible-playbook ${run.cpuSeconds.toFixed(1)} s, machine ${busy.toFixed(1)} s (of ${(run.seconds * 2).toFixed(0)} s on 2 cores)`,
        ...top.map(([t, s]) => `      ${s.toFixed(1).padStart(6)} s  ${t}`),
      ].join('\n'),
    )
  return run
}

const mib = (kb) => (kb / 1024).toFixed(1)
const mark = (s, target) => `${s.toFixed(1)} s${s < target ? '' : ` (target < ${target} s: MISSED)`}`

for (const n of sizes) {
  const names = Array.from({length: n}, (_, i) => `n${i + 1}`)
  const t0 = Date.now()
  const world = sshWorld('hb', names)
  try {
    const boot = (Date.now() - t0) / 1000
    const ctl = controller(world)
    // The hosts share /usr with the machine: every host "installs" the same shared netkit (its checksum matches: no copy).
    const inventory = (list) =>
      ctl.inventory('bench', Object.fromEntries(list.map((x) => [x, ctl.hostVars(x)])), {
        netkit_bin: ctl.netkit,
        netkit_check_timeout: 60,
        netkit_verify_timeout: 60,
      })
    const args = ['-e', `netkit_serial=${serial}`]
    const mesh = await timed('mesh', ctl, inventory(names), args)
    if (mesh.code !== 0) throw new Error(`the mesh of ${n} did not come up:\n${explain(mesh)}`)
    const rerun = await timed('re-run', ctl, inventory(names), args)
    if (rerun.code !== 0) throw new Error(`re-run failed:\n${explain(rerun)}`)
    const changed = Object.values(rerun.stats).reduce((s, x) => s + x.changed, 0)
    const newcomer = `n${n + 1}`
    world.add(newcomer)
    const join = await timed('join', ctl, inventory([...names, newcomer]), args)
    if (join.code !== 0) throw new Error(`join failed:\n${explain(join)}`)
    const mem = world.hosts.map(memory)
    const avg = (k) => mem.reduce((s, m) => s + m[k], 0) / mem.length
    console.log(
      [
        `fleet of ${n} simulated hosts, WireGuard full mesh, serial ${serial} (hosts booted in ${boot.toFixed(1)} s):`,
        `  nothing to every pair pinging: ${mark(mesh.seconds, targets.mesh)}`,
        `  re-run, nothing changed:       ${mark(rerun.seconds, targets.rerun)} (changed=${changed})`,
        `  one host joining:              ${mark(join.seconds, targets.join)} (hosts changed: ${Object.values(join.stats).filter((x) => x.changed > 0).length})`,
        `  memory per host:               ${mib(avg('total'))} MiB resident (wireguard-go ${mib(avg('wg'))} MiB, sshd the rest)`,
      ].join('\n'),
    )
  } finally {
    world.stop()
  }
}
