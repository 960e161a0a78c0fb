#!/usr/bin/env node
/**
 * How `netkit tunnel list` and `netkit doctor` scale with the tunnels of one
 * host: a simulated host (test/helpers/realhost.ts) with N IPsec and N
 * WireGuard tunnels (default 25 + 25 = 50) to peers that are not there
 * (--no-wait), then the median of several runs of each command, as an
 * operator runs them there. Targets (issue 16): tunnel list under 0.5 s and
 * doctor under 1 s with 50 tunnels.
 * Usage: node bench/scale.mjs [tunnels per type] [runs]   (as root, after npm run build)
 */
import {spawnSync} from 'node:child_process'
import {loadavg} from 'node:os'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

const {bootHost} = await import('../dist/test/helpers/realhost.js')

const perType = Number(process.argv[2] ?? 25)
const runs = Number(process.argv[3] ?? 5)
const ns = `nkscale${process.pid}`
const sh = (...args) => {
  const r = spawnSync(args[0], args.slice(1), {encoding: 'utf8'})
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}

sh('ip', 'netns', 'add', ns)
const host = bootHost(ns)
try {
  for (const line of [
    'link add u0 type veth peer name u1',
    'link set u0 up',
    'link set u1 up',
    'addr add 192.0.2.1/24 dev u0',
    'link add br0 type bridge',
    'link set br0 up',
  ])
    sh('ip', '-n', ns, ...line.split(' '))
  writeFileSync(join(host.configDir, 'bench.psk'), 'a-bench-key-that-is-long-enough-1234567890\n', {mode: 0o600})
  const t0 = Date.now()
  for (let i = 1; i <= perType; i++) {
    sh('ip', '-n', ns, 'addr', 'add', `10.1.${i}.1/24`, 'dev', 'br0')
    const r = host.cli([
      'tunnel',
      'add',
      `ips${i}`,
      '--type',
      'ipsec',
      '--remote',
      `192.0.2.${10 + i}`,
      '--psk-file',
      '/etc/netkit/bench.psk',
      '--local-subnet',
      `10.1.${i}.0/24`,
      '--remote-subnet',
      `10.2.${i}.0/24`,
      '--no-wait',
    ])
    if (r.code !== 0) throw new Error(`tunnel add ips${i}: ${r.stderr}`)
    const key = spawnSync('sh', ['-c', 'wg genkey | wg pubkey'], {encoding: 'utf8'}).stdout.trim()
    const w = host.cli([
      'tunnel',
      'add',
      `wg${i}`,
      '--type',
      'wireguard',
      '--remote',
      `192.0.2.${100 + i}`,
      '--listen-port',
      String(51000 + i),
      '--peer-public-key',
      key,
      '--address',
      `10.99.${i}.1/24`,
      '--no-wait',
    ])
    if (w.code !== 0) throw new Error(`tunnel add wg${i}: ${w.stderr}`)
  }
  const count = host.cli(['tunnel', 'list', '--json']).json.result.length
  console.log(`${count} tunnels added in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  const median = (args) => {
    const times = []
    let last
    for (let i = 0; i < runs; i++) {
      const s = process.hrtime.bigint()
      last = host.cli(args)
      times.push(Number(process.hrtime.bigint() - s) / 1e9)
    }
    times.sort((a, b) => a - b)
    return {s: times[Math.floor(times.length / 2)], last}
  }
  const load = () => loadavg()[0].toFixed(1)
  console.log(`machine load (1 min) before measuring: ${load()}`)
  const bare = median(['--version'])
  console.log(`netkit --version (start-up alone, for reference): ${bare.s.toFixed(3)} s (median of ${runs})`)
  const list = median(['tunnel', 'list', '--json'])
  console.log(`tunnel list, ${count} tunnels: ${list.s.toFixed(3)} s (median of ${runs}) — target < 0.5 s: ${list.s < 0.5 ? 'met' : 'NOT met'}`)
  const doctor = median(['doctor', '--json'])
  const sum = doctor.last.json?.result?.summary ?? {}
  console.log(
    `doctor, ${count} tunnels: ${doctor.s.toFixed(3)} s (median of ${runs}; ${sum.ok} ok, ${sum.warn} warn, ${sum.fail} fail) — target < 1 s: ${doctor.s < 1 ? 'met' : 'NOT met'}`,
  )
  console.log(`machine load (1 min) after measuring: ${load()}`)
} finally {
  host.stop()
  spawnSync('ip', ['netns', 'del', ns])
}
