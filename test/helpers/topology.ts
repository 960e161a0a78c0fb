/**
 * The two-site world the tunnel tests run in, made of namespaces:
 *
 *   CA (10.1.0.2) --- A (10.1.0.1 | 192.0.2.1) ==underlay== B (192.0.2.2 | 10.2.0.1) --- CB (10.2.0.2)
 *
 * A and B are the hosts; CA and CB are a container behind each. Everything is
 * removed by hosts.ts's cleanup, even when a test fails.
 */
import {makeNs, sh} from './hosts.js'
import {bootHost, type SimHost} from './realhost.js'

export interface TwoSites {
  A: string
  B: string
  CA: string
  CB: string
  /** The underlay interface name in A and in B. */
  underlay: string
}

export function twoSites(tag = 's'): TwoSites {
  const A = makeNs(`${tag}A`)
  const B = makeNs(`${tag}B`)
  const CA = makeNs(`${tag}ca`)
  const CB = makeNs(`${tag}cb`)
  const ip = (ns: string, ...args: string[]) => sh('ip', ['-n', ns, ...args])
  // underlay
  ip(A, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u0', 'netns', B)
  ip(A, 'addr', 'add', '192.0.2.1/24', 'dev', 'u0')
  ip(B, 'addr', 'add', '192.0.2.2/24', 'dev', 'u0')
  ip(A, 'link', 'set', 'u0', 'up')
  ip(B, 'link', 'set', 'u0', 'up')
  // a container behind each host
  for (const [host, ctr, net] of [
    [A, CA, '10.1.0'],
    [B, CB, '10.2.0'],
  ] as const) {
    ip(host, 'link', 'add', 'c0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ctr)
    ip(host, 'addr', 'add', `${net}.1/24`, 'dev', 'c0')
    ip(host, 'link', 'set', 'c0', 'up')
    ip(ctr, 'addr', 'add', `${net}.2/24`, 'dev', 'eth0')
    ip(ctr, 'link', 'set', 'eth0', 'up')
    ip(ctr, 'route', 'add', 'default', 'via', `${net}.1`)
  }
  // Wait (bounded) until every link has its carrier, so "before" dumps are of a settled world.
  const links: [string, string][] = [
    [A, 'u0'],
    [B, 'u0'],
    [A, 'c0'],
    [B, 'c0'],
    [CA, 'eth0'],
    [CB, 'eth0'],
  ]
  const deadline = Date.now() + 3000
  while (Date.now() < deadline) {
    const pending = links.filter(([ns, dev]) => !sh('ip', ['-n', ns, '-j', 'link', 'show', dev]).includes('"operstate":"UP"'))
    if (pending.length === 0) break
    sh('sleep', ['0.05'])
  }
  return {A, B, CA, CB, underlay: 'u0'}
}

/** Pings from a namespace, retrying until it answers or the time is up. */
export async function pingUntil(ns: string, target: string, seconds = 15): Promise<boolean> {
  const deadline = Date.now() + seconds * 1000
  for (let i = 0; i < seconds * 4 && Date.now() < deadline; i++) {
    try {
      sh('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', '1', target])
      return true
    } catch {
      await new Promise((r) => setTimeout(r, 300))
    }
  }
  return false
}

export interface Capture {
  lines: string[]
  /** Lines that show an inner (container) address: traffic in clear. */
  clear: string[]
}

/**
 * Captures on a namespace's interface while `during` runs (bounded), and says
 * which captured packets carry the given inner addresses in clear.
 */
export async function captureDuring(ns: string, dev: string, inner: string[], during: () => Promise<unknown>): Promise<Capture> {
  const {spawn} = await import('node:child_process')
  const child = spawn('ip', ['netns', 'exec', ns, 'timeout', '15', 'tcpdump', '-lnni', dev, 'not', 'arp', 'and', 'not', 'icmp6'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (err += d))
  // tcpdump says "listening on" when it is ready.
  for (let i = 0; i < 50 && !err.includes('listening on'); i++) await new Promise((r) => setTimeout(r, 100))
  await during()
  await new Promise((r) => setTimeout(r, 300))
  child.kill('SIGINT')
  await new Promise((r) => child.once('exit', r))
  const lines = out.split('\n').filter((l) => l.trim())
  return {lines, clear: lines.filter((l) => inner.some((a) => new RegExp(`\\b${a.replaceAll('.', '\\.')}\\b`).test(l)))}
}

/** Every process in a namespace, as "pid comm" (for "nothing is left running"). */
export function processesIn(ns: string): string[] {
  let pids: string[] = []
  try {
    pids = sh('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean)
  } catch {
    return []
  }
  return pids.map((p) => {
    try {
      return `${p} ${sh('cat', [`/proc/${p}/comm`]).trim()}`
    } catch {
      return `${p} ?`
    }
  })
}

export interface TwoHosts extends TwoSites {
  /** A and B as simulated hosts (realhost.ts): netkit runs in them with its defaults, no --netns. */
  hA: SimHost
  hB: SimHost
}

/** The two-site world, with A and B booted as simulated hosts. */
export function twoHosts(tag = 's'): TwoHosts {
  const w = twoSites(tag)
  return {...w, hA: bootHost(w.A), hB: bootHost(w.B)}
}

export interface UnderlayHost {
  /** The network namespace (also reachable from outside with `ip -n`). */
  ns: string
  /** The namespace as a simulated host (realhost.ts): netkit runs in it with its defaults. */
  host: SimHost
  /** Its address on the underlay, 192.0.2.<i + 1> (interface u0). */
  address: string
}

/**
 * N simulated hosts on one underlay: a bridge in a namespace of its own (the
 * "switch"), one veth into each host (u0, 192.0.2.1, .2, ...). Removed by
 * hosts.ts's and realhost.ts's cleanup, even when a test fails.
 */
export function hosts(n: number, tag = 'm'): {wan: string; hosts: UnderlayHost[]} {
  if (n < 1 || n > 200) throw new Error(`hosts(${n}): 1 to 200`)
  const wan = makeNs(`${tag}w`)
  const ip = (ns: string, ...args: string[]) => sh('ip', ['-n', ns, ...args])
  ip(wan, 'link', 'add', 'br0', 'type', 'bridge')
  ip(wan, 'link', 'set', 'br0', 'up')
  const out: UnderlayHost[] = []
  for (let i = 0; i < n; i++) {
    const ns = makeNs(`${tag}${i + 1}`)
    const address = `192.0.2.${i + 1}`
    ip(wan, 'link', 'add', `p${i + 1}`, 'type', 'veth', 'peer', 'name', 'u0', 'netns', ns)
    ip(wan, 'link', 'set', `p${i + 1}`, 'master', 'br0', 'up')
    ip(ns, 'addr', 'add', `${address}/24`, 'dev', 'u0')
    ip(ns, 'link', 'set', 'u0', 'up')
    out.push({ns, host: bootHost(ns), address})
  }
  // Bounded wait until every underlay link has its carrier.
  const deadline = Date.now() + 5000
  while (Date.now() < deadline) {
    if (out.every((h) => sh('ip', ['-n', h.ns, '-j', 'link', 'show', 'u0']).includes('"operstate":"UP"'))) break
    sh('sleep', ['0.05'])
  }
  return {wan, hosts: out}
}
