/**
 * What this kernel can do, found without changing anything: a module is
 * there if it is loaded (/sys/module), built in (modules.builtin), or
 * loadable (`modprobe -n`). Modules are machine-wide, so the answer is the
 * same in every namespace.
 */
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {release} from 'node:os'

import type {Runner} from './runner.js'

export interface Support {
  present: boolean
  /** How it was found, or why it is missing. */
  how: string
}

const builtinCache = new Map<string, string>()

function builtin(): string {
  const rel = release()
  if (!builtinCache.has(rel)) {
    let text = ''
    try {
      text = readFileSync(`/lib/modules/${rel}/modules.builtin`, 'utf8')
    } catch {
      text = ''
    }
    builtinCache.set(rel, text)
  }
  return builtinCache.get(rel)!
}

/** What modprobe said, per module list, for this process (modules are machine-wide; asked once per command, not per tunnel). */
const probed = new Map<string, Promise<Support>>()

/** Whether a kernel module (any of the names) is available. */
export function moduleSupport(runner: Runner, names: string[]): Promise<Support> {
  if (!runner.real) return findModule(runner, names, false)
  const key = names.join(',')
  if (!probed.has(key)) probed.set(key, findModule(runner, names, true))
  return probed.get(key)!
}

async function findModule(runner: Runner, names: string[], readIndex: boolean): Promise<Support> {
  for (const name of names) {
    if (existsSync(`/sys/module/${name}`)) return {present: true, how: `module ${name} is loaded`}
    if (new RegExp(`/${name}\\.ko(\\.[a-z]+)?$`, 'm').test(builtin())) return {present: true, how: `${name} is built into the kernel`}
  }
  for (const name of names) {
    // The module index modprobe reads answers without a process, unless a modprobe.d rule names the module.
    const known = readIndex ? loadable(name, moduleFiles()) : undefined
    if (known === true) return {present: true, how: `module ${name} can be loaded`}
    if (known === false) continue
    const r = await runner.probe({tool: 'modprobe', args: ['-n', '-q', name], netns: null})
    if (r.exitCode === 0) return {present: true, how: `module ${name} can be loaded`}
  }
  return {present: false, how: `no ${names.join('/')} module is loaded, built in or loadable on kernel ${release()}`}
}

/** What `modprobe -n` reads to find a module: the kernel's module index, and the rules of modprobe.d. */
export interface ModuleFiles {
  /** modules.dep and modules.alias of the running kernel (undefined: not readable). */
  dep?: string
  alias?: string
  /** Whether /lib/modules/<release> exists at all. */
  dir: boolean
  /** The modprobe.d configuration, all files. */
  conf: string
}

const MODPROBE_D = ['/etc/modprobe.d', '/run/modprobe.d', '/usr/local/lib/modprobe.d', '/lib/modprobe.d', '/usr/lib/modprobe.d']

let files: ModuleFiles | undefined
function moduleFiles(): ModuleFiles {
  if (files) return files
  const dir = `/lib/modules/${release()}`
  const read = (path: string) => {
    try {
      return readFileSync(path, 'utf8')
    } catch {
      return undefined
    }
  }
  const conf = MODPROBE_D.flatMap((d) => {
    try {
      return readdirSync(d)
        .filter((f) => f.endsWith('.conf'))
        .map((f) => read(`${d}/${f}`) ?? '')
    } catch {
      return []
    }
  })
  files = {
    dep: read(`${dir}/modules.dep`),
    alias: read(`${dir}/modules.alias`),
    dir: existsSync(dir),
    conf: [read('/etc/modprobe.conf') ?? '', ...conf].join('\n'),
  }
  return files
}

/**
 * Whether `modprobe -n NAME` would find the module, from the files it reads:
 * true (a module file or an alias in the index), false (no index for this
 * kernel, or not in it), undefined (a modprobe.d alias or install rule names
 * it, or the index is unreadable: only modprobe can tell).
 */
export function loadable(name: string, f: ModuleFiles): boolean | undefined {
  const norm = (x: string) => x.replaceAll('-', '_')
  const n = norm(name)
  const rule = new RegExp(`^\\s*(alias|install)\\s+(\\S+)`, 'gm')
  for (const m of f.conf.matchAll(rule)) if (norm(m[2]) === n) return undefined
  if (!f.dir) return false
  if (f.dep === undefined || f.alias === undefined) return undefined
  for (const line of f.dep.split('\n')) {
    const file = line.slice(0, line.indexOf(':'))
    const base = file.slice(file.lastIndexOf('/') + 1).replace(/\.ko(\.[a-z]+)?$/, '')
    if (file && norm(base) === n) return true
  }
  for (const line of f.alias.split('\n')) {
    const [word, alias] = line.split(/\s+/)
    if (word === 'alias' && alias !== undefined && norm(alias) === n) return true
  }
  return false
}

/** ESP in the kernel (CONFIG_INET_ESP): what kernel IPsec needs. */
export function espSupport(runner: Runner): Promise<Support> {
  return moduleSupport(runner, ['esp4'])
}

export function wireguardSupport(runner: Runner): Promise<Support> {
  return moduleSupport(runner, ['wireguard'])
}

export function tunSupport(): Support {
  return existsSync('/dev/net/tun')
    ? {present: true, how: '/dev/net/tun exists'}
    : {present: false, how: '/dev/net/tun is missing (CONFIG_TUN, or the device node)'}
}

/** XFRM netlink answers: `ip xfrm policy list` reads the SPD (the doctor's SPD check reads the same, so a run asks once). */
export async function xfrmSupport(runner: Runner): Promise<Support> {
  const r = await runner.probe({tool: 'ip', args: ['xfrm', 'policy', 'list']})
  return r.exitCode === 0 ? {present: true, how: 'ip xfrm answers'} : {present: false, how: `ip xfrm fails: ${r.stderr.trim().split('\n')[0]}`}
}
