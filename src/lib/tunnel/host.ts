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

function settingsFor(def: TunnelDef): Setting[] {
  const out: Setting[] = []
  const routed = (d: TunnelDef) => d.localSubnets.length > 0 || d.remoteSubnets.length > 0
  if (routed(def)) {
    const v6 = [...def.localSubnets, ...def.remoteSubnets].some((s) => s.includes(':'))
    out.push({path: 'net/ipv4/ip_forward', value: '1', neededBy: routed})
    if (v6) out.push({path: 'net/ipv6/conf/all/forwarding', value: '1', neededBy: routed})
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

export async function hostSteps(def: TunnelDef, ctx: TunnelContext): Promise<Step[]> {
  const scope = scopeOf(ctx.runner.netns)
  return settingsFor(def).map((s) => {
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
  for (const s of settingsFor(def)) {
    if (others.some((o) => s.neededBy(o))) continue
    const original = recorded[s.path]?.meta?.original
    if (typeof original !== 'string') continue
    await writeSysctl(ctx.runner, s.path, original).catch(() => {})
    if (!ctx.runner.dryRun) release(scope, 'sysctl', s.path)
  }
}
