/**
 * Named network namespaces (`ip netns`), as iproute2 keeps them in /run/netns.
 * netkit records the namespaces it creates, and deletes only those.
 */
import {existsSync, readdirSync, readFileSync} from 'node:fs'

import {UsageError} from '../errors.js'
import {claim, dropScope, owned, owns, release, ROOT_SCOPE, scopeOf} from '../ownership.js'
import type {Runner} from '../runner.js'

export const NETNS_DIR = '/run/netns'

export function netnsExists(name: string): boolean {
  return existsSync(`${NETNS_DIR}/${name}`)
}

export interface NetnsInfo {
  name: string
  /** The namespace id as seen from the caller's namespace, if one is assigned. */
  id: number | null
  owned: boolean
}

export async function listNetns(runner: Runner): Promise<NetnsInfo[]> {
  const out = await runner.read({tool: 'ip', args: ['-j', 'netns', 'list'], netns: null})
  const rows = (out.trim() ? JSON.parse(out) : []) as {name: string; id?: number}[]
  const mine = owned(ROOT_SCOPE, 'netns')
  // ip -j netns list omits namespaces it cannot open; the directory is the truth.
  let names: string[] = []
  try {
    names = readdirSync(NETNS_DIR)
  } catch {
    names = rows.map((r) => r.name)
  }
  const ids = new Map(rows.map((r) => [r.name, r.id ?? null]))
  return names.sort().map((name) => ({name, id: ids.get(name) ?? null, owned: Boolean(mine[name])}))
}

export async function addNetns(runner: Runner, name: string): Promise<boolean> {
  if (netnsExists(name)) return false
  await runner.run({tool: 'ip', args: ['netns', 'add', name], netns: null, object: `network namespace ${name}`})
  try {
    // A new namespace has its loopback down; everything that runs in it expects it up.
    await runner.run({tool: 'ip', args: ['link', 'set', 'lo', 'up'], netns: name, object: `loopback of ${name}`})
  } catch (e) {
    await runner.run({tool: 'ip', args: ['netns', 'del', name], netns: null, object: `network namespace ${name}`}).catch(() => {})
    throw e
  }
  if (!runner.dryRun) claim(ROOT_SCOPE, 'netns', name)
  return true
}

export async function delNetns(runner: Runner, name: string, opts: {force?: boolean} = {}): Promise<boolean> {
  if (!netnsExists(name)) {
    if (!runner.dryRun) release(ROOT_SCOPE, 'netns', name)
    return false
  }
  if (!opts.force && !owns(ROOT_SCOPE, 'netns', name)) {
    throw new UsageError(`network namespace ${name} was not created by netkit`, 'netkit deletes only what it owns; pass --force to delete it anyway')
  }
  // Processes keep a deleted namespace alive, unnamed and out of reach: say so instead of orphaning them.
  const pids = await netnsPids(runner, name)
  if (pids.length > 0 && !opts.force) {
    const names = pids.slice(0, 4).map((p) => {
      try {
        return `${readFileSync(`/proc/${p}/comm`, 'utf8').trim()} (${p})`
      } catch {
        return String(p)
      }
    })
    throw new UsageError(
      `${pids.length} process${pids.length > 1 ? 'es' : ''} still run in network namespace ${name}: ${names.join(', ')}${pids.length > 4 ? ', ...' : ''}`,
      `stop them first (for netkit's tunnels: netkit tunnel del NAME --netns ${name}), or pass --force to delete it anyway`,
      'E_BUSY',
    )
  }
  await runner.run({tool: 'ip', args: ['netns', 'del', name], netns: null, object: `network namespace ${name}`})
  if (!runner.dryRun) {
    release(ROOT_SCOPE, 'netns', name)
    dropScope(scopeOf(name))
  }
  return true
}

/** Process ids still running in a namespace (they keep it alive after deletion). */
export async function netnsPids(runner: Runner, name: string): Promise<number[]> {
  const out = await runner.read({tool: 'ip', args: ['netns', 'pids', name], netns: null})
  return out.split(/\s+/).filter(Boolean).map(Number)
}
