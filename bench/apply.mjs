#!/usr/bin/env node
/**
 * Bulk apply (issue 6), printed:
 *  - floor: the same 20,000 routes and 500 SPD entries through one `ip -batch`,
 *  - naive: one `ip` process per object (measured on a sample, scaled),
 *  - yardstick: the least a Node.js program can do for it (yardstick-apply.mjs: parse, one
 *    `ip -batch` per CPU, read back; no validation, plan, ledger or undo),
 *  - netkit apply of a host file with them into a fresh namespace (target <= 1.5x the floor),
 *  - re-apply of the same file, a no-op (target <= 1/3 of the first apply),
 *  - netkit diff of the file (target < 1 s),
 *  - both again without the memo (src/lib/apply/memo.ts), as after a change elsewhere on the host.
 * The floor, the yardstick and the first apply are each the best of 3 (this machine is a shared VM).
 * Usage: [FORMAT=yaml] node bench/apply.mjs [routes] [policies]   (as root, after npm run build)
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {availableParallelism, tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const ROUTES = Number(process.argv[2] ?? 20000)
const POLICIES = Number(process.argv[3] ?? 500)
const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const yardstickBin = fileURLToPath(new URL('./yardstick-apply.mjs', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'netkit-bench-'))
const env = {...process.env, NETKIT_STATE_DIR: join(dir, 'state'), NETKIT_CONFIG_DIR: join(dir, 'config'), NETKIT_IPROUTE2_DIR: join(dir, 'iproute2')}
const NS = 'nkbench-apply'

const route = (i) => `10.${64 + (i >> 8)}.${i & 255}.0/24`
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
const time = (fn) => {
  const t = process.hrtime.bigint()
  fn()
  return Number(process.hrtime.bigint() - t) / 1e9
}
const lines = () => [
  ...Array.from({length: ROUTES}, (_, i) => `route add ${route(i)} dev v0 proto 178`),
  ...Array.from({length: POLICIES}, (_, i) => `xfrm policy add src ${pol(i)[0]} dst ${pol(i)[1]} dir out priority 1780 action allow`),
]

const best = (fn) => Math.min(...Array.from({length: 3}, fn))

try {
  const floor = best(() => {
    fresh()
    return time(() => execFileSync('ip', ['-n', NS, '-batch', '-'], {input: lines().join('\n') + '\n'}))
  })
  fresh()
  const sample = lines().filter((_, i, a) => i % Math.ceil(a.length / 1000) === 0)
  const naiveSample = time(() => {
    for (const l of sample) execFileSync('ip', ['-n', NS, ...l.split(' ')])
  })
  const naive = (naiveSample * (ROUTES + POLICIES)) / sample.length
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
  const yardstick = best(() => {
    fresh()
    return time(() => execFileSync(process.execPath, [yardstickBin, join(dir, 'yardstick.json'), NS], {stdio: 'inherit'}))
  })
  const run = (...args) => {
    const r = spawnSync(process.execPath, [bin, ...args, '--netns', NS, '--json'], {env, encoding: 'utf8', maxBuffer: 1 << 28})
    if (r.status !== 0) throw new Error(`netkit ${args.join(' ')}: ${r.stderr.slice(-500)}`)
    return JSON.parse(r.stdout).result
  }
  let first
  const apply = best(() => {
    fresh()
    rmSync(join(dir, 'state'), {recursive: true, force: true})
    return time(() => (first = run('apply', '-f', file)))
  })
  let second
  const again = time(() => (second = run('apply', '-f', file)))
  const diff = time(() => run('diff', '-f', file))
  // The same no-op without the memo (as after any change elsewhere on the host): the whole comparison.
  rmSync(join(dir, 'state', 'apply-memo.json'), {force: true})
  const full = time(() => run('apply', '-f', file))
  rmSync(join(dir, 'state', 'apply-memo.json'), {force: true})
  const fullDiff = time(() => run('diff', '-f', file))
  const n = ROUTES + POLICIES
  console.log(`${ROUTES} routes + ${POLICIES} SPD entries (${n} objects) into a fresh namespace, host file in ${FORMAT} (FORMAT=yaml|json)`)
  console.log(`  floor, one ip -batch:            ${floor.toFixed(2)} s`)
  console.log(`  naive, one ip per object:        ${naive.toFixed(1)} s (measured on ${sample.length}, scaled)`)
  console.log(
    `  yardstick, the least a Node.js program does (parse, ${Math.min(availableParallelism(), 4)} ip -batch, read back; no validation, plan, ledger or undo):`,
  )
  console.log(`                                   ${yardstick.toFixed(2)} s = ${(yardstick / floor).toFixed(2)}x the floor`)
  console.log(`  netkit apply (independent lines over ${Math.min(availableParallelism(), 4)} ip -batch processes, one per CPU):`)
  console.log(
    `                                   ${apply.toFixed(2)} s = ${(apply / floor).toFixed(2)}x the floor (target <= 1.5x: ${apply <= 1.5 * floor ? 'met' : 'NOT met'}); ${first.changes.length} changes, verified: ${first.verified}`,
  )
  console.log(
    `  netkit apply again (no-op):      ${again.toFixed(2)} s = ${(again / apply).toFixed(2)} of the first (target <= 0.33: ${again <= apply / 3 ? 'met' : 'NOT met'}); changed: ${second.changed}`,
  )
  console.log(`  netkit diff:                     ${diff.toFixed(2)} s (target < 1 s: ${diff < 1 ? 'met' : 'NOT met'})`)
  console.log(`  without the memo (the state's digest unknown), the whole comparison:`)
  console.log(`    apply again (no-op):           ${full.toFixed(2)} s = ${(full / apply).toFixed(2)} of the first`)
  console.log(`    diff:                          ${fullDiff.toFixed(2)} s`)
} finally {
  spawnSync('ip', ['netns', 'del', NS])
  rmSync(dir, {recursive: true, force: true})
}
