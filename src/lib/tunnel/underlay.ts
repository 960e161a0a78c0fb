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

export interface RouteGet {
  dst?: string
  dev?: string
  prefsrc?: string
  type?: string
  table?: string
}

interface LinkState {
  mtu?: number
  operstate?: string
  flags?: string[]
}

/** The underlay a route and its device's link give (undefined: no route, or over a link that is down). */
export function underlayOf(route: RouteGet | undefined, link: (dev: string) => LinkState | undefined): Underlay | undefined {
  if (!route?.dev || (route.type && route.type !== 'unicast')) return undefined
  const l = link(route.dev)
  if (!l || !l.flags?.includes('UP') || l.operstate === 'DOWN') return undefined
  return {dev: route.dev, mtu: l.mtu ?? 1500, ...(route.prefsrc ? {src: route.prefsrc} : {})}
}

const DOTTED = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/

/**
 * `ip -j route get` of many destinations in one `ip -batch` (a process per
 * destination costs tens of ms on a busy host). The map holds the route of
 * each destination the kernel routes; a destination it does not (no route,
 * unreachable) maps to undefined. A destination whose answer cannot be told
 * apart (an IPv6 address the kernel prints in another form) is left out:
 * ask it alone.
 */
export async function routesTo(runner: Runner, dsts: string[]): Promise<Map<string, RouteGet | undefined>> {
  const out = new Map<string, RouteGet | undefined>()
  if (dsts.length === 0) return out
  const r = await runner.probe({tool: 'ip', args: ['-j', '-force', '-batch', '-'], input: dsts.map((d) => `route get ${d}`).join('\n') + '\n'})
  const got = new Map<string, RouteGet>()
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('[')) continue
    try {
      const route = (JSON.parse(line) as RouteGet[])[0]
      if (route?.dst) got.set(route.dst, route)
    } catch {
      // not a route
    }
  }
  for (const d of dsts) {
    if (got.has(d)) out.set(d, got.get(d))
    else if (DOTTED.test(d)) out.set(d, undefined)
  }
  return out
}

export async function underlayTo(runner: Runner, remote: string): Promise<Underlay | undefined> {
  const r = await runner.probe({tool: 'ip', args: ['-j', 'route', 'get', remote]})
  if (r.exitCode !== 0) return undefined
  const route = (JSON.parse(r.stdout) as RouteGet[])[0]
  if (!route?.dev || (route.type && route.type !== 'unicast')) return undefined
  const l = await runner.probe({tool: 'ip', args: ['-j', 'link', 'show', 'dev', route.dev]})
  const link = l.exitCode === 0 ? (JSON.parse(l.stdout) as LinkState[])[0] : undefined
  return underlayOf(route, () => link)
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
