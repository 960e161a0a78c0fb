/**
 * Kernel settings netkit reads and changes: the usual short names
 * (ip_forward, rp_filter.eth0, ...), full dotted names and /proc/sys-style
 * slash paths (the form that works for interface names with dots). Reads and
 * writes go through `sysctl` in the namespace, one process for many keys. The
 * value a key had before netkit first changed it is kept in the ledger, so it
 * can be put back (`sysctl restore`).
 */
import {readFileSync} from 'node:fs'

import {UsageError} from './errors.js'
import {claim, owned, release, scopeOf} from './ownership.js'
import type {Runner} from './runner.js'
import * as v from './validate.js'
import {inNamespace, netnsFlag} from './wording.js'

/** Short name -> [path template, allowed values]. {if} is the interface, all or default. */
const SHORT: Record<string, {path: string; perIf: boolean; values: string[]}> = {
  ip_forward: {path: 'net/ipv4/ip_forward', perIf: false, values: ['0', '1']},
  ip6_forward: {path: 'net/ipv6/conf/all/forwarding', perIf: false, values: ['0', '1']},
  forwarding: {path: 'net/ipv4/conf/{if}/forwarding', perIf: true, values: ['0', '1']},
  accept_redirects: {path: 'net/ipv4/conf/{if}/accept_redirects', perIf: true, values: ['0', '1']},
  send_redirects: {path: 'net/ipv4/conf/{if}/send_redirects', perIf: true, values: ['0', '1']},
  rp_filter: {path: 'net/ipv4/conf/{if}/rp_filter', perIf: true, values: ['0', '1', '2']},
  proxy_arp: {path: 'net/ipv4/conf/{if}/proxy_arp', perIf: true, values: ['0', '1']},
  src_valid_mark: {path: 'net/ipv4/conf/{if}/src_valid_mark', perIf: true, values: ['0', '1']},
  accept_redirects6: {path: 'net/ipv6/conf/{if}/accept_redirects', perIf: true, values: ['0', '1']},
}

export const SHORT_NAMES = Object.keys(SHORT)

export interface SysctlKey {
  /** Slash form, e.g. net/ipv4/conf/eth0/rp_filter: what sysctl is given (dots in names stay safe). */
  path: string
  /** Dotted form for people (ambiguous with dotted interface names; shown, not parsed). */
  name: string
  values?: string[]
}

/** Resolves what the user typed. Unknown keys are bad input. */
export function resolveKey(input: string): SysctlKey {
  const raw = input.trim()
  // A short name, then the interface: everything after the first dot (interface names may hold dots: eth0.100).
  const dot = raw.indexOf('.')
  const short = dot < 0 ? raw : raw.slice(0, dot)
  const ifname = dot < 0 ? undefined : raw.slice(dot + 1)
  const s = Object.hasOwn(SHORT, short) ? SHORT[short] : undefined
  if (s) {
    if (s.perIf) {
      const i = ifname ?? 'all'
      if (i !== 'all' && i !== 'default') v.ifname(i, 'interface')
      const path = s.path.replace('{if}', i)
      return {path, name: path.replaceAll('/', '.'), values: s.values}
    }
    if (ifname !== undefined) throw new UsageError(`${short} is not per interface`, `use "${short}" alone`)
    return {path: s.path, name: s.path.replaceAll('/', '.'), values: s.values}
  }
  if (/^net[./]/.test(raw) && /^[A-Za-z0-9_.\-/@]+$/.test(raw) && !raw.includes('..')) {
    const path = raw.includes('/') ? raw.replace(/^\/proc\/sys\//, '') : raw.replaceAll('.', '/')
    return {path, name: path.replaceAll('/', '.')}
  }
  throw new UsageError(
    `unknown sysctl "${input}"`,
    `use a short name (${SHORT_NAMES.join(', ')}; per interface as rp_filter.eth0), or a net.* key such as net/ipv4/conf/eth0/rp_filter`,
  )
}

/** The name "netkit sysctl set" takes for a slash path: the short one where there is one (ip_forward, send_redirects.eth0), else the path. */
export function shortName(path: string): string {
  for (const [short, s] of Object.entries(SHORT)) if (!s.perIf && s.path === path) return short
  for (const [short, s] of Object.entries(SHORT)) {
    if (!s.perIf) continue
    const [head, tail] = s.path.split('{if}')
    if (path.startsWith(head) && path.endsWith(tail) && path.length > head.length + tail.length) {
      const ifname = path.slice(head.length, path.length - tail.length)
      if (!ifname.includes('/')) return `${short}.${ifname}`
    }
  }
  return path
}

/** The command that sets a key where it was read: runnable as printed, in that namespace. */
export function setCommand(path: string, value: string, netns?: string | null): string {
  return `netkit sysctl set ${shortName(path)} ${value}${netnsFlag(netns)}`
}

export function checkValue(key: SysctlKey, value: string): string {
  const val = value.trim()
  if (key.values && !key.values.includes(val)) throw new UsageError(`${key.name} cannot be ${JSON.stringify(value)}`, `use one of ${key.values.join(', ')}`)
  if (!/^[\w.:,/ -]{1,64}$/.test(val)) throw new UsageError(`${JSON.stringify(value)} is not a value netkit writes`, 'give a number or a short word')
  return val
}

/** Reads keys with one `sysctl` process. A key that does not exist is bad input. */
export async function getSysctls(runner: Runner, keys: SysctlKey[]): Promise<string[]> {
  const r = await runner.probe({tool: 'sysctl', args: ['-n', ...keys.map((k) => k.path)]})
  if (r.exitCode !== 0) {
    const missing = /cannot stat \/proc\/sys\/(\S+?):/.exec(r.stderr)?.[1]
    throw new UsageError(
      `sysctl ${missing ? missing.replaceAll('/', '.') : keys.map((k) => k.name).join(' ')} does not exist${inNamespace(runner.netns)}`,
      'check the name (and that the interface exists)',
      'E_NO_SYSCTL',
    )
  }
  return r.stdout
    .split('\n')
    .slice(0, keys.length)
    .map((s) => s.trim())
}

/** A /proc/sys path as `sysctl` names it: dots between the parts, a dot inside a part (an interface's name) as a slash. */
export const sysctlName = (path: string): string =>
  path
    .split('/')
    .map((part) => part.replaceAll('.', '/'))
    .join('.')

/**
 * The values of the keys (/proc/sys paths) that exist, by their `sysctl` name
 * (net.ipv4.conf.all.rp_filter); a key that does not exist is left out. Where
 * netkit runs in the namespace it looks at, straight from /proc/sys (no
 * process); in another namespace, one `sysctl -e` there for all of them.
 */
export async function readSysctls(runner: Runner, paths: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  if (paths.length === 0) return out
  if (runner.real && !runner.netns) {
    for (const path of paths) {
      try {
        out.set(sysctlName(path), readFileSync(`/proc/sys/${path}`, 'utf8').trim())
      } catch {
        // not there (an interface that does not exist)
      }
    }
    return out
  }
  const text = await runner.read({tool: 'sysctl', args: ['-e', ...paths]})
  for (const line of text.split('\n')) {
    const i = line.indexOf(' = ')
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 3).trim())
  }
  return out
}

/** Sets a key (recording its original value the first time). False when it already had the value. */
export async function setSysctl(runner: Runner, key: SysctlKey, value: string): Promise<boolean> {
  const [current] = await getSysctls(runner, [key])
  const val = checkValue(key, value)
  if (current === val) return false
  await runner.run({tool: 'sysctl', args: ['-q', '-w', `${key.path}=${val}`], object: `sysctl ${key.name}`})
  if (!runner.dryRun) claim(scopeOf(runner.netns), 'sysctl', key.path, {original: current})
  return true
}

export interface OwnedSysctl {
  key: string
  value: string
  original: string
}

/** The keys netkit changed here, as recorded (slash form: dots in interface names stay safe). */
export function ownedSysctlKeys(runner: Runner): SysctlKey[] {
  return Object.keys(owned(scopeOf(runner.netns), 'sysctl')).map((p) => ({path: p, name: p.replaceAll('/', '.')}))
}

export async function ownedSysctls(runner: Runner): Promise<OwnedSysctl[]> {
  const rec = owned(scopeOf(runner.netns), 'sysctl')
  const keys = ownedSysctlKeys(runner)
  if (keys.length === 0) return []
  // One read; should a key be gone (its interface deleted), each on its own, the gone one as "?".
  const values = await getSysctls(runner, keys).catch(() =>
    Promise.all(
      keys.map((k) =>
        getSysctls(runner, [k]).then(
          ([x]) => x,
          () => '?',
        ),
      ),
    ),
  )
  return keys.map((k, i) => ({key: k.name, value: values[i], original: String(rec[k.path].meta?.original ?? '')}))
}

/** The interface of a per-interface key (net/ipv4/conf/eth0/rp_filter: eth0; all and default: none). */
function interfaceOf(path: string): string | undefined {
  const m = /^net\/ipv[46]\/(?:conf|neigh)\/([^/]+)\//.exec(path)
  return m && m[1] !== 'all' && m[1] !== 'default' ? m[1] : undefined
}

/**
 * Forgets the recorded keys of interfaces that are gone (a tunnel's device,
 * charon's ipsec0): the key went with its interface, there is nothing to put
 * back, and a new interface of that name starts from the defaults.
 */
export async function forgetGoneInterfaces(runner: Runner): Promise<string[]> {
  if (runner.dryRun) return []
  const scope = scopeOf(runner.netns)
  const keys = Object.keys(owned(scope, 'sysctl')).filter((p) => interfaceOf(p) !== undefined)
  if (keys.length === 0) return []
  const r = await runner.probe({tool: 'ip', args: ['-j', 'link', 'show']})
  if (r.exitCode !== 0) return []
  const present = new Set((JSON.parse(r.stdout || '[]') as {ifname: string}[]).map((l) => l.ifname))
  const gone = keys.filter((p) => !present.has(interfaceOf(p)!))
  for (const p of gone) release(scope, 'sysctl', p)
  return gone
}

/** Puts back the value a key had before netkit changed it, and forgets it. False if netkit never changed it. */
export async function restoreSysctl(runner: Runner, key: SysctlKey): Promise<boolean> {
  const rec = owned(scopeOf(runner.netns), 'sysctl')[key.path]
  if (!rec) return false
  const original = String(rec.meta?.original ?? '')
  let current: string
  try {
    ;[current] = await getSysctls(runner, [key])
  } catch {
    // Gone with its interface: nothing to put back, nothing left to remember.
    if (!runner.dryRun) release(scopeOf(runner.netns), 'sysctl', key.path)
    return true
  }
  if (current !== original) await runner.run({tool: 'sysctl', args: ['-q', '-w', `${key.path}=${original}`], object: `sysctl ${key.name}`})
  if (!runner.dryRun) release(scopeOf(runner.netns), 'sysctl', key.path)
  return true
}
