#!/usr/bin/env node
/**
 * A full doctor run on a host with ten tunnels (target: under a second).
 * Builds the lab with 6 hosts (each host has 5 IPsec and 5 WireGuard
 * tunnels), times `netkit doctor --netns nklab-h1` (median of several runs),
 * and removes the lab. Usage: node bench/doctor.mjs [runs]   (as root, after npm run build)
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const runs = Number(process.argv[2] ?? 5)
const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'netkit-bench-'))
const env = {...process.env, NETKIT_STATE_DIR: join(dir, 'state'), NETKIT_CONFIG_DIR: join(dir, 'config'), NETKIT_IPROUTE2_DIR: join(dir, 'iproute2')}
const netkit = (...args) => spawnSync(process.execPath, [bin, ...args], {env, encoding: 'utf8'})

try {
  const t0 = Date.now()
  const up = netkit('lab', 'up', '--hosts', '6', '--json')
  if (up.status !== 0) throw new Error(`lab up failed: ${up.stderr}`)
  const report = JSON.parse(up.stdout).result
  console.log(`lab up, 6 hosts, ${report.tunnels} tunnels: ${((Date.now() - t0) / 1000).toFixed(1)} s (every pair pings: ${report.pairs.every((p) => p.ping)})`)
  const tunnels = JSON.parse(netkit('tunnel', 'list', '--netns', 'nklab-h1', '--json').stdout).result.length
  const times = []
  let summary
  for (let i = 0; i < runs; i++) {
    const s = process.hrtime.bigint()
    const r = netkit('doctor', '--netns', 'nklab-h1', '--json')
    times.push(Number(process.hrtime.bigint() - s) / 1e9)
    summary = JSON.parse(r.stdout).result.summary
  }
  times.sort((a, b) => a - b)
  const median = times[Math.floor(times.length / 2)]
  console.log(
    `doctor on a host with ${tunnels} tunnels: ${median.toFixed(3)} s (median of ${runs}; ${summary.ok} ok, ${summary.warn} warn, ${summary.fail} fail, ${summary.skip} skip) — target < 1 s: ${median < 1 ? 'met' : 'NOT met'}`,
  )
} finally {
  netkit('lab', 'down')
  rmSync(dir, {recursive: true, force: true})
}
