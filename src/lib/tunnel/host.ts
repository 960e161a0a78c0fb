/**
 * What a tunnel needs of its host, in one place: `tunnel add` makes exactly
 * these settings (and `tunnel del` puts them back when the last tunnel that
 * needs one goes), and the doctor checks exactly these. A host that only
 * netkit configured therefore passes the doctor.
 *
 * From first principles:
 * - Forwarding, per family, only when the tunnel routes subnets: the host then
 *   passes packets between the tunnel and the subnets behind it. A tunnel with
 *   only its own address (host to host) forwards nothing.
 * - A forwarding host takes no ICMP redirects: `all.accept_redirects` 0. The
 *   kernel does that itself when ip_forward goes to 1 (and sets it back to 1
 *   when ip_forward goes to 0); on a forwarding interface it accepts a redirect
 *   only if "all" AND the interface say so, so "all" is the one that counts.
 * - A host sends an ICMP redirect only when it forwards a packet out of the
 *   interface it came in on. A tunnel with a device of its own (WireGuard,
 *   VXLAN, IPsec on kernel-libipsec's ipsec0) forwards between the LAN and that
 *   device, never in and out of one. Only IPsec on the kernel data path sends
 *   the tunnel's traffic out of the underlay, where the LAN may be too (a
 *   one-armed gateway): the redirect would tell the LAN's hosts to go around
 *   the gateway, and so around the tunnel. There `send_redirects` must be off
 *   on "all" and on the underlay (the kernel sends if either says so).
 * - Proxy ARP on the interface named by --proxy-arp.
 *
 * The value a setting had before netkit changed it is kept in the ledger.
 */
import {claim, owned, release, scopeOf} from '../ownership.js'
import type {Step} from '../plan.js'
import type {Runner} from '../runner.js'
import {charonScope, charonUsesLibipsec} from './ipsec/charon.js'
import {driverFor} from './registry.js'
import type {Datapath, TunnelContext, TunnelDef} from './types.js'
import {routeGet} from '../iproute2/route-get.js'

export type SettingKind = 'forwarding' | 'redirects' | 'proxy_arp'

export interface HostSetting {
  kind: SettingKind
  /** Slash form, as sysctl is given it: net/ipv4/ip_forward. */
  path: string
  value: string
  /** Why the tunnel needs it, in a few words. */
  why: string
}

/** What the settings depend on besides the definition. */
export interface HostFacts {
  /** The data path the tunnel uses. */
  datapath: Datapath
  /** The device the route to the peer leaves by (read only where a setting depends on it). */
  underlay?: string
}

export const routesSubnets = (d: TunnelDef): boolean => d.localSubnets.length > 0 || d.remoteSubnets.length > 0

const subnetsOf = (d: TunnelDef) => [...d.localSubnets, ...d.remoteSubnets]

/** Whether the tunnel's own traffic may leave by the interface it came in on: kernel IPsec routing subnets. */
export function forwardsOutUnderlay(def: TunnelDef, datapath: Datapath): boolean {
  return def.type === 'ipsec' && datapath === 'kernel' && routesSubnets(def)
}

/** The host settings one tunnel needs, in the order they are made. */
export function hostSettings(def: TunnelDef, facts: HostFacts): HostSetting[] {
  const out: HostSetting[] = []
  const v4 = subnetsOf(def).some((s) => !s.includes(':'))
  const v6 = subnetsOf(def).some((s) => s.includes(':'))
  if (v4) {
    out.push({kind: 'forwarding', path: 'net/ipv4/ip_forward', value: '1', why: 'it routes IPv4 subnets'})
    out.push({kind: 'redirects', path: 'net/ipv4/conf/all/accept_redirects', value: '0', why: 'a forwarding host takes no ICMP redirects'})
  }
  if (v6) out.push({kind: 'forwarding', path: 'net/ipv6/conf/all/forwarding', value: '1', why: 'it routes IPv6 subnets'})
  if (v4 && forwardsOutUnderlay(def, facts.datapath)) {
    const why = 'its traffic leaves by the underlay, where the LAN may be too: a redirect would send the LAN around the tunnel'
    out.push({kind: 'redirects', path: 'net/ipv4/conf/all/send_redirects', value: '0', why})
    if (facts.underlay) out.push({kind: 'redirects', path: `net/ipv4/conf/${facts.underlay}/send_redirects`, value: '0', why})
  }
  if (def.proxyArp)
    out.push({kind: 'proxy_arp', path: `net/ipv4/conf/${def.proxyArp}/proxy_arp`, value: '1', why: `it answers ARP for remote addresses on ${def.proxyArp}`})
  return out
}

/**
 * What the kernel changes by itself when a setting is written (so that a dry
 * run says what the real run will do): ip_forward sets all.accept_redirects
 * to its opposite.
 */
export function kernelFollows(path: string, value: string): Record<string, string> {
  if (path === 'net/ipv4/ip_forward' || path === 'net/ipv4/conf/all/forwarding') return {'net/ipv4/conf/all/accept_redirects': value === '1' ? '0' : '1'}
  return {}
}

/** The underlay device: the one the route to the peer leaves by. */
async function underlayOf(def: TunnelDef, runner: Runner): Promise<string | undefined> {
  if (def.vxlan) return def.vxlan.dev
  if (!def.remote) return undefined
  return (await routeGet(runner, def.remote))?.dev
}

/** The data path a defined tunnel uses here: for IPsec, what this namespace's charon runs with, else what the host offers. */
async function datapathOf(def: TunnelDef, runner: Runner, dir: string): Promise<Datapath> {
  if (def.type === 'ipsec') {
    const libipsec = charonUsesLibipsec(charonScope(dir, def.netns))
    if (libipsec !== undefined) return libipsec ? 'userspace' : 'kernel'
  }
  try {
    return (await driverFor(def.type).datapath({runner}, def.datapath)).datapath
  } catch {
    return def.datapath === 'kernel' ? 'kernel' : 'userspace'
  }
}

/** The settings a defined tunnel needs on this host (what the doctor checks). `dir`: the scope directory of its namespace. */
export async function tunnelHostSettings(def: TunnelDef, runner: Runner, dir: string, datapath?: Datapath): Promise<HostSetting[]> {
  const dp = datapath ?? (await datapathOf(def, runner, dir))
  const underlay = forwardsOutUnderlay(def, dp) ? await underlayOf(def, runner) : undefined
  return hostSettings(def, {datapath: dp, underlay})
}

async function readSysctl(runner: Runner, path: string): Promise<string> {
  return (await runner.read({tool: 'sysctl', args: ['-n', path]})).trim()
}

async function writeSysctl(runner: Runner, path: string, value: string): Promise<void> {
  await runner.run({tool: 'sysctl', args: ['-q', '-w', `${path}=${value}`], object: `sysctl ${path.replaceAll('/', '.')}`})
}

async function settingsFor(def: TunnelDef, ctx: TunnelContext): Promise<HostSetting[]> {
  const underlay = forwardsOutUnderlay(def, ctx.datapath) ? await underlayOf(def, ctx.runner) : undefined
  return hostSettings(def, {datapath: ctx.datapath, underlay})
}

export async function hostSteps(def: TunnelDef, ctx: TunnelContext): Promise<Step[]> {
  const scope = scopeOf(ctx.runner.netns)
  // A dry run changes nothing, so it keeps what the kernel would hold by now: it then prints what the real run does.
  const wouldBe = new Map<string, string>()
  return (await settingsFor(def, ctx)).map((s) => {
    let before: string | undefined
    return {
      title: `set ${s.path.replaceAll('/', '.')} = ${s.value}`,
      apply: async () => {
        before = wouldBe.get(s.path) ?? (await readSysctl(ctx.runner, s.path))
        if (before === s.value) return false
        await writeSysctl(ctx.runner, s.path, s.value)
        if (ctx.runner.dryRun) {
          for (const [k, v] of Object.entries({...kernelFollows(s.path, s.value), [s.path]: s.value})) wouldBe.set(k, v)
        } else {
          claim(scope, 'sysctl', s.path, {original: before})
        }
      },
      undo: async () => {
        if (before === undefined || before === s.value) return
        await writeSysctl(ctx.runner, s.path, before)
        if (!ctx.runner.dryRun) release(scope, 'sysctl', s.path)
      },
    }
  })
}

/** Restores the settings this tunnel needed (last made, first restored), unless another tunnel still needs them. */
export async function restoreHost(def: TunnelDef, ctx: TunnelContext, others: TunnelDef[]): Promise<void> {
  const scope = scopeOf(ctx.runner.netns)
  const recorded = owned(scope, 'sysctl')
  const mine = await settingsFor(def, ctx)
  const still = new Set<string>()
  for (const o of others) {
    // One charon per namespace: the other IPsec tunnels share this one's data path.
    const dp = o.type === def.type ? ctx.datapath : undefined
    for (const s of await tunnelHostSettings(o, ctx.runner, ctx.configDir, dp).catch(() => [])) still.add(`${s.path}=${s.value}`)
  }
  for (const s of mine.reverse()) {
    if (still.has(`${s.path}=${s.value}`)) continue
    const original = recorded[s.path]?.meta?.original
    if (typeof original !== 'string') continue
    await writeSysctl(ctx.runner, s.path, original).catch(() => {})
    if (!ctx.runner.dryRun) release(scope, 'sysctl', s.path)
  }
}
