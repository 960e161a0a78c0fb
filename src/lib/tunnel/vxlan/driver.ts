/**
 * VXLAN between two hosts: a kernel vxlan link to the remote, an address, and
 * routes to the remote subnets. VXLAN does not encrypt: the command says so.
 */
import {NetkitError} from '../../errors.js'
import {NETKIT_ALIAS} from '../../ownership.js'
import type {Step} from '../../plan.js'
import type {BatchError} from '../../runner.js'
import {removeRoutes, routeSteps} from '../routes.js'
import type {TunnelContext, TunnelDef, TunnelDriver, TunnelStatus} from '../types.js'
import {inNamespace} from '../../wording.js'

export const VXLAN_OVERHEAD = 50

interface LinkJson {
  ifname: string
  operstate?: string
  flags?: string[]
  ifalias?: string
  stats64?: {rx?: {bytes: number}; tx?: {bytes: number}}
}

async function readLink(ctx: TunnelContext, ifname: string): Promise<LinkJson | undefined> {
  const r = await ctx.runner.probe({tool: 'ip', args: ['-j', '-s', 'link', 'show', 'dev', ifname]})
  if (r.exitCode !== 0) return undefined
  return (JSON.parse(r.stdout) as LinkJson[])[0]
}

export const vxlanDriver: TunnelDriver = {
  type: 'vxlan',

  async datapath() {
    return {datapath: 'kernel', reason: 'VXLAN is handled by the kernel (it does not encrypt)'}
  },

  async up(def: TunnelDef, ctx: TunnelContext): Promise<Step[]> {
    const v = def.vxlan!
    const steps: Step[] = [
      {
        title: `create vxlan link ${v.ifname} (VNI ${v.vni}) to ${def.remote}`,
        apply: async () => {
          const existing = await readLink(ctx, v.ifname)
          // A dry run of --replace finds the old tunnel's own device, which the real run removes first.
          if (existing && !(ctx.replacing && existing.ifalias === NETKIT_ALIAS)) {
            throw new NetkitError('E_CONFLICT', `a link named ${v.ifname} already exists${inNamespace(ctx.runner.netns)}`, {
              fix:
                existing.ifalias === NETKIT_ALIAS
                  ? `it is a netkit leftover: remove it with "netkit link del ${v.ifname}" (or netkit doctor --fix)`
                  : "it is not netkit's: rename or remove it, or choose another tunnel name",
            })
          }
          const lines = [
            {
              args: [
                'link',
                'add',
                v.ifname,
                'type',
                'vxlan',
                'id',
                String(v.vni),
                'remote',
                def.remote!,
                'local',
                def.local!,
                'dstport',
                String(v.port),
                'dev',
                v.dev,
              ],
              object: `vxlan link ${v.ifname}`,
            },
            {args: ['link', 'set', v.ifname, 'alias', NETKIT_ALIAS, ...(def.mtu ? ['mtu', String(def.mtu)] : [])], object: `vxlan link ${v.ifname}`},
          ]
          if (v.address) lines.push({args: ['addr', 'add', v.address, 'dev', v.ifname], object: `address ${v.address}`})
          lines.push({args: ['link', 'set', v.ifname, 'up'], object: `vxlan link ${v.ifname}`})
          try {
            await ctx.runner.batch(lines)
          } catch (error) {
            // Remove the link only if this batch made it (its first line succeeded).
            if (((error as BatchError).failedIndex ?? 0) > 0) await ctx.runner.batch([{args: ['link', 'del', v.ifname]}]).catch(() => {})
            throw error
          }
        },
        undo: async () => {
          const link = await readLink(ctx, v.ifname)
          if (link?.ifalias === NETKIT_ALIAS) await ctx.runner.batch([{args: ['link', 'del', v.ifname]}]).catch(() => {})
        },
      },
      ...routeSteps(def, ctx, v.ifname, v.peerAddress),
    ]
    return steps
  },

  async down(def: TunnelDef, ctx: TunnelContext): Promise<void> {
    const v = def.vxlan!
    await removeRoutes(def, ctx, v.ifname)
    const link = await readLink(ctx, v.ifname)
    if (link && link.ifalias === NETKIT_ALIAS) await ctx.runner.batch([{args: ['link', 'del', v.ifname], object: `vxlan link ${v.ifname}`}])
  },

  async status(def: TunnelDef, ctx: TunnelContext): Promise<TunnelStatus> {
    const v = def.vxlan!
    const link = await readLink(ctx, v.ifname)
    const up = Boolean(link && link.flags?.includes('UP'))
    return {
      state: up ? 'up' : 'down',
      datapath: 'kernel',
      details: {
        ifname: v.ifname,
        vni: v.vni,
        port: v.port,
        dev: v.dev,
        encrypted: false,
        rxBytes: link?.stats64?.rx?.bytes ?? null,
        txBytes: link?.stats64?.tx?.bytes ?? null,
      },
    }
  },
}
