/**
 * A simulated host: what a real machine running netkit looks like, made from a
 * network namespace. A test runs netkit inside it exactly as an operator would
 * on a real host: no NETKIT_* variables, the default paths, state left by
 * earlier commands, netkit's names registered in /etc/iproute2.
 *
 * What makes a namespace a host (`ip netns exec NS` alone shares /run, /proc
 * and PID 1 with the machine):
 * - its own /etc/netkit and /etc/iproute2: `ip netns exec NS` bind-mounts
 *   /etc/netns/NS/<x> over /etc/<x>. /etc/netns/NS/iproute2 starts as a copy of
 *   the machine's (so names an earlier `npm run demo` registered are there, as
 *   on a real host), /etc/netns/NS/netkit starts empty;
 * - its own /run: a private mount namespace with a tmpfs on /run (wireguard-go
 *   sockets, charon's pid file, /run/netkit, /run/netns of the host's own
 *   namespaces);
 * - its own PID namespace and UTS name, with a long-lived PID 1 (its /proc
 *   shows the host's processes only, as netkit looks for its daemons there).
 *   Daemons netkit starts live on in the host between commands, as on a machine.
 *
 * Commands enter the host with nsenter (mount, PID, network and UTS
 * namespaces of its PID 1). Teardown SIGKILLs PID 1, which ends every process
 * of the host, and removes /etc/netns/NS. The network namespace itself is the
 * caller's (hosts.ts makes and removes it).
 */
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {closeSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync} from 'node:fs'
import {basename, join} from 'node:path'

import {BIN, cliResult, type CliResult} from './cli.js'
import {after, before} from 'node:test'

import {dump, makeNs, sh} from './hosts.js'
import {innerNs} from './inner.js'

const BINARY = process.env.NETKIT_BIN
const BINARY_PATH = process.env.NETKIT_BIN_PATH

export interface SimHost {
  /** The network namespace the host lives in (also reachable from outside with `ip -n`). */
  ns: string
  /** The host's PID 1, as the machine sees it. */
  pid: number
  /** The host's /etc/netkit, seen from the machine. */
  configDir: string
  /** The host's /etc/iproute2, seen from the machine. */
  iproute2Dir: string
  /** The host's /run/netkit, seen from the machine (through /proc/PID/root). */
  stateDir: string
  /** Runs netkit in the host, with its defaults and no NETKIT_* variables. */
  /** netkit in the host; `via`: a command it runs under there (`['ip', 'netns', 'exec', NS]`). */
  cli(args: string[], opts?: {input?: string; timeoutMs?: number; env?: Record<string, string>; via?: string[]}): CliResult
  /** How to run netkit in the host from a program that spawns it itself (a pseudo-terminal): file, arguments and environment. */
  command(args: string[], env?: Record<string, string>): {file: string; args: string[]; env: NodeJS.ProcessEnv}
  /** Starts netkit in the host without waiting (signals sent with `kill` reach netkit itself). */
  cliStart(args: string[], opts?: {env?: Record<string, string>}): ChildProcess
  /** Runs a program in the host; throws on a non-zero exit. */
  sh(file: string, args: string[], input?: string): string
  /** `ip -j [-n ns] ...` in the host, parsed (ns: one of the host's own namespaces). */
  ipj(args: string[], ns?: string): any[]
  /** The host's processes but its PID 1 (in any of its namespaces), as "pid comm" with the host's pids (for "nothing is left running"). */
  processes(): string[]
  /** Ends every process of the host and removes its /etc entries. */
  stop(): void
}

const booted = new Map<string, SimHost>()

/** The environment netkit gets in a host: the machine's, less every NETKIT_* variable. */
function hostEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('NETKIT_')) env[k] = v
  if (BINARY && BINARY_PATH) env.PATH = BINARY_PATH
  return {...env, ...extra}
}

const netkitArgv = (args: string[]): string[] => (BINARY ? [BINARY, ...args] : [process.execPath, BIN, ...args])

function childOf(pid: number): number | undefined {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)
    return kids.length ? Number(kids[0]) : undefined
  } catch {
    return undefined
  }
}

function waitSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

export interface BootOptions {
  /** Writes more of the host's own /etc before it boots: called with /etc/netns/NS (e.g. an "ssh" folder there is the host's /etc/ssh). */
  etc?: (dir: string) => void
  /** Shell commands run in the host (its own mount namespace, /run already its own) before its PID 1 starts: extra mounts, directories. */
  setup?: string
  /**
   * The host's PID 1, program and arguments (default `sleep infinity`). A program that reaps
   * the orphans it inherits (sshd does) keeps exited detached processes from lingering as zombies.
   */
  init?: string[]
  /** A file that gets PID 1's standard output and error (default: discarded), e.g. a daemon's own log for a failure message. */
  log?: string
}

/**
 * Makes the namespace `ns` (already made, e.g. by hosts.ts makeNs) a host and
 * starts its PID 1. Registered for teardown at exit, even when a test fails.
 * `etc`: writes more of the host's own /etc into the folder given (each entry
 * is bound over the machine's /etc/<entry>, which must exist).
 */
export function bootHost(ns: string, opts: BootOptions = {}): SimHost {
  const etc = join('/etc/netns', ns)
  if (existsSync(etc)) throw new Error(`${etc} exists: is ${ns} a host already?`)
  mkdirSync(join(etc, 'netkit'), {recursive: true})
  cpSync('/etc/iproute2', join(etc, 'iproute2'), {recursive: true})
  // `ip netns exec` can bind /etc/netns/NS/netkit only over a directory that exists.
  mkdirSync('/etc/netkit', {recursive: true})
  // More of the host's own /etc (e.g. its strongswan.conf and /etc/swanctl, or /etc/ssh): entries made in /etc/netns/NS before it boots.
  try {
    opts.etc?.(etc)
  } catch (error) {
    rmSync(etc, {recursive: true, force: true})
    throw error
  }

  const program = opts.init ?? ['sleep', 'infinity']
  const setup = opts.setup ? ` && ${opts.setup}` : ''
  const logFd = opts.log ? openSync(opts.log, 'a') : undefined
  const init = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      'unshare',
      '--mount',
      '--propagation',
      'private',
      '--pid',
      '--fork',
      '--kill-child',
      '--mount-proc',
      '--uts',
      'sh',
      '-c',
      `mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p /run/lock && hostname ${ns}${setup} && exec "$@"`,
      'sh',
      ...program,
    ],
    {detached: true, stdio: logFd === undefined ? 'ignore' : ['ignore', logFd, logFd]},
  )
  if (logFd !== undefined) closeSync(logFd)
  init.unref()
  // PID 1 of the host is unshare's child; it is ready once it runs its program.
  let pid: number | undefined
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    const kid = init.pid === undefined ? undefined : childOf(init.pid)
    if (kid !== undefined) {
      try {
        // By its executable: a daemon may rewrite its command line at once (sshd's listener shows
        // "sshd: /usr/sbin/sshd -D -e [listener] ..."), so that a late look would never match it.
        if (basename(readlinkSync(`/proc/${kid}/exe`)) === basename(program[0]) || readFileSync(`/proc/${kid}/cmdline`, 'utf8').startsWith(`${program[0]}\0`)) {
          pid = kid
          break
        }
      } catch {
        // not yet
      }
    }
    waitSync(20)
  }
  if (pid === undefined) {
    if (init.pid) spawnSync('kill', ['-KILL', String(init.pid)])
    rmSync(etc, {recursive: true, force: true})
    throw new Error(`host ${ns} did not start`)
  }
  const root = `/proc/${pid}/root`
  // The host sees its own /etc entries (not the machine's).
  if (statSync(join(root, 'etc/netkit')).ino !== statSync(join(etc, 'netkit')).ino) throw new Error(`host ${ns} does not see ${etc}/netkit as /etc/netkit`)

  const enter = (argv: string[]) => ['-t', String(pid), '-m', '-p', '-n', '-u', '--', ...argv]
  const host: SimHost = {
    ns,
    pid,
    configDir: join(etc, 'netkit'),
    iproute2Dir: join(etc, 'iproute2'),
    stateDir: join(root, 'run/netkit'),
    cli(args, opts = {}) {
      return cliResult(
        spawnSync('nsenter', enter([...(opts.via ?? []), ...netkitArgv(args)]), {
          encoding: 'utf8',
          input: opts.input,
          env: hostEnv(opts.env),
          timeout: opts.timeoutMs ?? 90_000,
          maxBuffer: 256 * 1024 * 1024,
        }),
      )
    },
    command(args, env) {
      return {file: 'nsenter', args: enter(netkitArgv(args)), env: hostEnv(env)}
    },
    cliStart(args, opts = {}) {
      const child = spawn('nsenter', enter(netkitArgv(args)), {stdio: 'pipe', env: hostEnv(opts.env)})
      // nsenter forks netkit into the host's PID namespace and does not pass signals on: send them to netkit.
      const kill = child.kill.bind(child)
      child.kill = (sig?: NodeJS.Signals | number) => {
        const inner = child.pid === undefined ? undefined : childOf(child.pid)
        if (inner === undefined) return kill(sig)
        try {
          process.kill(inner, sig ?? 'SIGTERM')
          return true
        } catch {
          return false
        }
      }
      return child
    },
    sh(file, args, input) {
      return sh('nsenter', enter([file, ...args]), input)
    },
    ipj(args, inner) {
      const out = host.sh('ip', [...(inner ? ['-n', inner] : []), '-j', ...args])
      return out.trim() ? JSON.parse(out) : []
    },
    processes() {
      // Every process in the host's PID namespace (also those in namespaces of its own, as a lab's daemons), as the
      // host's /proc lists them. Zombies are not running: PID 1 (`sleep`) never reaps the daemons it inherits.
      const proc = join(root, 'proc')
      return readdirSync(proc)
        .filter((p) => /^\d+$/.test(p) && p !== '1')
        .map((p) => {
          try {
            const stat = readFileSync(join(proc, p, 'stat'), 'utf8')
            if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return `${p} ?`
            return `${p} ${readFileSync(join(proc, p, 'comm'), 'utf8').trim()}`
          } catch {
            return `${p} ?`
          }
        })
        .filter((l) => !l.endsWith(' ?'))
    },
    stop() {
      booted.delete(ns)
      spawnSync('kill', ['-KILL', String(pid)])
      if (init.pid) spawnSync('kill', ['-KILL', String(init.pid)])
      for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) waitSync(20)
      rmSync(etc, {recursive: true, force: true})
    },
  }
  booted.set(ns, host)
  return host
}

/** Every host still up (for teardown). */
export function stopAllHosts(): void {
  for (const h of [...booted.values()]) h.stop()
}

process.on('exit', stopAllHosts)

/**
 * One simulated host for a whole test file (booted before its tests, stopped
 * after), with the helpers of hosts.ts bound to it: namespaces are made inside
 * the host (its own /run/netns), `ip` and other programs run inside it, and
 * netkit runs there with its defaults. Tests written against hosts.ts's
 * helpers and `--netns` keep their shape.
 */
export function hostForFile(tag: string) {
  let h: SimHost | undefined
  before(() => {
    h = bootHost(makeNs(tag))
  })
  after(() => h?.stop())
  const host = (): SimHost => {
    if (!h) throw new Error('the simulated host is not booted yet (use it inside a test)')
    return h
  }
  const run = (file: string, args: string[], input?: string) => host().sh(file, args, input)
  return {
    host,
    /** netkit in the host: `nk('link', 'list', '--netns', A)`. */
    nk: (...args: string[]) => host().cli(args),
    cli: (args: string[], opts?: {input?: string; timeoutMs?: number}) => host().cli(args, opts),
    sh: run,
    tryRun(file: string, args: string[]): {code: number; stdout: string; stderr: string} {
      const r = spawnSync('nsenter', ['-t', String(host().pid), '-m', '-p', '-n', '-u', '--', file, ...args], {encoding: 'utf8'})
      return {code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr}
    },
    ipj: (ns: string, args: string[]) => host().ipj(args, ns),
    dump: (ns: string) => dump(ns, run),
    /** A namespace inside the host, lo up, no IPv6 DAD (as hosts.ts makeNs). */
    makeNs: (t: string): string => innerNs(host(), t),
  }
}
