#!/usr/bin/env node
/**
 * One WireGuard interface with many peers (issue 17), in a namespace of its
 * own, printed:
 *  - apply of a host file with N peers (default 1,000), from nothing;
 *  - apply of the file with one peer more (N - 1 -> N), and one fewer;
 *  - `tunnel peer add` and `tunnel peer del` of one peer, on the command line;
 *  - a re-apply with nothing to change;
 *  - memory (VmRSS) of wireguard-go with 1 peer and with N peers.
 * Targets: adding one peer to N - 1 under 0.5 s; memory independent of the
 * number of peers up to wireguard-go's own growth. Peers are made-up hosts
 * (keys made here, endpoints in 198.51.100.0/24 and 203.0.113.0/24 that
 * nothing answers): what is measured is netkit and the device, not handshakes.
 * Each timing is the median of 3 (RUNS=N for more; this machine is a shared VM:
 * the load average is printed with the figures).
 * Usage: node bench/wg-peers.mjs [peers]   (as root, after npm run build)
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {generateKeyPairSync} from 'node:crypto'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const N = Number(process.argv[2] ?? 1000)
const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'netkit-bench-'))
const env = {...process.env, NETKIT_STATE_DIR: join(dir, 'state'), NETKIT_CONFIG_DIR: join(dir, 'config'), NETKIT_IPROUTE2_DIR: join(dir, 'iproute2')}
const NS = `nkbench-wg${process.pid % 10000}`
const file = join(dir, 'host.yaml')

const key = () => Buffer.from(generateKeyPairSync('x25519').publicKey.export({format: 'jwk'}).x, 'base64url').toString('base64')
const keys = Array.from({length: N + 1}, key)
// Peer i: overlay 10.99.x.y/32 and a subnet 10.(100 + x).y.0/24 behind it; an endpoint nothing answers.
const peer = (i) => ({
  name: `p${i}`,
  key: keys[i],
  overlay: `10.99.${(i + 2) >> 8}.${(i + 2) & 255}/32`,
  subnet: `10.${100 + ((i + 2) >> 8)}.${(i + 2) & 255}.0/24`,
  endpoint: `${i % 2 ? '198.51.100' : '203.0.113'}.${1 + (i % 250)}:${51820 + (i >> 8)}`,
})

function hostFile(count) {
  const lines = ['version: 1', 'tunnels:', '  mesh:', '    type: wireguard', '    address: 10.99.0.1/16', '    listenPort: 51820', '    peers:']
  if (count === 0) lines[lines.length - 1] += ' {}'
  for (let i = 0; i < count; i++) {
    const p = peer(i)
    lines.push(`      ${p.name}:`, `        publicKey: "${p.key}"`, `        endpoint: ${p.endpoint}`, `        allowedIps: [${p.overlay}, ${p.subnet}]`)
  }
  return lines.join('\n') + '\n'
}

function netkit(args) {
  const r = spawnSync(process.execPath, [bin, ...args, '--netns', NS], {env, encoding: 'utf8', maxBuffer: 1 << 28})
  if (r.status !== 0) throw new Error(`netkit ${args.join(' ')}: exit ${r.status}\n${r.stderr.slice(-2000)}`)
  return r.stdout
}
const apply = (count) => {
  writeFileSync(file, hostFile(count))
  return netkit(['apply', '-f', file])
}
const clear = () => {
  writeFileSync(file, 'version: 1\n')
  return netkit(['apply', '-f', file])
}
const time = (fn) => {
  const t = process.hrtime.bigint()
  fn()
  return Number(process.hrtime.bigint() - t) / 1e9
}
const RUNS = Number(process.env.RUNS ?? 3)
const best = (fn) => Array.from({length: RUNS}, fn).sort((a, b) => a - b)[RUNS >> 1]

/** The namespace deleted with what runs in it (deleting a namespace stops no process: wireguard-go would stay). */
function dropNs() {
  const pids = spawnSync('ip', ['netns', 'pids', NS], {encoding: 'utf8'}).stdout?.split('\n').filter(Boolean) ?? []
  for (const pid of pids) spawnSync('kill', [pid])
  spawnSync('ip', ['netns', 'del', NS])
}

function fresh() {
  dropNs()
  execFileSync('ip', ['netns', 'add', NS])
  execFileSync('ip', ['-n', NS, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1'])
  execFileSync('ip', ['-n', NS, 'addr', 'add', '192.0.2.1/24', 'dev', 'v0'])
  execFileSync('ip', ['-n', NS, 'link', 'set', 'v0', 'up'])
  execFileSync('ip', ['-n', NS, 'link', 'set', 'v1', 'up'])
  execFileSync('ip', ['-n', NS, 'route', 'add', 'default', 'via', '192.0.2.254'])
}

/** wireguard-go's resident memory, in KiB (its pid from tunnel show). */
function rss() {
  const pid = JSON.parse(netkit(['tunnel', 'show', 'mesh', '--json'])).result.status.details.wireguardGoPid
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1])
}
const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`

try {
  fresh()
  apply(1)
  const rss1 = rss()
  apply(0)
  const rss0 = rss()

  const full = best(() => {
    clear()
    fresh()
    return time(() => apply(N))
  })
  const rssN = rss()
  const peers = JSON.parse(netkit(['tunnel', 'peer', 'list', 'mesh', '--json'])).result.length
  const routes = JSON.parse(execFileSync('ip', ['-n', NS, '-j', 'route', 'show', 'proto', '178'], {encoding: 'utf8'})).length
  if (peers !== N || routes !== N) throw new Error(`expected ${N} peers and routes, found ${peers} peers and ${routes} routes`)
  const remove = best(() => {
    apply(N)
    return time(() => apply(N - 1))
  })
  const add = best(() => {
    apply(N - 1)
    return time(() => apply(N))
  })
  const noop = best(() => time(() => apply(N)))
  const p = peer(N)
  const cliAdd = best(() => {
    netkit(['tunnel', 'peer', 'del', 'mesh', p.name])
    return time(() =>
      netkit(['tunnel', 'peer', 'add', 'mesh', p.name, '--public-key', p.key, '--allowed-ips', `${p.overlay},${p.subnet}`, '--endpoint', p.endpoint]),
    )
  })
  const cliDel = best(() => {
    netkit(['tunnel', 'peer', 'add', 'mesh', p.name, '--public-key', p.key, '--allowed-ips', `${p.overlay},${p.subnet}`, '--endpoint', p.endpoint])
    return time(() => netkit(['tunnel', 'peer', 'del', 'mesh', p.name]))
  })
  const start = time(() => spawnSync(process.execPath, [bin, 'tunnel', 'list'], {env}))

  const f = (s) => `${s.toFixed(2)} s`
  console.log(
    `one WireGuard interface, ${N} peers (${N} routes), wireguard-go, median of ${RUNS} (load average ${(await import('node:os'))
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}):`,
  )
  console.log(`  apply from nothing:                 ${f(full)}`)
  console.log(`  apply adding one peer (${N - 1} -> ${N}):  ${f(add)}   (target < 0.5 s)`)
  console.log(`  apply removing one peer:            ${f(remove)}`)
  console.log(`  tunnel peer add (one, to ${N}):      ${f(cliAdd)}`)
  console.log(`  tunnel peer del (one):              ${f(cliDel)}`)
  console.log(`  re-apply, nothing to change:        ${f(noop)}`)
  console.log(`  (netkit start-up alone, tunnel list: ${f(start)})`)
  console.log(
    `  wireguard-go memory (VmRSS): 0 peers ${mib(rss0)}, 1 peer ${mib(rss1)}, ${N} peers ${mib(rssN)} (${((rssN - rss1) / Math.max(1, N - 1)).toFixed(1)} KiB per peer)`,
  )
} finally {
  spawnSync(process.execPath, [bin, 'apply', '-f', '-', '--netns', NS], {env, input: 'version: 1\n'})
  dropNs()
  rmSync(dir, {recursive: true, force: true})
}
