/**
 * Fault injection: wrappers first on PATH for the tools netkit runs (ip, wg,
 * wireguard-go, sysctl, swanctl), and one in place of charon (netkit runs it
 * by its path, not from PATH: `intoHost` binds the wrapper over that path in a
 * simulated host's own mount namespace), that count the calls which change the
 * host and fail the Nth one, as a flaky kernel, a full table or a dying daemon
 * would. A failing charon exits at once, or (`charon: 'hang'`) runs but never
 * opens its VICI socket. `sweep` runs a command once cleanly, then for N = 1,
 * 2, ... up to its number of changing calls, and after each run compares a
 * full dump of the host (links, addresses, routes in every table, rules, proxy
 * entries, xfrm, the sysctls netkit touches, processes, the connections charon
 * has loaded, netkit's files) with
 * the one taken before: a failing run must leave the host exactly as it was,
 * and a run that went through in spite of its fault exactly as a clean run.
 */
import {chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {dump, filesUnder} from './hosts.js'
import type {SimHost} from './realhost.js'

/** When a call changes the host, per tool (sh `case` patterns over " $* "). */
const CHANGING: Record<string, string> = {
  ip: '*" -batch "*|*" add "*|*" del "*|*" delete "*|*" set "*|*" replace "*|*" change "*|*" flush "*|*" update "*',
  wg: '*" set "*|*" setconf "*|*" addconf "*|*" syncconf "*',
  'wireguard-go': '*',
  sysctl: '*" -w "*|*"="*',
  swanctl: '*" --load"*|*" --initiate "*|*" --terminate "*|*" -i "*|*" -t "*',
}

/** Where netkit runs charon from (src/lib/tunnel/ipsec/charon.ts, with no NETKIT_CHARON). */
export const CHARON_PATH = '/usr/lib/ipsec/charon'

export interface FaultKit {
  /** The directory to put first on PATH. */
  bin: string
  /**
   * The environment for a run that fails the Nth changing call (0: none fails, only counted), or
   * (`charonStart`) the Kth start of charon; a failing charon start hangs without VICI with `charon: 'hang'`.
   */
  env(n: number, opts?: {charon?: 'exit' | 'hang'; charonStart?: number}): Record<string, string>
  /** How many changing calls the last run made. */
  calls(): number
  /** The tools of the last run's changing calls, in order ("ip", "charon", ...). */
  tools(): string[]
  /** Binds the charon wrapper over charon's path in a simulated host (its own mount namespace: the machine keeps its charon). */
  intoHost(h: SimHost): void
  cleanup(): void
}

/** The counting part of a wrapper: bumps the count, logs the call, and says (exit 0) whether this call is the one to fail. */
const counter = (count: string, tool: string) => `n=$(( $(cat ${count} 2>/dev/null || echo 0) + 1 )); echo $n > ${count}; echo "$n ${tool} $*" >> ${count}.log`

export function faultKit(): FaultKit {
  const dir = mkdtempSync(join(tmpdir(), 'netkit-faults-'))
  const count = join(dir, 'count')
  for (const [tool, pattern] of Object.entries(CHANGING)) {
    const real = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].map((d) => join(d, tool)).find((p) => existsSync(p))
    if (!real) continue
    writeFileSync(
      join(dir, tool),
      `#!/bin/sh
case " $* " in
  *" -j "*|*" -json "*) ;;
  ${pattern})
    ${counter(count, tool)}
    if [ "$n" = "$FAULT_AT" ]; then
      case " $* " in *" -batch "*) cat > /dev/null ;; esac
      echo "RTNETLINK answers: Input/output error (fault injected into ${tool}, call $n)" >&2
      exit 2
    fi ;;
esac
exec ${real} "$@"
`,
    )
    chmodSync(join(dir, tool), 0o755)
  }
  // charon: a copy of the real one under its own name (ps, netkit's checks and the dumps see "charon"), and the wrapper.
  const charonDir = join(dir, 'charon')
  mkdirSync(join(charonDir, 'real'), {recursive: true})
  const hasCharon = existsSync(CHARON_PATH)
  if (hasCharon) {
    copyFileSync(CHARON_PATH, join(charonDir, 'real', 'charon'))
    chmodSync(join(charonDir, 'real', 'charon'), 0o755)
  }
  const wrapper = join(charonDir, 'charon')
  writeFileSync(
    wrapper,
    `#!/bin/sh
${counter(count, 'charon')}
k=$(( $(cat ${count}.charon 2>/dev/null || echo 0) + 1 )); echo $k > ${count}.charon
if [ "$n" = "$FAULT_AT" ] || [ "$k" = "$FAULT_CHARON_START" ]; then
  if [ "$FAULT_CHARON" = hang ]; then
    # Runs, but its VICI socket is elsewhere: netkit never reaches it.
    conf=${charonDir}/novici.$$.conf
    printf 'include %s\ncharon {\n  plugins {\n    vici {\n      socket = unix://${charonDir}/novici.%s.vici\n    }\n  }\n}\n' "$STRONGSWAN_CONF" $$ > $conf
    STRONGSWAN_CONF=$conf exec ${join(charonDir, 'real', 'charon')} "$@"
  fi
  echo "charon: fault injected (call $n)" >&2
  exit 1
fi
exec ${join(charonDir, 'real', 'charon')} "$@"
`,
  )
  chmodSync(wrapper, 0o755)
  const hosts = new Set<number>()
  return {
    bin: dir,
    env: (n, opts = {}) => {
      rmSync(count, {force: true})
      rmSync(`${count}.log`, {force: true})
      rmSync(`${count}.charon`, {force: true})
      return {PATH: `${dir}:${process.env.PATH}`, FAULT_AT: String(n), FAULT_CHARON: opts.charon ?? 'exit', FAULT_CHARON_START: String(opts.charonStart ?? 0)}
    },
    calls: () => (existsSync(count) ? Number(readFileSync(count, 'utf8').trim() || 0) : 0),
    tools: () =>
      existsSync(`${count}.log`)
        ? readFileSync(`${count}.log`, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => l.split(' ')[1])
        : [],
    intoHost: (h) => {
      if (!hasCharon || hosts.has(h.pid)) return
      h.sh('mount', ['--bind', wrapper, CHARON_PATH])
      hosts.add(h.pid)
    },
    cleanup: () => rmSync(dir, {recursive: true, force: true}),
  }
}

const SYSCTLS = [
  'net.ipv4.ip_forward',
  'net.ipv6.conf.all.forwarding',
  'net.ipv4.conf.all.accept_redirects',
  'net.ipv4.conf.all.send_redirects',
  'net.ipv4.conf.default.send_redirects',
  'net.ipv4.conf.all.rp_filter',
  'net.ipv4.conf.all.proxy_arp',
]

/**
 * What the host's charon runs (netkit's, on its socket): its connections and
 * their children with their settings, so that a stored definition that
 * differs from what charon has loaded is seen, not only files and the kernel.
 */
function charonConfig(h: SimHost): string {
  if (!existsSync(join(h.configDir, 'ipsec', 'charon.vici'))) return 'no charon socket'
  let out: string
  try {
    out = h.sh('swanctl', ['--list-conns', '--raw', '--uri', 'unix:///etc/netkit/ipsec/charon.vici'])
  } catch {
    return 'a charon socket nothing answers on'
  }
  const conns = [...out.matchAll(/(netkit-\S+) \{(local_addrs=[^{}]*?) local-1/g)].map((m) => `connection ${m[1]}: ${m[2]}`)
  const children = [...out.matchAll(/(netkit-\S+) \{(mode=[^{}]*)\}/g)].map((m) => `child ${m[1]}: ${m[2]}`)
  return [...conns, ...children].sort().join('\n')
}

/** Everything a failing run must leave as it found it, in a host. */
export function hostState(h: SimHost): string {
  const files = (root: string) =>
    filesUnder(root)
      .filter((f) => !f.endsWith('.lock') && !/\/tmp\//.test(f) && !f.endsWith('.log'))
      // A pid file's size is its pid's number of digits: only whether it is there counts.
      .map((f) => (f.endsWith('.pid') ? f.slice(root.length) : `${f.slice(root.length)} ${readFileSync(f).length}`))
      .sort()
  // A link the undo made again is the same link to a user: only its index, MAC, link-local address and place in the list differ.
  const VOLATILE = new Set(['ifindex', 'link_index', 'address', 'broadcast', 'perm_address', 'link_netnsid'])
  const scrub = (v: unknown): unknown => {
    if (Array.isArray(v))
      return v
        .map(scrub)
        .filter((x) => !(x && typeof x === 'object' && String((x as {local?: string}).local ?? (x as {dst?: string}).dst ?? '').startsWith('fe80:')))
    if (v && typeof v === 'object')
      return Object.fromEntries(
        Object.entries(v)
          .filter(([k]) => !VOLATILE.has(k))
          .map(([k, x]) => [k, scrub(x)]),
      )
    return v
  }
  const links = dump(h.ns)
    .split('\n')
    .map((line) => {
      if (!line.startsWith('[')) return line
      try {
        return (scrub(JSON.parse(line)) as unknown[])
          .map((o) => JSON.stringify(o))
          .sort()
          .join('\n')
      } catch {
        return line
      }
    })
    .join('\n')
  return [
    links,
    charonConfig(h),
    h.sh('sysctl', SYSCTLS).trim(),
    h
      .processes()
      .map((p) => p.replace(/^\d+ /, ''))
      .sort()
      .join(','),
    files(h.configDir).join('\n'),
    files(h.stateDir).join('\n'),
  ].join('\n--\n')
}

export interface NotRestored {
  /** The changing call that failed. */
  n: number
  /** The tool of that call, and how it failed. */
  fault: string
  exit: number
  error: string
  changed: string[]
}

export interface SweepResult {
  /** Runs where the injected fault made the command fail. */
  failing: number
  /** Runs that went through in spite of the fault (a step that may fail, as a route already gone). */
  tolerated: number
  /** Runs after which the host was neither as before (a failing run) nor as after a clean run (a tolerated one). */
  notRestored: NotRestored[]
  /** How many changing calls the command makes when none fails. */
  calls: number
  /** The tools of those calls, in order. */
  tools: string[]
  /** Runs where charon's start, instead of failing, ran without ever opening VICI (opts.charonHang). */
  charonHangs: number
  /** Why the sweep stopped early: a run left the host so that even the reset could not bring it back. */
  aborted?: string
}

export interface SweepOptions {
  /** Puts the host back in its starting state after a run that went through (e.g. "tunnel del"). */
  reset: () => void
  /** Also run each charon start that fails as a charon that never opens VICI (10 s each). */
  charonHang?: boolean
  /** How long the host may take to settle (a tunnel brought back negotiates its SA again). */
  settleMs?: number
}

/**
 * Runs `run(env)` once with no fault (counting its changing calls, and the
 * state a success leaves), then with the 1st, 2nd, ... changing call failing.
 * After each run the host must be as before it (the command failed) or as
 * after the clean run (it went through); `reset` puts it back in the starting
 * state after a success.
 */
export function sweep(h: SimHost, kit: FaultKit, run: (env: Record<string, string>) => {code: number; stderr: string}, opts: SweepOptions): SweepResult {
  const start = hostState(h)
  const clean = run(kit.env(0))
  if (clean.code !== 0) throw new Error(`the command fails without a fault: ${clean.stderr.slice(-600)}`)
  const calls = kit.calls()
  const tools = kit.tools()
  const done = hostState(h)
  opts.reset()
  const now = settled(h, start, opts.settleMs)
  if (now !== start) throw new Error(`the reset after the clean run did not bring the host back to its starting state:\n${lineDiff(start, now).join('\n')}`)
  const result: SweepResult = {failing: 0, tolerated: 0, notRestored: [], calls, tools, charonHangs: 0}
  const cases = [
    ...tools.map((_, i) => ({n: i + 1, hang: false})),
    ...(opts.charonHang ? tools.flatMap((t, i) => (t === 'charon' ? [{n: i + 1, hang: true}] : [])) : []),
  ]
  for (const {n, hang} of cases) {
    const r = run(kit.env(n, {charon: hang ? 'hang' : 'exit'}))
    if (hang) result.charonHangs++
    const fault = `${tools[n - 1]}${hang ? ' (hangs without VICI)' : ''}`
    const want = r.code === 0 ? done : start
    if (r.code === 0) result.tolerated++
    else result.failing++
    const after = settled(h, want, opts.settleMs)
    if (after !== want) {
      result.notRestored.push({
        n,
        fault,
        exit: r.code,
        error: r.stderr.split('\n').find((l) => l.startsWith('error:')) ?? r.stderr.slice(-200),
        changed: lineDiff(want, after),
      })
    }
    if (r.code === 0 || after !== want) {
      let back: string
      try {
        opts.reset()
        back = settled(h, start, opts.settleMs)
      } catch (error) {
        result.aborted = `after call ${n} (${fault}) failed, the reset failed: ${String((error as Error).message)
          .split('\n')
          .filter((l) => l.startsWith('error:') || !l.startsWith('['))
          .join(' ')
          .slice(0, 600)}`
        break
      }
      if (back !== start) {
        result.aborted = `after call ${n} (${fault}) failed, even the reset left: ${lineDiff(start, back).join('; ')}`
        break
      }
    }
  }
  return result
}

/** The host's state once it equals `want`, or after `ms` (polled). */
function settled(h: SimHost, want: string, ms = 0): string {
  const deadline = Date.now() + ms
  for (;;) {
    const now = hostState(h)
    if (now === want || Date.now() >= deadline) return now
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 250)
  }
}

/** What differs between two dumps, line by line (at most a few of each side). */
function lineDiff(before: string, after: string): string[] {
  const split = (t: string) => t.split(/\n|(?<=\}),(?=\{)/)
  const b = new Set(split(before))
  const a = new Set(split(after))
  return [
    ...[...a]
      .filter((l) => !b.has(l))
      .slice(0, 4)
      .map((l) => `+ ${l.slice(0, 300)}`),
    ...[...b]
      .filter((l) => !a.has(l))
      .slice(0, 4)
      .map((l) => `- ${l.slice(0, 300)}`),
  ]
}
