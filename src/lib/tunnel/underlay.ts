/**
 * The underlay: the device and path a tunnel's outer packets take to the
 * peer. Read from `ip -j route get`, so the answer is the kernel's own.
 */
import {NetkitError} from '../errors.js'
import {type RouteGet, routeGet} from '../iproute2/route-get.js'
import type {Runner} from '../runner.js'
import {inNamespace} from '../wording.js'

export interface Underlay {
  dev: string
  mtu: number
  /** The source address the kernel picks toward the peer. */
  src?: string
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

export async function underlayTo(runner: Runner, remote: string): Promise<Underlay | undefined> {
  const route = await routeGet(runner, remote)
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
      fix: `bring the underlay up and check "ip route get ${remote}"${inNamespace(runner.netns)}, then run the command again (tunnel ${name} was not set up)`,
    })
  }
  return u
}
