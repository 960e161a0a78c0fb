#!/usr/bin/env node
/**
 * The lab at scale (issue 6): `netkit lab up --hosts N` with a full mesh of
 * one tunnel type, timed until every pair pings, and netkit's peak memory
 * (maximum resident set size, from /usr/bin/time). Then `lab down`.
 * Usage: node bench/lab.mjs [hosts] [types...]   e.g. node bench/lab.mjs 10 wireguard ipsec
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const hosts = Number(process.argv[2] ?? 10)
const types = process.argv.slice(3).length ? process.argv.slice(3) : ['wireguard', 'ipsec']
const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'netkit-bench-'))
const env = {...process.env, NETKIT_STATE_DIR: join(dir, 'state'), NETKIT_CONFIG_DIR: join(dir, 'config'), NETKIT_IPROUTE2_DIR: join(dir, 'iproute2')}

try {
  for (const type of types) {
    const t0 = Date.now()
    const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, bin, 'lab', 'up', '--hosts', String(hosts), '--type', type, '--json'], {
      env,
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    })
    const seconds = (Date.now() - t0) / 1000
    const peakKb = Number(r.stderr.trim().split('\n').pop())
    let report
    try {
      report = JSON.parse(r.stdout).result
    } catch {
      console.log(`${type}: lab up failed (exit ${r.status}): ${r.stderr.slice(-400)}`)
      spawnSync(process.execPath, [bin, 'lab', 'down'], {env})
      continue
    }
    const ok = report.pairs.filter((p) => p.ping).length
    console.log(
      `${type}: ${hosts} hosts, ${report.tunnels} tunnels, ${ok}/${report.pairs.length} pairs ping, every pair pinging after ${seconds.toFixed(1)} s; netkit peak memory ${(peakKb / 1024).toFixed(0)} MiB`,
    )
    spawnSync(process.execPath, [bin, 'lab', 'down'], {env})
  }
} finally {
  spawnSync(process.execPath, [bin, 'lab', 'down'], {env})
  rmSync(dir, {recursive: true, force: true})
}
