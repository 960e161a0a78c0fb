/**
 * What this kernel can do, found without changing anything: a module is
 * there if it is loaded (/sys/module), built in (modules.builtin), or
 * loadable (`modprobe -n`). Modules are machine-wide, so the answer is the
 * same in every namespace.
 */
import {existsSync, readFileSync} from 'node:fs'
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
  if (!runner.real) return findModule(runner, names)
  const key = names.join(',')
  if (!probed.has(key)) probed.set(key, findModule(runner, names))
  return probed.get(key)!
}

async function findModule(runner: Runner, names: string[]): Promise<Support> {
  for (const name of names) {
    if (existsSync(`/sys/module/${name}`)) return {present: true, how: `module ${name} is loaded`}
    if (new RegExp(`/${name}\\.ko(\\.[a-z]+)?$`, 'm').test(builtin())) return {present: true, how: `${name} is built into the kernel`}
  }
  for (const name of names) {
    const r = await runner.probe({tool: 'modprobe', args: ['-n', '-q', name], netns: null})
    if (r.exitCode === 0) return {present: true, how: `module ${name} can be loaded`}
  }
  return {present: false, how: `no ${names.join('/')} module is loaded, built in or loadable on kernel ${release()}`}
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

/** XFRM netlink answers: `ip xfrm policy count` reads the SPD size. */
export async function xfrmSupport(runner: Runner): Promise<Support> {
  const r = await runner.probe({tool: 'ip', args: ['xfrm', 'policy', 'count']})
  return r.exitCode === 0 ? {present: true, how: 'ip xfrm answers'} : {present: false, how: `ip xfrm fails: ${r.stderr.trim().split('\n')[0]}`}
}
