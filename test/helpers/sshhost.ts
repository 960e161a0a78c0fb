/**
 * Simulated hosts reached by SSH, for tests and benches that drive netkit the
 * way a fleet engine does (Ansible over ssh from a controller).
 *
 *   root namespace (the controller: ansible-playbook, ssh)
 *     |  management veths, 198.18.0.0/15, one /30 per host (the only root-namespace state: the test's own)
 *   host a (sshd on 198.18.x.2)   host b   host c  ...       (realhost.ts hosts: own /run, PID 1, /etc/netkit, /etc/iproute2)
 *     |  underlay veth "u0", 192.0.2.N/32, the rest of 192.0.2.0/24 through the router 192.0.2.254
 *   underlay namespace: bridge "br0" joining every host's u0 (capture there to see what crosses the wire),
 *   and the underlay's router (192.0.2.254 on br0)
 *
 * The underlay is routed, as in a data centre where hosts reach each other through their
 * gateway: every host needs one neighbour entry (the router's) whatever the size of the fleet.
 * On a flat /24 each host of a full mesh needs one per peer, and the kernel's neighbour table is
 * one for all namespaces (net.ipv4.neigh.default.gc_thresh3, 1,024 entries by default, settable
 * only in the root namespace): 50 meshed hosts need about 2,500, and past the limit the kernel
 * drops packets to new neighbours ("neighbor table overflow!", ping: "No buffer space
 * available"). A real host has its own table; this is the one kernel's limit, not the fleet's.
 *
 * Each host: its own sshd as PID 1 (it reaps the orphans it inherits, as an init
 * does, so a detached netkit waiter that ended does not linger), its own
 * /etc/ssh (sshd_config and host key through /etc/netns/NS/ssh), its own /root
 * (bind-mounted from a folder of the world's, in the host's private mount
 * namespace: authorized_keys, ~/.ansible, and whatever is installed there).
 * /usr, /var and /tmp are the machine's: install per-host files under /root
 * or /etc (the host's own), or into a shared path that is the same for all.
 *
 * Everything is removed at teardown (stop()), also when a test fails.
 */
import {spawnSync} from 'node:child_process'
import {chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {makeNs, removeNs, sh, tryRun} from './hosts.js'
import {bootHost, type SimHost} from './realhost.js'

export interface SshHost extends SimHost {
  /** The host's name (its hostname, and its name in an Ansible inventory). */
  name: string
  /** The management address sshd listens on (reachable from the root namespace). */
  mgmt: string
  /** The host's underlay address (without prefix). */
  address: string
  /** The host's /root, seen from the machine. */
  home: string
  /** Runs a command on the host over ssh, as the controller would. */
  ssh(command: string, timeoutMs?: number): {code: number; stdout: string; stderr: string}
  /** Takes the management link down (the controller loses the host; the underlay stays), or brings it back. */
  setManagement(up: boolean): void
}

export interface SshWorld {
  /** The world's folder: the controller's key, an ssh config, the hosts' /root folders. Removed by stop(). */
  dir: string
  /** The controller's private key (its public half is in every host's authorized_keys). */
  key: string
  /** The namespace holding the underlay bridge "br0". */
  underlay: string
  hosts: SshHost[]
  /** Boots one more host on the same underlay (a joining machine). */
  add(name: string): SshHost
  /** Stops one host and removes its links, namespace and folders. */
  remove(h: SshHost): void
  /** ssh options the controller uses (no host-key prompts, short timeouts, the world's key). */
  sshArgs: string[]
  stop(): void
}

const worlds = new Set<SshWorld>()

/**
 * A /30 block of 198.18.0.0/15 per host, in a run of 256 blocks chosen by this
 * process id (other test processes use other runs); skips runs in use.
 */
function managementBase(): number {
  const used = new Set<string>()
  const out = sh('ip', ['-j', '-4', 'addr', 'show'])
  for (const l of JSON.parse(out) as any[]) for (const a of l.addr_info ?? []) used.add(a.local)
  // Prefixes the machine already routes (other than a default route): a block inside or around one is not free.
  const routed: Array<[number, number]> = []
  for (const r of JSON.parse(sh('ip', ['-j', '-4', 'route', 'show', 'table', 'all'])) as any[]) {
    if (!r.dst || r.dst === 'default' || r.type === 'broadcast' || r.type === 'local') continue
    const [addr, len] = String(r.dst).split('/')
    const bits = len === undefined ? 32 : Number(len)
    const n = ipNumber(addr)
    if (Number.isNaN(n)) continue
    const size = 2 ** (32 - bits)
    routed.push([n - (n % size), size])
  }
  const overlaps = (base: number, size: number) => routed.some(([b, s]) => b < base + size && base < b + s)
  const start = process.pid % 128
  for (let i = 0; i < 128; i++) {
    const slot = (start + i) % 128
    const base = (198 << 24) + (18 << 16) + slot * 1024
    if (overlaps(base, 1024)) continue
    let free = true
    for (let k = 0; k < 1024 && free; k += 4) if (used.has(ipString(base + k + 1))) free = false
    if (free) return base
  }
  throw new Error('no free 198.18.0.0/15 block for management links (every /22 holds an address or a route of this machine)')
}

const ipString = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.')
const ipNumber = (a: string) => {
  const p = a.split('.').map(Number)
  return p.length === 4 && p.every((x) => x >= 0 && x <= 255) ? ((p[0] << 24) >>> 0) + (p[1] << 16) + (p[2] << 8) + p[3] : Number.NaN
}

const SSHD_CONFIG = (listen: string) => `# a simulated host's sshd (test/helpers/sshhost.ts)
ListenAddress ${listen}
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 200:30:400
MaxSessions 100
ClientAliveInterval 5
ClientAliveCountMax 3
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
`

/**
 * A world of `names.length` hosts reached by ssh (see the file comment).
 * `tag` goes into the namespace names (keep it short: a helper's tag).
 * `subnet`: the underlay's first three octets (default 192.0.2).
 */
export function sshWorld(tag: string, names: string[], opts: {subnet?: string} = {}): SshWorld {
  const subnet = opts.subnet ?? '192.0.2'
  const dir = mkdtempSync(join(tmpdir(), 'netkit-ssh-'))
  chmodSync(dir, 0o700)
  const key = join(dir, 'id_ed25519')
  sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'netkit-test-controller', '-f', key])
  const pub = sh('cat', [`${key}.pub`])
  const base = managementBase()
  const underlay = makeNs(`${tag}u`)
  sh('ip', ['-n', underlay, 'link', 'add', 'br0', 'type', 'bridge'])
  sh('ip', ['-n', underlay, 'link', 'set', 'br0', 'up'])
  sh('ip', ['-n', underlay, 'addr', 'add', `${subnet}.254/24`, 'dev', 'br0'])
  // The router sends packets back out the port they came in on: no ICMP redirects (a host would then
  // talk to its peer directly, with a neighbour entry per peer again).
  sh('ip', ['netns', 'exec', underlay, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.send_redirects=0', 'net.ipv4.conf.br0.send_redirects=0'])
  const sshArgs = [
    '-i',
    key,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'LogLevel=ERROR',
    '-o',
    'ConnectTimeout=5',
    '-o',
    'ServerAliveInterval=2',
    '-o',
    'ServerAliveCountMax=3',
    '-o',
    'BatchMode=yes',
  ]
  let index = 0
  const hosts: SshHost[] = []

  const boot = (name: string): SshHost => {
    index += 1
    if (index > 250) throw new Error('an ssh world holds at most 250 hosts')
    const ns = makeNs(`${tag}${name}`.slice(0, 10))
    const outer = ipString(base + index * 4 + 1)
    const mgmt = ipString(base + index * 4 + 2)
    const address = `${subnet}.${index}`
    // Management: root-namespace end m<ns> (the test's own), host end m0.
    const rootLink = `m${ns}`.slice(0, 15)
    sh('ip', ['link', 'add', rootLink, 'type', 'veth', 'peer', 'name', 'm0', 'netns', ns])
    sh('ip', ['addr', 'add', `${outer}/30`, 'dev', rootLink])
    sh('ip', ['link', 'set', rootLink, 'up'])
    sh('ip', ['-n', ns, 'addr', 'add', `${mgmt}/30`, 'dev', 'm0'])
    sh('ip', ['-n', ns, 'link', 'set', 'm0', 'up'])
    // Underlay: u0 in the host, p<index> on the bridge.
    const port = `p${index}`
    sh('ip', ['-n', ns, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', port, 'netns', underlay])
    sh('ip', ['-n', underlay, 'link', 'set', port, 'master', 'br0', 'up'])
    sh('ip', ['-n', ns, 'addr', 'add', `${address}/32`, 'dev', 'u0'])
    sh('ip', ['-n', ns, 'link', 'set', 'u0', 'up'])
    sh('ip', ['-n', ns, 'route', 'add', `${subnet}.254/32`, 'dev', 'u0', 'scope', 'link'])
    sh('ip', ['-n', ns, 'route', 'add', `${subnet}.0/24`, 'via', `${subnet}.254`, 'dev', 'u0'])
    // The host's own /etc/ssh (host key, sshd_config) and /root (authorized_keys).
    const etcSsh = (etc: string) => {
      mkdirSync(join(etc, 'ssh'))
      sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `root@${name}`, '-f', join(etc, 'ssh', 'ssh_host_ed25519_key')])
      writeFileSync(join(etc, 'ssh', 'sshd_config'), SSHD_CONFIG(mgmt))
    }
    const home = join(dir, 'hosts', name, 'root')
    mkdirSync(join(home, '.ssh'), {recursive: true, mode: 0o700})
    chmodSync(home, 0o700)
    writeFileSync(join(home, '.ssh', 'authorized_keys'), pub, {mode: 0o600})
    mkdirSync(join(dir, 'logs'), {recursive: true})
    const sshdLog = join(dir, 'logs', `sshd-${name}.log`)
    const sim = bootHost(ns, {
      etc: etcSsh,
      log: sshdLog,
      setup: `mount --bind ${home} /root && mkdir -p -m 0755 /run/sshd && hostname ${name}`,
      init: ['/usr/sbin/sshd', '-D', '-e'],
    })
    const host: SshHost = Object.assign(sim, {
      name,
      mgmt,
      address,
      home,
      ssh(command: string, timeoutMs = 60_000) {
        const r = spawnSync('ssh', [...sshArgs, `root@${mgmt}`, command], {encoding: 'utf8', timeout: timeoutMs})
        return {code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr}
      },
      setManagement(up: boolean) {
        sh('ip', ['-n', ns, 'link', 'set', 'm0', up ? 'up' : 'down'])
      },
    })
    const stop = sim.stop.bind(sim)
    host.stop = () => {
      stop()
      tryRun('ip', ['link', 'del', rootLink])
      removeNs(ns)
      rmSync(join(dir, 'hosts', name), {recursive: true, force: true})
    }
    // sshd answers (bounded; generous, for a loaded machine).
    const deadline = Date.now() + 30_000
    for (;;) {
      const r = host.ssh('true', 10_000)
      if (r.code === 0) break
      if (Date.now() > deadline) {
        const said = tryRun('cat', [sshdLog]).stdout.trim().split('\n').slice(-10).join(' | ')
        const routes = tryRun('ip', ['-4', 'route', 'get', mgmt]).stdout.trim()
        host.stop()
        throw new Error(
          `host ${name}: sshd does not answer on ${mgmt} (ssh said: ${r.stderr.trim() || `exit ${r.code}`}; sshd said: ${said || 'nothing'}; route: ${routes})`,
        )
      }
      sh('sleep', ['0.2'])
    }
    hosts.push(host)
    return host
  }

  const world: SshWorld = {
    dir,
    key,
    underlay,
    hosts,
    sshArgs,
    add: boot,
    remove(h) {
      h.stop()
      hosts.splice(hosts.indexOf(h), 1)
    },
    stop() {
      worlds.delete(world)
      for (const h of [...hosts]) world.remove(h)
      removeNs(underlay)
      rmSync(dir, {recursive: true, force: true})
    },
  }
  worlds.add(world)
  try {
    for (const n of names) boot(n)
  } catch (error) {
    world.stop()
    throw error
  }
  return world
}

process.on('exit', () => {
  for (const w of [...worlds]) w.stop()
})
