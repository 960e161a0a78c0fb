#!/usr/bin/env node
/**
 * Two (or more) versions of the Ansible role, compared on one world of simulated hosts
 * (test/helpers/sshhost.ts): the mesh is built once, then one host joins and leaves again and
 * again, each version in turn (the order alternates every round), so that both meet the same
 * machine, the same load and the same WireGuard sessions. The machine's speed drifts by tens of
 * per cent between runs of bench/fleet.mjs; a difference of a few seconds is only seen this way.
 * Each version is a git revision (its ansible/ folder) or `.` (the working tree's).
 * The hosts run the single binary, as the role installs it (bench/single-binary.mjs; --node: this
 * checkout through node).
 * Usage: npm run build && node bench/fleet-ab.mjs REV REV [--hosts 50] [--rounds 3] [--serial 100%] [--netkit DIR,DIR] [--node]
 * (--serial: the rollout's batches, netkit_serial; default 100% as in bench/fleet.mjs, the role's own default is 25%;
 * --netkit: the netkit each version's hosts run, one built checkout per REV (`.`: this one), e.g. a
 * `git worktree` of the revision before after `npm run build` there: `node bench/fleet-ab.mjs . . --netkit /tmp/old,.`;
 * each checkout's single binary, built there when missing, or with --node the checkout through node)
 * Prints a line per run: seconds, the machine's CPU and ansible-playbook's, the 3 longest tasks.
 */
import {spawnSync} from 'node:child_process'
import {cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {singleBinary, useSingleBinary} from './single-binary.mjs'

const {sshWorld} = await import('../dist/test/helpers/sshhost.js')
const {controller, explain, ANSIBLE_DIR} = await import('../dist/test/helpers/ansible.js')

const option = (name, fallback) => {
  const at = process.argv.indexOf(name)
  return at > 0 ? Number(process.argv[at + 1]) : fallback
}
const hosts = option('--hosts', 50)
const rounds = option('--rounds', 3)
const serialAt = process.argv.indexOf('--serial')
const serial = serialAt > 0 ? process.argv[serialAt + 1] : '100%'
const revs = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !['--hosts', '--rounds', '--serial', '--netkit'].includes(all[i - 1]))
const netkitAt = process.argv.indexOf('--netkit')
const builds = netkitAt > 0 ? process.argv[netkitAt + 1].split(',').map((d) => (d === '.' ? process.cwd() : d)) : undefined
if (builds && builds.length !== revs.length) throw new Error('--netkit: one built checkout per REV')
if (revs.length < 2) throw new Error('usage: node bench/fleet-ab.mjs REV REV [--hosts 50] [--rounds 3] [--serial 100%] (a REV may be . for the working tree)')

/** Each version's site.yml and roles/ in a folder of its own (Ansible finds roles beside the playbook). */
const dir = mkdtempSync(join(tmpdir(), 'netkit-ab-'))
const playbooks = revs.map((rev, i) => {
  const to = join(dir, `v${i}`)
  mkdirSync(to)
  if (rev === '.') {
    cpSync(join(ANSIBLE_DIR, 'site.yml'), join(to, 'site.yml'))
    cpSync(join(ANSIBLE_DIR, 'roles'), join(to, 'roles'), {recursive: true})
  } else {
    const tar = spawnSync('sh', ['-c', 'git archive "$1" ansible | tar -x -C "$2" --strip-components=1', 'sh', rev, to], {encoding: 'utf8'})
    if (tar.status !== 0) throw new Error(`git archive ${rev}: ${tar.stderr}`)
  }
  return join(to, 'site.yml')
})

// With --netkit, the hosts and the controller run one wrapper whose target (a symbolic link) is
// switched to the version's checkout before each run: the wrapper itself never changes, so the role
// installs nothing anew between versions.
const current = join(dir, 'netkit-current')
const wrapper = join(dir, 'netkit')
if (builds) {
  for (const b of builds) if (!existsSync(join(b, 'dist/bundle/netkit.cjs'))) throw new Error(`--netkit ${b}: not built (npm run build there)`)
  if (process.argv.includes('--node')) writeFileSync(wrapper, `#!/bin/sh\nexec ${process.execPath} ${join(current, 'bin/run.js')} "$@"\n`, {mode: 0o755})
  else {
    for (const b of builds) singleBinary(b)
    writeFileSync(wrapper, `#!/bin/sh\nexec ${join(current, 'dist/netkit')} "$@"\n`, {mode: 0o755})
  }
} else console.log(useSingleBinary())
const useBuild = (v) => {
  if (!builds) return
  rmSync(current, {force: true})
  symlinkSync(builds[v], current)
}

/** CPU-seconds the whole machine has spent (all but idle and iowait). */
const machineCpu = () => {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  return (f.reduce((a, b) => a + b, 0) - f[3] - f[4]) / 100
}

const names = Array.from({length: hosts}, (_, i) => `n${i + 1}`)
const world = sshWorld('ab', names)
try {
  const ctl = controller(world)
  const inventory = (list, extra = {}) =>
    ctl.inventory(
      'ab',
      Object.fromEntries(list.map((x) => [x, ctl.hostVars(x, extra[x] ?? {})])),
      // As in bench/fleet.mjs: a busy 2-core machine needs longer than the defaults.
      {
        netkit_bin: builds ? wrapper : ctl.netkit,
        ...(builds ? {netkit_binary_src: wrapper, netkit_controller_netkit: wrapper} : {}),
        netkit_check_timeout: 60,
        netkit_verify_timeout: 60,
        netkit_try_seconds: 900,
      },
    )
  const run = async (label, v, inv) => {
    useBuild(v)
    const cpu0 = machineCpu()
    const r = await ctl.playbook(inv, ['-e', `netkit_serial=${serial}`], {playbook: playbooks[v], timeoutMs: 900_000})
    const cpu = machineCpu() - cpu0
    const per = new Map()
    for (const t of r.tasks) per.set(t.task, (per.get(t.task) ?? 0) + t.seconds)
    const top = [...per.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([t, s]) => `${s.toFixed(1)} s ${t.replace(/^netkit_mesh : /, '').slice(0, 40)}`)
    console.log(
      `${label} ${revs[v]}${builds ? ` (netkit ${builds[v]})` : ''}: ${r.seconds.toFixed(1)} s, CPU machine ${cpu.toFixed(1)} s, ansible-playbook ${r.cpuSeconds.toFixed(1)} s | ${top.join('; ')}`,
    )
    if (r.code !== 0) throw new Error(`${label} ${revs[v]} failed:\n${explain(r)}`)
  }
  await run('mesh', 0, inventory(names))
  const newcomer = `n${hosts + 1}`
  world.add(newcomer)
  const order = revs.map((_, i) => i)
  for (let k = 0; k < rounds; k++)
    for (const v of k % 2 ? [...order].reverse() : order) {
      await run(`join #${k + 1}`, v, inventory([...names, newcomer]))
      await run(`leave #${k + 1}`, v, inventory([...names, newcomer], {[newcomer]: {netkit_state: 'absent'}}))
    }
} finally {
  world.stop()
  rmSync(dir, {recursive: true, force: true})
}
