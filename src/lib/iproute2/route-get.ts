/**
 * The kernel's own answer to "how would a packet to X leave?": `ip -j route
 * get`. One reader for every module that asks (the underlay, the doctor, the
 * wizard, tunnel definitions), for one destination or many in one process.
 */
import type {Runner} from '../runner.js'

/** What `ip -j route get` says of one destination (the fields netkit reads). */
export interface RouteGet {
  dst?: string
  dev?: string
  gateway?: string
  prefsrc?: string
  type?: string
  table?: string
}

/**
 * The route a packet to `dst` takes (with `mark`: one carrying that firewall
 * mark, as a WireGuard device's own packets do), or undefined when the kernel
 * has none or the answer cannot be read.
 */
export async function routeGet(runner: Runner, dst: string, opts: {mark?: number} = {}): Promise<RouteGet | undefined> {
  const r = await runner.probe({tool: 'ip', args: ['-j', 'route', 'get', dst, ...(opts.mark ? ['mark', String(opts.mark)] : [])]})
  if (r.exitCode !== 0) return undefined
  try {
    return (JSON.parse(r.stdout) as RouteGet[])[0]
  } catch {
    return undefined
  }
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
