/**
 * The underlay: the device and path a tunnel's outer packets take to the
 * peer. Read from `ip -j route get`, so the answer is the kernel's own.
 */
import {NetkitError} from '../errors.js'
import type {Runner} from '../runner.js'

export interface Underlay {
  dev: string
  mtu: number
  /** The source address the kernel picks toward the peer. */
  src?: string
}

interface RouteGet {
  dev?: string
  prefsrc?: string
  type?: string
}

export async function underlayTo(runner: Runner, remote: string): Promise<Underlay | undefined> {
  const r = await runner.probe({tool: 'ip', args: ['-j', 'route', 'get', remote]})
  if (r.exitCode !== 0) return undefined
  const route = (JSON.parse(r.stdout) as RouteGet[])[0]
  if (!route?.dev || (route.type && route.type !== 'unicast')) return undefined
  const l = await runner.probe({tool: 'ip', args: ['-j', 'link', 'show', 'dev', route.dev]})
  const link = l.exitCode === 0 ? (JSON.parse(l.stdout) as {mtu?: number; operstate?: string; flags?: string[]}[])[0] : undefined
  if (!link || !link.flags?.includes('UP') || link.operstate === 'DOWN') return undefined
  return {dev: route.dev, mtu: link.mtu ?? 1500, ...(route.prefsrc ? {src: route.prefsrc} : {})}
}

/** The underlay toward the peer, or a clear error: nothing can work without it. */
export async function requireUnderlay(runner: Runner, remote: string, name: string): Promise<Underlay> {
  const u = await underlayTo(runner, remote)
  if (!u) {
    throw new NetkitError('E_UNREACHABLE', `the peer ${remote} is unreachable from here: there is no route to it over an interface that is up`, {
      fix: `bring the underlay up and check "ip route get ${remote}"${runner.netns ? ` in namespace ${runner.netns}` : ''}, then run the command again (tunnel ${name} was not set up)`,
    })
  }
  return u
}
