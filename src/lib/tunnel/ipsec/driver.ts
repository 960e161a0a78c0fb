/**
 * IPsec (IKEv2, strongSwan) between two hosts. netkit renders a swanctl
 * connection and its secret from templates/strongswan (one file per tunnel,
 * mode 0600), loads it into the namespace's own charon, initiates, and waits
 * until the CHILD_SA is installed, or says why it could not be (authentication,
 * proposals, traffic selectors, an unreachable peer).
 *
 * One IKE SA per pair of hosts: the tunnels of a namespace between the same
 * two addresses and identities are children of one IKE connection (each
 * tunnel's file adds its child to it; swanctl merges sections of one name),
 * so a second subnet pair needs nothing more than the first. Only one end
 * starts the IKE SA by itself: the one with the lower address (the other
 * answers, and on kernel-libipsec waits for it; on the kernel data path it
 * keeps its trap). Both ends starting at once is what made two IKE SAs per
 * tunnel; charon's `unique = replace` settles any later duplicate (a peer that
 * restarted, an initiate by hand) on the newest.
 *
 * The data path is the kernel's XFRM where the kernel has ESP, and strongSwan's
 * kernel-libipsec (a TUN device, ESP in UDP 4500) where it has not. charon
 * installs the policies and the routes to the remote subnets itself (table 220).
 */
import {createHash} from 'node:crypto'
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
import {compareAddresses} from '../../validate.js'
import {removeIssuedFor} from '../../wizard/pki.js'
import {listDefs, pskPath} from '../store.js'
import type {IpsecDef, TunnelContext, TunnelDef, TunnelDriver, TunnelStatus} from '../types.js'
import {charonLogSince, charonLogSize, charonLogTail, charonPid, charonUsesLibipsec, charonScope, type CharonScope, ensureCharon, loadedTunnels, privateKeyLink, stopCharon, swanctl} from './charon.js'
import {type IkeSa, initiateFailure, parseListSas} from './vici.js'

/** The tunnel's CHILD_SA configuration: netkit-NAME. */
export const connName = (def: TunnelDef) => `netkit-${def.name}`

/**
 * The IKE connection a tunnel belongs to, shared by every tunnel of the
 * namespace between the same two addresses with the same identities:
 * netkit-LOCAL-REMOTE (separators as _), and a digest of the identities when
 * they are not the addresses.
 */
export function ikeName(def: TunnelDef): string {
  const i = def.ipsec!
  const tag = (ip: string) => ip.replace(/[^0-9A-Za-z]/g, '_')
  const ids = i.localId === def.local && i.remoteId === def.remote ? '' : `-${createHash('sha256').update(`${i.localId}\0${i.remoteId}`).digest('hex').slice(0, 8)}`
  return `netkit-${tag(def.local)}-${tag(def.remote)}${ids}`
}

/** The other tunnels of the namespace that share this one's IKE connection. */
export function siblings(def: TunnelDef, scopeDir: string): TunnelDef[] {
  const ike = ikeName(def)
  return listDefs(scopeDir).filter((o) => o.type === 'ipsec' && o.name !== def.name && ikeName(o) === ike)
}

/** The end that starts the IKE SA by itself: the one with the lower address (the peer, running netkit, agrees). */
export function initiates(def: TunnelDef): boolean {
  return compareAddresses(def.local, def.remote) < 0
}

/** What must be the same for tunnels that share one IKE SA (the IKE connection's settings). */
const IKE_SETTINGS: [keyof IpsecDef, string][] = [['auth', '--cert/--psk-file'], ['cert', '--cert'], ['key', '--key'], ['ca', '--ca'], ['proposals', '--proposals'], ['dpdDelay', '--dpd']]

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
 * The start action charon really gets. Only the initiating end (the lower
 * address) starts the SA by itself; the other answers: it keeps a trap on the
 * kernel data path, and waits on kernel-libipsec. kernel-libipsec cannot trap
 * (it routes through its TUN device only once an SA exists), so there the
 * initiator's "trap" tunnel is started and kept up instead (keyingtries 0,
 * close and DPD restart), and guard routes keep packets from leaving in clear
 * meanwhile. "none" is none on both ends.
 */
export function effectiveStartAction(def: TunnelDef, libipsec: boolean): IpsecDef['startAction'] {
  const a = def.ipsec!.startAction
  if (a === 'none') return 'none'
  if (!initiates(def)) return libipsec ? 'none' : 'trap'
  return libipsec ? 'start' : a
}

/** True if the peer starts the SA by itself (this end answers): it is the initiator and its start action is start. */
export function peerStarts(def: TunnelDef, libipsec: boolean): boolean {
  const a = def.ipsec!.startAction
  return !initiates(def) && a !== 'none' && (libipsec || a === 'start')
}

export async function renderConnection(def: TunnelDef, psk: string | undefined, encap: boolean, libipsec = false): Promise<string> {
  const i = def.ipsec!
  const startAction = effectiveStartAction(def, libipsec)
  return renderTemplate('strongswan/connection.conf.eta', {
    name: def.name,
    ike: ikeName(def),
    conn: connName(def),
    local: def.local,
    remote: def.remote,
    proposals: i.proposals,
    espProposals: i.espProposals,
    dpdDelay: i.dpdDelay,
    rekeyTime: i.rekeyTime,
    startAction,
    answers: peerStarts(def, libipsec),
    // After a dead peer: the initiator starts again, a trap waits for traffic, an answering end lets it go.
    dpdAction: startAction === 'start' ? 'restart' : startAction === 'trap' ? 'trap' : 'clear',
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

/** This tunnel's SAs: the IKE SAs of its connection, each with only this tunnel's CHILD_SAs. */
async function tunnelSas(def: TunnelDef, ctx: TunnelContext, scope: CharonScope): Promise<IkeSa[]> {
  const conn = connName(def)
  const sas = parseListSas((await swanctl(ctx.runner, scope, ['--list-sas', '--ike', ikeName(def), '--raw'])).stdout)
  return sas.map((s) => ({...s, children: s.children.filter((c) => c.name === conn)}))
}

async function unload(def: TunnelDef, ctx: TunnelContext, scope: CharonScope): Promise<void> {
  const loaded = new Set(loadedTunnels(scope))
  const shared = siblings(def, ctx.configDir).some((o) => loaded.has(o.name))
  if (charonPid(scope) !== undefined || ctx.runner.dryRun) {
    // The IKE SA carries the other tunnels' children too: only this tunnel's CHILD_SAs go.
    const what = shared ? ['--child', connName(def)] : ['--ike', ikeName(def), '--force']
    await swanctl(ctx.runner, scope, ['--terminate', ...what, '--timeout', '5'], {change: true}).catch(() => {})
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
  // Only those there (an undone add may not have made them): a guard that cannot be removed is an error, not a route left behind.
  const present = await guardsPresent(ctx)
  const lines = guardLines({...def, remoteSubnets: def.remoteSubnets.filter((s) => !shared.has(s) && present.has(s))}, 'del')
  if (lines.length) await ctx.runner.batch(lines)
}

/** The remote subnets (IPv4 and IPv6) that have a guard route now. */
async function guardsPresent(ctx: TunnelContext): Promise<Set<string>> {
  const present = new Set<string>()
  for (const family of ['-4', '-6']) {
    const r = await ctx.runner.probe({tool: 'ip', args: [family, '-j', 'route', 'show', 'table', 'main', 'proto', String(NETKIT_PROTO), 'type', 'unreachable']})
    try {
      // ip prints a host route without its prefix length.
      for (const g of JSON.parse(r.stdout || '[]') as {dst: string; metric?: number}[]) if (g.metric === GUARD_METRIC) present.add(g.dst.includes('/') ? g.dst : `${g.dst}/${family === '-6' ? 128 : 32}`)
    } catch {
      // nothing readable: no guard
    }
  }
  return present
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

  async check(def: TunnelDef, ctx: TunnelContext, psk?: string): Promise<void> {
    if (ctx.datapath === 'userspace' && def.localSubnets.length === 0 && def.remoteSubnets.length === 0) {
      throw new UsageError('host-to-host IPsec needs the kernel data path: with kernel-libipsec the route to the peer would carry IKE itself', 'give --local-subnet and --remote-subnet (site to site), or run on a kernel with ESP')
    }
    // The tunnels between two hosts share one IKE SA: they must agree on what it is made with.
    const mine = def.ipsec!
    const pskOf = (d: TunnelDef) => (existsSync(pskPath(ctx.configDir, d.name)) ? readSecretFile(pskPath(ctx.configDir, d.name), 'PSK file') : undefined)
    const ownPsk = psk ?? pskOf(def)
    for (const o of siblings(def, ctx.configDir)) {
      const theirs = o.ipsec!
      const differ = IKE_SETTINGS.filter(([k]) => mine[k] !== theirs[k]).map(([, flag]) => flag)
      if (mine.auth === 'psk' && theirs.auth === 'psk' && ownPsk !== undefined && ownPsk !== pskOf(o)) differ.push('--psk-file')
      if (differ.length > 0) {
        const flags = [...new Set(differ)].join(', ')
        throw new UsageError(`tunnel ${o.name} already joins ${mine.localId} and ${mine.remoteId}, and the tunnels between two hosts share one IKE SA: this one differs in ${flags}`, `give tunnel ${def.name} the same ${flags} as ${o.name}${differ.includes('--psk-file') ? ` (its key is in ${pskPath(ctx.configDir, o.name)})` : ''}, or other identities (--local-id, --remote-id)`)
      }
    }
  },

  async up(def: TunnelDef, ctx: TunnelContext): Promise<Step[]> {
    const r = ctx.runner
    const scope = charonScope(ctx.configDir, def.netns)
    const conn = connName(def)
    const ike = ikeName(def)
    const libipsec = ctx.datapath === 'userspace'
    let started = false
    let logStart = 0
    let charonStart = 0
    const steps: Step[] = [
      {
        title: `start the charon of ${def.netns ? `namespace ${def.netns}` : 'this host'} (${libipsec ? 'kernel-libipsec' : 'kernel XFRM'})`,
        apply: async () => {
          if (libipsec && !tunSupport().present) throw new NetkitError('E_NO_TUN', `kernel-libipsec needs a TUN device: ${tunSupport().how}`, {fix: 'modprobe tun'})
          charonStart = charonLogSize(scope)
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
          const deadline = Date.now() + ctx.timeoutMs
          const left = () => Math.max(1000, deadline - Date.now())
          const seconds = Math.max(1, Math.round(ctx.timeoutMs / 1000))
          const sas = async () => tunnelSas(def, ctx, scope)
          const installed = async () => (await sas()).some((s) => s.state === 'ESTABLISHED' && s.children.some((c) => c.state === 'INSTALLED'))
          const fail = (log: string, timedOut: boolean): never => {
            const why = timedOut && !/notify error|AUTHENTICATION_FAILED|NO_PROPOSAL_CHOSEN|TS_UNACCEPTABLE|MAC mismatched|authentication of .* failed/.test(log) ? initiateFailure('timeout') : initiateFailure(log)
            throw new NetkitError(`E_IKE_${why.kind.toUpperCase()}`, `tunnel ${def.name}: ${why.message}${why.kind === 'unreachable' ? ` within ${seconds}s` : ''}`, {fix: why.fix, detail: r.redact(log)})
          }
          // charon initiates by itself (on load), or the peer does: watch, and the log for a refusal.
          const refused = /received (AUTHENTICATION_FAILED|NO_PROPOSAL_CHOSEN|TS_UNACCEPTABLE)|MAC mismatched|authentication of '.*' with .* failed|no acceptable proposal|failed to establish CHILD_SA|traffic selectors .* unacceptable|no matching CHILD_SA config/
          const watch = async (ms: number): Promise<boolean> => {
            const ok = await waitFor(async () => (await installed()) || refused.test(charonLogSince(scope, logStart)), ms, 200)
            if (ok && (await installed())) return true
            if (ok) fail(charonLogSince(scope, logStart), false)
            return false
          }
          if (effectiveStartAction(def, libipsec) === 'start') {
            if (await watch(ctx.timeoutMs)) return false
            return fail(charonLogSince(scope, logStart), true)
          }
          if (peerStarts(def, libipsec)) {
            // The peer starts the SA; a peer set up before this host retries every few seconds. But one that knocked
            // while this charon had no connection yet was told NO_PROPOSAL_CHOSEN, and does not try again.
            // Nor does one whose CHILD_SA for this tunnel this host refused over an IKE SA they already share (added there first).
            const knocked = charonLogSince(scope, charonStart).includes(`no IKE config found for ${def.local}...${def.remote}`)
            const shared = (await sas()).some((s) => s.state === 'ESTABLISHED')
            if (!knocked && !shared && (await watch(Math.min(15_000, ctx.timeoutMs / 2)))) return false
            // It has not: it was not set up yet (or was refused while this charon had no connection), or it holds an SA
            // this host lost when it restarted. Start it from here then, unless the peer is at it right now.
            if ((await sas()).some((s) => s.state === 'CONNECTING')) {
              if (await watch(left())) return false
              return fail(charonLogSince(scope, logStart), true)
            }
          }
          const res = await swanctl(r, scope, ['--initiate', '--ike', ike, '--child', conn, '--timeout', String(Math.max(1, Math.round(left() / 1000)))], {timeoutMs: left() + 5000})
          if (res.exitCode === 0 && (await installed())) return false
          const timedOut = Boolean(res.timedOut) || (res.exitCode !== 0 && (/timeout/i.test(res.stdout + res.stderr) || Date.now() >= deadline - 500))
          return fail(`${res.stdout}\n${res.stderr}\n${charonLogSince(scope, logStart) || charonLogTail(scope, 20)}`, timedOut)
        },
      })
    }
    return steps
  },

  async down(def: TunnelDef, ctx: TunnelContext): Promise<void> {
    const scope = charonScope(ctx.configDir, def.netns)
    if (existsSync(confPath(scope, def)) || charonPid(scope) !== undefined) await unload(def, ctx, scope)
    // No charon and no other tunnel: what an add killed as charon started left (its strongswan.conf) goes too.
    else if (loadedTunnels(scope).filter((n) => n !== def.name).length === 0) await stopCharon(ctx.runner, scope)
    await removeGuards(def, ctx)
  },

  async purge(def: TunnelDef, ctx: TunnelContext): Promise<void> {
    if (ctx.runner.dryRun) return
    // The certificates the wizard made for this tunnel (and, with the last such tunnel, its CA and this host's).
    removeIssuedFor(def, ctx.configDir, listDefs(ctx.configDir).filter((o) => o.name !== def.name))
  },

  async status(def: TunnelDef, ctx: TunnelContext): Promise<TunnelStatus> {
    const scope = charonScope(ctx.configDir, def.netns)
    const conn = connName(def)
    const pid = charonPid(scope)
    const loaded = existsSync(confPath(scope, def))
    const libipsec = charonUsesLibipsec(scope)
    const datapath = libipsec === undefined ? ctx.datapath : libipsec ? 'userspace' : 'kernel'
    if (pid === undefined || !loaded) {
      return {state: 'down', datapath, details: {charon: pid === undefined ? 'not running' : 'running', connection: ikeName(def), child: conn, loaded, ikeSas: []}}
    }
    // The IKE SAs of the connection (shared with the tunnels to the same peer), each with this tunnel's CHILD_SAs only.
    const sas = await tunnelSas(def, ctx, scope)
    const ike = sas.find((s) => s.state === 'ESTABLISHED' && s.children.some((c) => c.state === 'INSTALLED')) ?? sas.find((s) => s.state === 'ESTABLISHED')
    const child = ike?.children.find((c) => c.state === 'INSTALLED')
    const now = Date.now()
    return {
      state: ike && child ? 'up' : 'connecting',
      datapath,
      ...(ike?.established !== undefined ? {since: new Date(now - ike.established * 1000).toISOString()} : {}),
      details: {
        charon: {pid, socket: scope.socket},
        connection: ikeName(def),
        child: conn,
        config: confPath(scope, def),
        startAction: def.ipsec!.startAction,
        initiator: initiates(def),
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
