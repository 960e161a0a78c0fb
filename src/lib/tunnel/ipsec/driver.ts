/**
 * IPsec (IKEv2, strongSwan) between two hosts. netkit renders a swanctl
 * connection and its secret from templates/strongswan (one file per tunnel,
 * mode 0600), loads it into the namespace's own charon, initiates, and waits
 * until the CHILD_SA is installed, or says why it could not be (authentication,
 * proposals, traffic selectors, an unreachable peer).
 *
 * The data path is the kernel's XFRM where the kernel has ESP, and strongSwan's
 * kernel-libipsec (a TUN device, ESP in UDP 4500) where it has not. charon
 * installs the policies and the routes to the remote subnets itself (table 220).
 */
import {existsSync, rmSync, symlinkSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {waitFor} from '../../daemons.js'
import {NetkitError, UsageError} from '../../errors.js'
import {readSecretFile, writeSecretFile} from '../../files.js'
import {espSupport, tunSupport} from '../../kernel.js'
import {NETKIT_PROTO} from '../../ownership.js'
import type {Step} from '../../plan.js'
import type {BatchLine} from '../../runner.js'
import {renderTemplate} from '../../templates.js'
import {listDefs, pskPath} from '../store.js'
import type {IpsecDef, TunnelContext, TunnelDef, TunnelDriver, TunnelStatus} from '../types.js'
import {charonLogSince, charonLogSize, charonLogTail, charonPid, charonUsesLibipsec, charonScope, type CharonScope, ensureCharon, loadedTunnels, privateKeyLink, stopCharon, swanctl} from './charon.js'
import {initiateFailure, parseListSas} from './vici.js'

export const connName = (def: TunnelDef) => `netkit-${def.name}`

/** The metric of the guard routes: the highest, so that any real route wins. */
export const GUARD_METRIC = 4_294_967_295

function confPath(scope: CharonScope, def: TunnelDef): string {
  return join(scope.confD, `${def.name}.conf`)
}

/** A PSK as swanctl.conf wants it: strongSwan's own 0s (base64) and 0x (hex) forms as they are, anything else encoded. */
export function swanctlSecret(psk: string): string {
  if (/^0s[A-Za-z0-9+/]+={0,2}$/.test(psk) || /^0x[0-9a-fA-F]+$/.test(psk)) return psk
  return `0s${Buffer.from(psk, 'utf8').toString('base64')}`
}

/** The traffic selectors: the subnets, or the hosts themselves for host to host. */
export function trafficSelectors(def: TunnelDef): {localTs: string[]; remoteTs: string[]} {
  const host = (ip: string) => `${ip}/${ip.includes(':') ? 128 : 32}`
  return {
    localTs: def.localSubnets.length > 0 ? def.localSubnets : [host(def.local)],
    remoteTs: def.remoteSubnets.length > 0 ? def.remoteSubnets : [host(def.remote)],
  }
}

/**
 * The start action charon really gets. kernel-libipsec cannot trap (it routes
 * through its TUN device only once an SA exists), so there a "trap" tunnel is
 * started and kept up instead (keyingtries 0, close and DPD restart), and
 * guard routes keep packets from leaving in clear meanwhile.
 */
export function effectiveStartAction(def: TunnelDef, libipsec: boolean): IpsecDef['startAction'] {
  const a = def.ipsec!.startAction
  return libipsec && a === 'trap' ? 'start' : a
}

export async function renderConnection(def: TunnelDef, psk: string | undefined, encap: boolean, libipsec = false): Promise<string> {
  const i = def.ipsec!
  return renderTemplate('strongswan/connection.conf.eta', {
    name: def.name,
    conn: connName(def),
    local: def.local,
    remote: def.remote,
    proposals: i.proposals,
    espProposals: i.espProposals,
    dpdDelay: i.dpdDelay,
    rekeyTime: i.rekeyTime,
    startAction: effectiveStartAction(def, libipsec),
    encap,
    auth: i.auth === 'psk' ? 'psk' : 'pubkey',
    localId: i.localId,
    remoteId: i.remoteId,
    cert: i.cert,
    ca: i.ca,
    key: i.key,
    psk: i.auth === 'psk' && psk !== undefined ? swanctlSecret(psk) : undefined,
    ...trafficSelectors(def),
  })
}

async function unload(def: TunnelDef, ctx: TunnelContext, scope: CharonScope): Promise<void> {
  const conn = connName(def)
  if (charonPid(scope) !== undefined || ctx.runner.dryRun) {
    await swanctl(ctx.runner, scope, ['--terminate', '--ike', conn, '--force', '--timeout', '5'], {change: true}).catch(() => {})
  }
  if (!ctx.runner.dryRun) {
    rmSync(confPath(scope, def), {force: true})
    rmSync(privateKeyLink(scope, def.name), {force: true})
  }
  if (charonPid(scope) !== undefined || ctx.runner.dryRun) {
    // Its file is gone: loading the connections again unloads it (swanctl 5.9 has no --unload-conn).
    await swanctl(ctx.runner, scope, ['--load-conns', '--file', scope.swanctlConf], {change: true}).catch(() => {})
    await swanctl(ctx.runner, scope, ['--load-creds', '--clear', '--noprompt', '--file', scope.swanctlConf], {change: true}).catch(() => {})
  }
  const others = loadedTunnels(scope).filter((n) => n !== def.name)
  if (others.length === 0) await stopCharon(ctx.runner, scope)
}

/** Guard routes: the remote subnets unreachable in the main table, at the highest metric. */
function guardLines(def: TunnelDef, verb: 'replace' | 'del'): BatchLine[] {
  return def.remoteSubnets.map((subnet) => ({
    args: ['route', verb, 'unreachable', subnet, 'metric', String(GUARD_METRIC), 'proto', String(NETKIT_PROTO), 'table', 'main'],
    object: `guard route ${subnet} (tunnel ${def.name})`,
  }))
}

/**
 * On kernel-libipsec, charon routes the remote subnets into its TUN device
 * (table 220, rule 220) only while an SA exists. Until then, and whenever it
 * is rekeyed away, this route stops packets instead of letting them leave by
 * the default route in clear.
 */
function guardStep(def: TunnelDef, ctx: TunnelContext): Step {
  return {
    title: `guard routes: ${def.remoteSubnets.join(', ')} unreachable unless through the tunnel`,
    apply: async () => {
      if (def.remoteSubnets.length === 0) return false
      await ctx.runner.batch(guardLines(def, 'replace'))
    },
    undo: async () => removeGuards(def, ctx),
  }
}

/**
 * Removes the tunnel's guard routes, but not one that another IPsec tunnel of
 * the namespace (loaded in its charon) still needs: two tunnels to the same
 * remote subnets (two gateways) share one guard route, and taking it with the
 * first would let the other's packets leave in clear while it has no SA.
 */
async function removeGuards(def: TunnelDef, ctx: TunnelContext): Promise<void> {
  const loaded = new Set(loadedTunnels(charonScope(ctx.configDir, def.netns)))
  // ctx.configDir is the namespace's own directory (its tunnels, its charon).
  const others = listDefs(ctx.configDir).filter((o) => o.type === 'ipsec' && o.name !== def.name && loaded.has(o.name))
  const shared = new Set(others.flatMap((o) => o.remoteSubnets))
  const lines = guardLines({...def, remoteSubnets: def.remoteSubnets.filter((s) => !shared.has(s))}, 'del')
  if (lines.length) await ctx.runner.batch(lines, undefined, {force: true}).catch(() => {})
}

export const ipsecDriver: TunnelDriver = {
  type: 'ipsec',

  async datapath({runner}, choice) {
    const esp = await espSupport(runner)
    if (choice === 'kernel' && !esp.present) {
      throw new UsageError(`--datapath kernel: this kernel has no ESP (CONFIG_INET_ESP; ${esp.how})`, 'use --datapath auto or userspace (strongSwan\'s kernel-libipsec)')
    }
    if (choice === 'userspace') return {datapath: 'userspace', reason: 'strongSwan\'s kernel-libipsec, as asked with --datapath userspace'}
    if (!esp.present) return {datapath: 'userspace', reason: `strongSwan's kernel-libipsec (ESP in UDP 4500 through a TUN device): this kernel has no ESP (${esp.how})`}
    return {datapath: 'kernel', reason: `the kernel's XFRM and ESP (${esp.how})`}
  },

  async up(def: TunnelDef, ctx: TunnelContext): Promise<Step[]> {
    const r = ctx.runner
    const scope = charonScope(ctx.configDir, def.netns)
    const conn = connName(def)
    const libipsec = ctx.datapath === 'userspace'
    let started = false
    let logStart = 0
    const twin = listDefs(ctx.configDir).find((o) => o.type === 'ipsec' && o.name !== def.name && o.ipsec!.localId === def.ipsec!.localId && o.ipsec!.remoteId === def.ipsec!.remoteId)
    if (twin) {
      throw new UsageError(`tunnel ${twin.name} already joins ${def.ipsec!.localId} and ${def.ipsec!.remoteId}: charon could not tell the two apart`, `add the subnets to ${twin.name} (repeat --local-subnet/--remote-subnet, with --replace), or give this one other identities (--local-id, --remote-id)`)
    }
    if (libipsec && def.localSubnets.length === 0 && def.remoteSubnets.length === 0) {
      throw new UsageError('host-to-host IPsec needs the kernel data path: with kernel-libipsec the route to the peer would carry IKE itself', 'give --local-subnet and --remote-subnet (site to site), or run on a kernel with ESP')
    }
    const steps: Step[] = [
      {
        title: `start the charon of ${def.netns ? `namespace ${def.netns}` : 'this host'} (${libipsec ? 'kernel-libipsec' : 'kernel XFRM'})`,
        apply: async () => {
          if (libipsec && !tunSupport().present) throw new NetkitError('E_NO_TUN', `kernel-libipsec needs a TUN device: ${tunSupport().how}`, {fix: 'modprobe tun'})
          started = await ensureCharon(r, scope, libipsec)
          return started
        },
        undo: async () => {
          if (started && loadedTunnels(scope).filter((n) => n !== def.name).length === 0) await stopCharon(r, scope)
        },
      },
      {
        title: `load connection ${conn} (${confPath(scope, def)}, mode 0600)`,
        apply: async () => {
          logStart = charonLogSize(scope)
          try {
            await load()
          } catch (error) {
            // The file is written before swanctl reads it: a refused one goes too, or it would break the next load of every tunnel here.
            await unload(def, ctx, scope).catch(() => {})
            throw error
          }
        },
        undo: async () => {
          await unload(def, ctx, scope)
        },
      },
    ]
    /** Writes the connection (and links its key) and has charon load it. */
    async function load(): Promise<void> {
      if (!r.dryRun) {
        const psk = def.ipsec!.auth === 'psk' ? readSecretFile(pskPath(ctx.configDir, def.name), 'PSK file') : undefined
        if (psk) r.addSecret(psk)
        if (psk) r.addSecret(swanctlSecret(psk))
        writeSecretFile(confPath(scope, def), await renderConnection(def, psk, false, libipsec))
        if (def.ipsec!.key) {
          rmSync(privateKeyLink(scope, def.name), {force: true})
          symlinkSync(resolve(def.ipsec!.key), privateKeyLink(scope, def.name))
        }
      }
      const loaded = await swanctl(r, scope, ['--load-all', '--noprompt', '--file', scope.swanctlConf], {change: true, object: `connection ${conn}`})
      if (!r.dryRun && !/loaded connection '?netkit-/.test(loaded.stdout) && !new RegExp(`\\b${conn}\\b`).test(loaded.stdout)) {
        throw new NetkitError('E_IKE_CONFIG', `charon did not load connection ${conn}`, {fix: 'run with --verbose for what swanctl said', detail: r.redact(loaded.stdout + loaded.stderr)})
      }
    }
    if (libipsec) steps.push(guardStep(def, ctx))
    if (ctx.wait) {
      steps.push({
        title: `negotiate with ${def.remote} and wait for the CHILD_SA`,
        apply: async () => {
          if (r.dryRun) return false
          const seconds = Math.max(1, Math.round(ctx.timeoutMs / 1000))
          const installed = async () => parseListSas((await swanctl(r, scope, ['--list-sas', '--ike', conn, '--raw'])).stdout).flatMap((s) => s.children).some((c) => c.name === conn && c.state === 'INSTALLED')
          const fail = (log: string, timedOut: boolean): never => {
            const why = timedOut && !/notify error|AUTHENTICATION_FAILED|NO_PROPOSAL_CHOSEN|TS_UNACCEPTABLE|MAC mismatched|authentication of .* failed/.test(log) ? initiateFailure('timeout') : initiateFailure(log)
            throw new NetkitError(`E_IKE_${why.kind.toUpperCase()}`, `tunnel ${def.name}: ${why.message}${why.kind === 'unreachable' ? ` within ${seconds}s` : ''}`, {fix: why.fix, detail: r.redact(log)})
          }
          if (effectiveStartAction(def, libipsec) === 'start') {
            // charon initiates by itself on load: watch it, and its log for a refusal.
            const refused = /received (AUTHENTICATION_FAILED|NO_PROPOSAL_CHOSEN|TS_UNACCEPTABLE)|MAC mismatched|authentication of '.*' with .* failed|no acceptable proposal|failed to establish CHILD_SA/
            let log = ''
            const ok = await waitFor(async () => {
              if (await installed()) return true
              log = charonLogSince(scope, logStart)
              return refused.test(log)
            }, ctx.timeoutMs, 200)
            if (ok && (await installed())) return false
            fail(charonLogSince(scope, logStart) || log, !ok)
          }
          const res = await swanctl(r, scope, ['--initiate', '--ike', conn, '--child', conn, '--timeout', String(seconds)], {timeoutMs: ctx.timeoutMs + 5000})
          if (res.exitCode === 0 && (await installed())) return false
          const timedOut = Boolean(res.timedOut) || (res.exitCode !== 0 && /timeout/i.test(res.stdout + res.stderr))
          return fail(`${res.stdout}\n${res.stderr}\n${charonLogTail(scope, 20)}`, timedOut)
        },
      })
    }
    return steps
  },

  async down(def: TunnelDef, ctx: TunnelContext): Promise<void> {
    const scope = charonScope(ctx.configDir, def.netns)
    if (existsSync(confPath(scope, def)) || charonPid(scope) !== undefined) await unload(def, ctx, scope)
    const guards = await ctx.runner.probe({tool: 'ip', args: ['-j', 'route', 'show', 'table', 'main', 'proto', String(NETKIT_PROTO), 'type', 'unreachable']})
    if (def.remoteSubnets.some((s) => guards.stdout.includes(`"${s}"`))) await removeGuards(def, ctx)
  },

  async status(def: TunnelDef, ctx: TunnelContext): Promise<TunnelStatus> {
    const scope = charonScope(ctx.configDir, def.netns)
    const conn = connName(def)
    const pid = charonPid(scope)
    const loaded = existsSync(confPath(scope, def))
    const libipsec = charonUsesLibipsec(scope)
    const datapath = libipsec === undefined ? ctx.datapath : libipsec ? 'userspace' : 'kernel'
    if (pid === undefined || !loaded) {
      return {state: 'down', datapath, details: {charon: pid === undefined ? 'not running' : 'running', connection: conn, loaded, ikeSas: []}}
    }
    const sas = parseListSas((await swanctl(ctx.runner, scope, ['--list-sas', '--ike', conn, '--raw'])).stdout)
    const ike = sas.find((s) => s.state === 'ESTABLISHED')
    const child = ike?.children.find((c) => c.state === 'INSTALLED')
    const now = Date.now()
    return {
      state: ike && child ? 'up' : 'connecting',
      datapath,
      ...(ike?.established !== undefined ? {since: new Date(now - ike.established * 1000).toISOString()} : {}),
      details: {
        charon: {pid, socket: scope.socket},
        connection: conn,
        config: confPath(scope, def),
        startAction: def.ipsec!.startAction,
        ikeSas: sas.map((s) => ({
          ...s,
          rekeyAt: s.rekeyTime !== undefined ? new Date(now + s.rekeyTime * 1000).toISOString() : null,
          children: s.children.map((c) => ({
            ...c,
            rekeyAt: c.rekeyTime !== undefined ? new Date(now + c.rekeyTime * 1000).toISOString() : null,
            expiresAt: c.lifeTime !== undefined ? new Date(now + c.lifeTime * 1000).toISOString() : null,
          })),
        })),
      },
    }
  },
}
