/**
 * Leftovers: tunnel objects netkit owns that no tunnel definition accounts
 * for (after a crash or a hand edit), and definitions whose objects are gone.
 */
import type {Runner} from '../../runner.js'
import {NETKIT_ALIAS, NETKIT_PROTO} from '../../ownership.js'
import {type Check, type Finding, finding} from '../types.js'

const TUNNEL_DEV = /^(wg|vx)-/

export const leftovers: Check = {
  id: 'leftovers.tunnel-objects',
  title: 'No leftover tunnel objects',
  group: 'leftovers',
  async run(ctx) {
    const links = await ctx.links()
    const known = new Set(ctx.allTunnels.flatMap((t) => [t.wireguard?.ifname, t.vxlan?.ifname].filter(Boolean) as string[]))
    const out: Finding[] = []
    for (const l of links) {
      if (!TUNNEL_DEV.test(l.ifname) || l.ifalias !== NETKIT_ALIAS || known.has(l.ifname)) continue
      out.push(finding(this, 'warn', {
        subject: l.ifname,
        reason: `link ${l.ifname} was made by a netkit tunnel that no longer exists`,
        fix: `netkit link del ${l.ifname}`,
        evidence: {ifname: l.ifname, alias: l.ifalias},
        remedy: {
          describe: `ip link del ${l.ifname}`,
          apply: async (runner: Runner) => {
            await runner.run({tool: 'ip', args: ['link', 'del', l.ifname], object: `link ${l.ifname}`})
          },
        },
      }))
    }
    // Routes with netkit's protocol through a tunnel device that is not known.
    const r = await ctx.runner.probe({tool: 'ip', args: ['-j', 'route', 'show', 'table', 'all', 'proto', String(NETKIT_PROTO)]})
    const routes = r.exitCode === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as {dst: string; dev?: string; table?: string}[]) : []
    for (const route of routes) {
      if (!route.dev || !TUNNEL_DEV.test(route.dev) || known.has(route.dev) || links.some((l) => l.ifname === route.dev)) continue
      out.push(finding(this, 'warn', {subject: `route ${route.dst}`, reason: `route ${route.dst} points to ${route.dev}, which is gone`, fix: `netkit route del ${route.dst}`, evidence: route}))
    }
    for (const t of ctx.tunnels) {
      const dev = t.wireguard?.ifname ?? t.vxlan?.ifname
      if (dev && !links.some((l) => l.ifname === dev)) {
        out.push(finding(this, 'warn', {subject: t.name, reason: `tunnel ${t.name} is defined but its device ${dev} is missing (down, or lost after a reboot)`, fix: `netkit tunnel up ${t.name}${ctx.runner.netns ? ` --netns ${ctx.runner.netns}` : ''}`, evidence: {tunnel: t.name, dev}}))
      }
    }
    if (out.length === 0) out.push(finding(this, 'ok', {evidence: {tunnels: ctx.tunnels.length}}))
    return out
  },
}

export const leftoverChecks = [leftovers]
