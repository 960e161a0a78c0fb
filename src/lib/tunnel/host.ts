/**
 * Host settings a routed tunnel needs, as plan steps with undo: IP forwarding
 * when subnets are routed through the tunnel, and proxy ARP on the interface
 * named by --proxy-arp. The value a setting had before netkit changed it is
 * kept in the ledger, and restored when the last tunnel that needs it goes.
 */
import {claim, owned, release, scopeOf} from '../ownership.js'
import type {Step} from '../plan.js'
import type {Runner} from '../runner.js'
import type {TunnelContext, TunnelDef} from './types.js'

interface Setting {
  path: string
  value: string
  /** Another tunnel that still needs it. */
  neededBy: (d: TunnelDef) => boolean
}

const routed = (d: TunnelDef) => d.localSubnets.length > 0 || d.remoteSubnets.length > 0

function settingsFor(def: TunnelDef, underlay?: string): Setting[] {
  const out: Setting[] = []
  if (routed(def)) {
    const v6 = [...def.localSubnets, ...def.remoteSubnets].some((s) => s.includes(':'))
    out.push({path: 'net/ipv4/ip_forward', value: '1', neededBy: routed})
    if (v6) out.push({path: 'net/ipv6/conf/all/forwarding', value: '1', neededBy: routed})
    // A router that sends ICMP redirects tells its peers to go around the tunnel. The kernel
    // sends them if "all" OR the interface says so; "default" is what new devices (the
    // tunnel's own) inherit. Before forwarding is on, "all" also accepts them.
    for (const conf of ['all', 'default', ...(underlay ? [underlay] : [])]) {
      out.push({path: `net/ipv4/conf/${conf}/send_redirects`, value: '0', neededBy: routed})
    }
    out.push({path: 'net/ipv4/conf/all/accept_redirects', value: '0', neededBy: routed})
  }
  if (def.proxyArp) {
    const ifname = def.proxyArp
    out.push({path: `net/ipv4/conf/${ifname}/proxy_arp`, value: '1', neededBy: (d) => d.proxyArp === ifname})
  }
  return out
}

async function readSysctl(runner: Runner, path: string): Promise<string> {
  return (await runner.read({tool: 'sysctl', args: ['-n', path]})).trim()
}

async function writeSysctl(runner: Runner, path: string, value: string): Promise<void> {
  await runner.run({tool: 'sysctl', args: ['-q', '-w', `${path}=${value}`], object: `sysctl ${path.replaceAll('/', '.')}`})
}

/** The underlay device: the one the route to the peer leaves by. */
async function underlayOf(def: TunnelDef, ctx: TunnelContext): Promise<string | undefined> {
  if (def.vxlan) return def.vxlan.dev
  const r = await ctx.runner.probe({tool: 'ip', args: ['-j', 'route', 'get', def.remote]})
  try {
    return (JSON.parse(r.stdout) as {dev?: string}[])[0]?.dev
  } catch {
    return undefined
  }
}

export async function hostSteps(def: TunnelDef, ctx: TunnelContext): Promise<Step[]> {
  const scope = scopeOf(ctx.runner.netns)
  const underlay = routed(def) ? await underlayOf(def, ctx) : undefined
  return settingsFor(def, underlay).map((s) => {
    let before: string | undefined
    return {
      title: `set ${s.path.replaceAll('/', '.')} = ${s.value}`,
      apply: async () => {
        before = await readSysctl(ctx.runner, s.path)
        if (before === s.value) return false
        await writeSysctl(ctx.runner, s.path, s.value)
        if (!ctx.runner.dryRun) claim(scope, 'sysctl', s.path, {original: before})
      },
      undo: async () => {
        if (before === undefined || before === s.value) return
        await writeSysctl(ctx.runner, s.path, before)
        if (!ctx.runner.dryRun) release(scope, 'sysctl', s.path)
      },
    }
  })
}

/** Restores the settings this tunnel needed, unless another tunnel still needs them. */
export async function restoreHost(def: TunnelDef, ctx: TunnelContext, others: TunnelDef[]): Promise<void> {
  const scope = scopeOf(ctx.runner.netns)
  const recorded = owned(scope, 'sysctl')
  const underlay = routed(def) ? await underlayOf(def, ctx) : undefined
  for (const s of settingsFor(def, underlay)) {
    if (others.some((o) => s.neededBy(o))) continue
    const original = recorded[s.path]?.meta?.original
    if (typeof original !== 'string') continue
    await writeSysctl(ctx.runner, s.path, original).catch(() => {})
    if (!ctx.runner.dryRun) release(scope, 'sysctl', s.path)
  }
}
