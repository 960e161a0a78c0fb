/**
 * Fault injection: wrappers first on PATH for the tools netkit runs (ip, wg,
 * wireguard-go, sysctl, swanctl) that count the calls which change the host
 * and fail the Nth one, as a flaky kernel, a full table or a dying daemon
 * would. `sweep` runs a command for N = 1, 2, ... until it succeeds, and
 * after each failing run compares a full dump of the host (links, addresses,
 * routes in every table, rules, proxy entries, xfrm, the sysctls netkit
 * touches, processes, netkit's files) with the one taken before: a failing
 * run must leave the host exactly as it was.
 */
import {chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
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

export interface FaultKit {
  /** The directory to put first on PATH. */
  bin: string
  /** The environment for a run that fails the Nth changing call (0: none fails, only counted). */
  env(n: number): Record<string, string>
  /** How many changing calls the last run made. */
  calls(): number
  cleanup(): void
}

export function faultKit(): FaultKit {
  const dir = mkdtempSync(join(tmpdir(), 'netkit-faults-'))
  const count = join(dir, 'count')
  for (const [tool, pattern] of Object.entries(CHANGING)) {
    const real = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].map((d) => join(d, tool)).find((p) => {
      try {
        readFileSync(p)
        return true
      } catch {
        return false
      }
    })
    if (!real) continue
    writeFileSync(
      join(dir, tool),
      `#!/bin/sh
case " $* " in
  *" -j "*|*" -json "*) ;;
  ${pattern})
    n=$(( $(cat ${count} 2>/dev/null || echo 0) + 1 )); echo $n > ${count}; echo "$n ${tool} $*" >> ${count}.log
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
  return {
    bin: dir,
    env: (n) => {
      rmSync(count, {force: true})
      return {PATH: `${dir}:${process.env.PATH}`, FAULT_AT: String(n)}
    },
    calls: () => Number(readFileSync(count, 'utf8').trim() || 0),
    cleanup: () => rmSync(dir, {recursive: true, force: true}),
  }
}

const SYSCTLS = ['net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding', 'net.ipv4.conf.all.accept_redirects', 'net.ipv4.conf.all.send_redirects', 'net.ipv4.conf.default.send_redirects', 'net.ipv4.conf.all.rp_filter', 'net.ipv4.conf.all.proxy_arp']

/** Everything a failing run must leave as it found it, in a host. */
export function hostState(h: SimHost): string {
  const files = (root: string) =>
    filesUnder(root)
      .filter((f) => !f.endsWith('.lock') && !/\/tmp\//.test(f) && !f.endsWith('.log'))
      .map((f) => `${f.slice(root.length)} ${readFileSync(f).length}`)
      .sort()
  // A link the undo made again is the same link to a user: only its index, MAC, link-local address and place in the list differ.
  const VOLATILE = new Set(['ifindex', 'link_index', 'address', 'broadcast', 'perm_address', 'link_netnsid'])
  const scrub = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(scrub).filter((x) => !(x && typeof x === 'object' && String((x as {local?: string}).local ?? (x as {dst?: string}).dst ?? '').startsWith('fe80:')))
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([k]) => !VOLATILE.has(k)).map(([k, x]) => [k, scrub(x)]))
    return v
  }
  const links = dump(h.ns)
    .split('\n')
    .map((line) => {
      if (!line.startsWith('[')) return line
      try {
        return (scrub(JSON.parse(line)) as unknown[]).map((o) => JSON.stringify(o)).sort().join('\n')
      } catch {
        return line
      }
    })
    .join('\n')
  return [
    links,
    h.sh('sysctl', SYSCTLS).trim(),
    h.processes().map((p) => p.replace(/^\d+ /, '')).sort().join(','),
    files(h.configDir).join('\n'),
    files(h.stateDir).join('\n'),
  ].join('\n--\n')
}

export interface SweepResult {
  /** Runs where the injected fault made the command fail. */
  failing: number
  /** Failing runs after which the host was not as before. */
  notRestored: {n: number; exit: number; error: string; changed: string[]}[]
  /** The N at which the command went through (every changing call done). */
  succeededAt?: number
  /** How many changing calls the command makes when none fails. */
  calls?: number
}

/**
 * Runs `run(env)` with the 1st, 2nd, ... changing call failing, until it
 * succeeds (or `max` runs). Before each run the host is put in its starting
 * state by `reset` (a no-op when a failing run restored it).
 */
export function sweep(h: SimHost, kit: FaultKit, run: (env: Record<string, string>) => {code: number; stderr: string}, opts: {max?: number} = {}): SweepResult {
  const result: SweepResult = {failing: 0, notRestored: []}
  for (let n = 1; n <= (opts.max ?? 60); n++) {
    const before = hostState(h)
    const r = run(kit.env(n))
    if (r.code === 0) {
      result.succeededAt = n
      result.calls = kit.calls()
      break
    }
    result.failing++
    const after = hostState(h)
    if (after !== before) result.notRestored.push({n, exit: r.code, error: r.stderr.split('\n').find((l) => l.startsWith('error:')) ?? r.stderr.slice(-200), changed: lineDiff(before, after)})
  }
  return result
}

/** What differs between two dumps, line by line (at most a few of each side). */
function lineDiff(before: string, after: string): string[] {
  const split = (t: string) => t.split(/\n|(?<=\}),(?=\{)/)
  const b = new Set(split(before))
  const a = new Set(split(after))
  return [...[...a].filter((l) => !b.has(l)).slice(0, 4).map((l) => `+ ${l.slice(0, 300)}`), ...[...b].filter((l) => !a.has(l)).slice(0, 4).map((l) => `- ${l.slice(0, 300)}`)]
}
