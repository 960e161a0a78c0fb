#!/usr/bin/env node
/**
 * Tunnels on this machine, in namespaces of its own (nkbench-*), printed:
 *  - setup: seconds from `netkit tunnel add` on the second host to the first
 *    ping between the containers behind the two hosts,
 *  - throughput: iperf3 (TCP, 5 s) container to container through the tunnel,
 *    against the bare underlay between the hosts.
 * Cases: WireGuard, and IPsec with each proposal this strongSwan can compute
 * (ChaCha20-Poly1305, AES-GCM where a plugin has it, AES-CBC + HMAC-SHA-256),
 * which is what the default proposal order (src/lib/tunnel/ipsec/algorithms.ts)
 * rests on.
 * Usage: node bench/tunnels.mjs [seconds]   (as root, after npm run build)
 */
import {execFileSync, spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const seconds = Number(process.argv[2] ?? 5)
const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'netkit-bench-'))
const env = {...process.env, NETKIT_STATE_DIR: join(dir, 'state'), NETKIT_CONFIG_DIR: join(dir, 'config'), NETKIT_IPROUTE2_DIR: join(dir, 'iproute2')}
const psk = join(dir, 'psk')
writeFileSync(psk, 'benchmark pre-shared key, 32 chars\n', {mode: 0o600})

const sh = (cmd, args) => execFileSync(cmd, args, {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
const ip = (...args) => sh('ip', args)
const netkit = (...args) => {
  const r = spawnSync(process.execPath, [bin, ...args], {env, encoding: 'utf8'})
  if (r.status !== 0) throw new Error(`netkit ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}
const NS = ['nkbench-a', 'nkbench-b', 'nkbench-ca', 'nkbench-cb']

function world() {
  teardown()
  for (const n of NS) {
    ip('netns', 'add', n)
    ip('-n', n, 'link', 'set', 'lo', 'up')
  }
  ip('-n', 'nkbench-a', 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u0', 'netns', 'nkbench-b')
  ip('-n', 'nkbench-a', 'addr', 'add', '192.0.2.1/24', 'dev', 'u0')
  ip('-n', 'nkbench-b', 'addr', 'add', '192.0.2.2/24', 'dev', 'u0')
  for (const [h, c, net] of [
    ['nkbench-a', 'nkbench-ca', '10.1.0'],
    ['nkbench-b', 'nkbench-cb', '10.2.0'],
  ]) {
    ip('-n', h, 'link', 'set', 'u0', 'up')
    ip('-n', h, 'link', 'add', 'c0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c)
    ip('-n', h, 'addr', 'add', `${net}.1/24`, 'dev', 'c0')
    ip('-n', h, 'link', 'set', 'c0', 'up')
    ip('-n', c, 'addr', 'add', `${net}.2/24`, 'dev', 'eth0')
    ip('-n', c, 'link', 'set', 'eth0', 'up')
    ip('-n', c, 'route', 'add', 'default', 'via', `${net}.1`)
  }
}

function teardown() {
  for (const n of NS) {
    try {
      const pids = sh('ip', ['netns', 'pids', n]).split('\n').filter(Boolean)
      if (pids.length) spawnSync('kill', ['-KILL', ...pids])
      ip('netns', 'del', n)
    } catch {
      // not there
    }
  }
  rmSync(join(dir, 'config'), {recursive: true, force: true})
  rmSync(join(dir, 'state'), {recursive: true, force: true})
}

function firstPing(deadlineMs) {
  const t0 = Date.now()
  while (Date.now() - t0 < deadlineMs) {
    if (spawnSync('ip', ['netns', 'exec', 'nkbench-ca', 'ping', '-c', '1', '-W', '1', '10.2.0.2']).status === 0) return true
  }
  return false
}

/** iperf3 from `from` to `server`'s address, Gbit/s. */
function iperf(serverNs, serverIp, clientNs) {
  const server = spawn('ip', ['netns', 'exec', serverNs, 'iperf3', '-s', '-1'], {stdio: 'ignore'})
  spawnSync('sleep', ['0.5'])
  const r = spawnSync('ip', ['netns', 'exec', clientNs, 'iperf3', '-c', serverIp, '-t', String(seconds), '-J'], {encoding: 'utf8'})
  server.kill()
  if (r.status !== 0) return NaN
  return JSON.parse(r.stdout).end.sum_received.bits_per_second / 1e9
}

const add = (ns, remote, extra) => netkit('tunnel', 'add', 'bench', '--remote', remote, '--netns', ns, ...extra)

const cases = [['wireguard', [], null]]
const plugins = '/usr/lib/ipsec/plugins'
const has = (p) => existsSync(`${plugins}/libstrongswan-${p}.so`)
if (has('chapoly') || has('openssl'))
  cases.push(['ipsec chacha20poly1305', ['--proposals', 'chacha20poly1305-prfsha256-x25519', '--esp-proposals', 'chacha20poly1305-x25519'], null])
if (has('gcm') || has('openssl'))
  cases.push(['ipsec aes256gcm16', ['--proposals', 'aes256gcm16-prfsha384-x25519', '--esp-proposals', 'aes256gcm16-x25519'], null])
cases.push(['ipsec aes256-sha256 (CBC)', ['--proposals', 'aes256-sha256-x25519', '--esp-proposals', 'aes256-sha256-x25519'], null])
cases.push(['ipsec aes128-sha256 (CBC)', ['--proposals', 'aes128-sha256-x25519', '--esp-proposals', 'aes128-sha256-x25519'], null])

try {
  world()
  const bare = iperf('nkbench-b', '192.0.2.2', 'nkbench-a')
  console.log(`bare underlay (veth between the hosts): ${bare.toFixed(2)} Gbit/s`)
  console.log('case                              setup (add on 2nd host -> 1st ping)   throughput      vs underlay')
  for (const [name, extra] of cases) {
    world()
    const subnetsA = ['--local-subnet', '10.1.0.0/24', '--remote-subnet', '10.2.0.0/24']
    const subnetsB = ['--local-subnet', '10.2.0.0/24', '--remote-subnet', '10.1.0.0/24']
    let t0
    if (name === 'wireguard') {
      const ka = netkit('tunnel', 'pubkey', 'bench', '--netns', 'nkbench-a').trim()
      const kb = netkit('tunnel', 'pubkey', 'bench', '--netns', 'nkbench-b').trim()
      add('nkbench-a', '192.0.2.2', ['--type', 'wireguard', '--peer-public-key', kb, '--address', '10.99.0.1/24', ...subnetsA, '--no-wait'])
      t0 = Date.now()
      add('nkbench-b', '192.0.2.1', ['--type', 'wireguard', '--peer-public-key', ka, '--address', '10.99.0.2/24', ...subnetsB])
    } else {
      add('nkbench-a', '192.0.2.2', ['--type', 'ipsec', '--psk-file', psk, ...subnetsA, ...extra, '--no-wait'])
      t0 = Date.now()
      add('nkbench-b', '192.0.2.1', ['--type', 'ipsec', '--psk-file', psk, ...subnetsB, ...extra])
    }
    const ok = firstPing(30_000)
    const setup = (Date.now() - t0) / 1000
    const gbps = ok ? iperf('nkbench-cb', '10.2.0.2', 'nkbench-ca') : NaN
    console.log(
      `${name.padEnd(34)}${(ok ? `${setup.toFixed(2)} s` : 'no ping').padEnd(38)}${(gbps * 1000).toFixed(0).padStart(6)} Mbit/s   ${((gbps / bare) * 100).toFixed(1)}%`,
    )
    for (const ns of ['nkbench-a', 'nkbench-b']) netkit('tunnel', 'del', 'bench', '--netns', ns)
  }
} finally {
  teardown()
  rmSync(dir, {recursive: true, force: true})
}
