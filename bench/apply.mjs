#!/usr/bin/env node
/**
 * Bulk apply (issues 6 and 16), printed:
 *  - floor: the same 20,000 routes and 500 SPD entries through one `ip -batch`,
 *  - naive: one `ip` process per object (measured on a sample, scaled),
 *  - yardstick: the least a Node.js program can do for it (yardstick-apply.mjs: parse, one
 *    `ip -batch` per CPU, read back; no validation, plan, ledger or undo),
 *  - netkit apply of a host file with them into a fresh namespace (issue 16's target: <= 2.0x the floor, JSON and YAML),
 *  - re-apply of the same file, a no-op (target <= 1/4 of the first apply),
 *  - netkit diff of the unchanged file (target < 0.5 s),
 *  - both again without the memo (src/lib/apply/memo.ts), as after a change elsewhere on the host.
 * The floor, the yardstick and the first apply are each the best of 3, measured interleaved (floor, yardstick,
 * apply, three times: this machine is a shared VM whose load varies), each with its CPU time (user+sys).
 * Usage: [FORMAT=yaml] [BENCH_NS=name] [NAIVE=0] node bench/apply.mjs [routes] [policies]   (as root, after npm run build)
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {availableParallelism, tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const ROUTES = Number(process.argv[2] ?? 20000)
const POLICIES = Number(process.argv[3] ?? 500)
const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const yardstickBin = fileURLToPath(new URL('./yardstick-apply.mjs', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'netkit-bench-'))
const env = {...process.env, NETKIT_STATE_DIR: join(dir, 'state'), NETKIT_CONFIG_DIR: join(dir, 'config'), NETKIT_IPROUTE2_DIR: join(dir, 'iproute2')}
const NS = process.env.BENCH_NS ?? 'nkbench-apply'

// 10.64.0.0/24 on; past 10.255.255.0/24 (49,152 routes), on into 11.0.0.0/8.
const route = (i) => `${10 + ((64 + (i >> 8)) >> 8)}.${(64 + (i >> 8)) & 255}.${i & 255}.0/24`
const pol = (i) => [`172.16.${i >> 4}.${(i & 15) * 16}/28`, `172.17.${i >> 4}.${(i & 15) * 16}/28`]

function fresh() {
  spawnSync('ip', ['netns', 'del', NS])
  execFileSync('ip', ['netns', 'add', NS])
  execFileSync('ip', ['-n', NS, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1'])
  execFileSync('ip', ['-n', NS, 'link', 'set', 'v0', 'up'])
  execFileSync('ip', ['-n', NS, 'link', 'set', 'v1', 'up'])
  // A settled host: the IPv6 link-local addresses done with duplicate address detection.
  for (let i = 0; i < 50 && execFileSync('ip', ['-n', NS, '-6', 'addr', 'show', 'tentative'], {encoding: 'utf8'}).trim(); i++) spawnSync('sleep', ['0.1'])
}
/** CPU time (user+sys, s) of this process's waited-for children so far (/proc/self/stat: cutime, cstime). */
const childCpu = () => {
  const stat = readFileSync('/proc/self/stat', 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[13]) + Number(f[14])) / 100
}
/** Wall and CPU time of `fn` (which runs child processes synchronously). */
const time = (fn) => {
  const c = childCpu()
  const t = process.hrtime.bigint()
  fn()
  return {wall: Number(process.hrtime.bigint() - t) / 1e9, cpu: childCpu() - c}
}
const lines = () => [
  ...Array.from({length: ROUTES}, (_, i) => `route add ${route(i)} dev v0 proto 178`),
  ...Array.from({length: POLICIES}, (_, i) => `xfrm policy add src ${pol(i)[0]} dst ${pol(i)[1]} dir out priority 1780 action allow`),
]
const fmt = (m) => `${m.wall.toFixed(2)} s (CPU ${m.cpu.toFixed(2)} s)`

try {
  const doc = {
    version: 1,
    routes: Array.from({length: ROUTES}, (_, i) => ({to: route(i), dev: 'v0'})),
    xfrmPolicies: Array.from({length: POLICIES}, (_, i) => ({src: pol(i)[0], dst: pol(i)[1], dir: 'out'})),
  }
  const yaml =
    [
      'version: 1',
      'routes:',
      ...doc.routes.map((r) => `  - {to: ${r.to}, dev: v0}`),
      'xfrmPolicies:',
      ...doc.xfrmPolicies.map((p) => `  - {src: ${p.src}, dst: ${p.dst}, dir: out}`),
    ].join('\n') + '\n'
  const FORMAT = process.env.FORMAT ?? 'json'
  const file = join(dir, `host.${FORMAT}`)
  writeFileSync(file, FORMAT === 'json' ? JSON.stringify(doc) : yaml)
  writeFileSync(join(dir, 'yardstick.json'), JSON.stringify(doc))
  const run = (...args) => {
    const r = spawnSync(process.execPath, [bin, ...args, '--netns', NS, '--json'], {env, encoding: 'utf8', maxBuffer: 1 << 28})
    if (r.status !== 0) throw new Error(`netkit ${args.join(' ')}: ${r.stderr.slice(-500)}`)
    return JSON.parse(r.stdout).result
  }
  // Interleaved (floor, yardstick, apply; three rounds) so that the machine's load weighs on all alike; best of each.
  const floors = []
  const yardsticks = []
  const applies = []
  let first
  for (let round = 0; round < 3; round++) {
    fresh()
    floors.push(time(() => execFileSync('ip', ['-n', NS, '-batch', '-'], {input: lines().join('\n') + '\n'})))
    fresh()
    yardsticks.push(time(() => execFileSync(process.execPath, [yardstickBin, join(dir, 'yardstick.json'), NS], {stdio: 'inherit'})))
    fresh()
    rmSync(join(dir, 'state'), {recursive: true, force: true})
    applies.push(time(() => (first = run('apply', '-f', file))))
  }
  const best = (ms) => ms.reduce((a, b) => (b.wall < a.wall ? b : a))
  const floor = best(floors).wall
  const yardstick = best(yardsticks).wall
  const apply = best(applies).wall
  let second
  const againM = time(() => (second = run('apply', '-f', file)))
  const diffM = time(() => run('diff', '-f', file))
  const again = againM.wall
  const diff = diffM.wall
  // The same no-op without the memo (as after any change elsewhere on the host): the whole comparison.
  rmSync(join(dir, 'state', 'apply-memo.json'), {force: true})
  const full = time(() => run('apply', '-f', file))
  rmSync(join(dir, 'state', 'apply-memo.json'), {force: true})
  const fullDiff = time(() => run('diff', '-f', file))
  // One ip per object, measured on a sample (NAIVE=0 skips it: a thousand processes take long on a busy machine).
  let naive
  if (process.env.NAIVE !== '0') {
    fresh()
    const sample = lines().filter((_, i, a) => i % Math.ceil(a.length / 1000) === 0)
    naive = {
      n: sample.length,
      s: (time(() => sample.forEach((l) => execFileSync('ip', ['-n', NS, ...l.split(' ')]))).wall * (ROUTES + POLICIES)) / sample.length,
    }
  }
  const n = ROUTES + POLICIES
  console.log(`${ROUTES} routes + ${POLICIES} SPD entries (${n} objects) into a fresh namespace, host file in ${FORMAT} (FORMAT=yaml|json)`)
  console.log(
    `  load average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}; best of 3, interleaved; CPU is user+sys of all processes`,
  )
  console.log(`  floor, one ip -batch:            ${fmt(best(floors))}`)
  if (naive) console.log(`  naive, one ip per object:        ${naive.s.toFixed(1)} s (measured on ${naive.n}, scaled)`)
  console.log(
    `  yardstick, the least a Node.js program does (parse, ${Math.min(availableParallelism(), 4)} ip -batch, read back; no validation, plan, ledger or undo):`,
  )
  console.log(`                                   ${fmt(best(yardsticks))} = ${(yardstick / floor).toFixed(2)}x the floor`)
  console.log(`  netkit apply (independent lines over ${Math.min(availableParallelism(), 4)} ip -batch processes, one per CPU):`)
  console.log(
    `                                   ${fmt(best(applies))} = ${(apply / floor).toFixed(2)}x the floor (target <= 2.0x: ${apply <= 2 * floor ? 'met' : 'NOT met'}); ${first.changes.length} changes, verified: ${first.verified}`,
  )
  console.log(
    `  netkit apply again (no-op):      ${fmt(againM)} = ${(again / apply).toFixed(2)} of the first (target <= 0.25: ${again <= apply / 4 ? 'met' : 'NOT met'}); changed: ${second.changed}`,
  )
  console.log(`  netkit diff, unchanged file:     ${fmt(diffM)} (target < 0.5 s: ${diff < 0.5 ? 'met' : 'NOT met'})`)
  console.log(`  without the memo (the state's digest unknown), the whole comparison:`)
  console.log(`    apply again (no-op):           ${fmt(full)} = ${(full.wall / apply).toFixed(2)} of the first`)
  console.log(`    diff:                          ${fmt(fullDiff)}`)
} finally {
  spawnSync('ip', ['netns', 'del', NS])
  rmSync(dir, {recursive: true, force: true})
}
