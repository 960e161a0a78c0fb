#!/usr/bin/env node
/**
 * `netkit lab up --hosts N --type wireguard` timed until every pair pings,
 * run inside a simulated host of its own (test/helpers/realhost.ts): the lab's
 * namespaces (nklab-*) live in that host's private /run/netns, so this bench
 * runs beside a lab that is up on the machine without touching it. Prints the
 * time, the pairs that ping, and the number of wireguard-go processes.
 * Usage: node bench/lab-mesh.mjs [hosts] [type]   (as root, after npm run build)
 */
import {fileURLToPath} from 'node:url'

const hosts = Number(process.argv[2] ?? 10)
const type = process.argv[3] ?? 'wireguard'
const helpers = (p) => fileURLToPath(new URL(`../dist/test/helpers/${p}`, import.meta.url))
const {makeNs, cleanupAll} = await import(helpers('hosts.js'))
const {bootHost, stopAllHosts} = await import(helpers('realhost.js'))

const h = bootHost(makeNs('bl'))
try {
  const t0 = Date.now()
  const up = h.cli(['lab', 'up', '--hosts', String(hosts), '--type', type, '--json'], {timeoutMs: 900_000})
  const seconds = (Date.now() - t0) / 1000
  if (up.code !== 0) throw new Error(`lab up failed (exit ${up.code}): ${up.stderr.slice(-1000)}`)
  const r = up.json.result
  const daemons = h.processes().filter((p) => p.endsWith(' wireguard-go')).length
  const ok = r.pairs.filter((p) => p.ping).length
  console.log(
    `${type}: ${hosts} hosts, ${r.tunnels} tunnels, ${ok}/${r.pairs.length} pairs ping, every pair pinging after ${seconds.toFixed(1)} s; ${daemons} wireguard-go processes; doctor fails ${r.doctor.map((d) => d.fail).join(',')}`,
  )
  const down = h.cli(['lab', 'down'], {timeoutMs: 300_000})
  if (down.code !== 0) throw new Error(`lab down failed: ${down.stderr.slice(-500)}`)
} finally {
  stopAllHosts()
  cleanupAll()
}
