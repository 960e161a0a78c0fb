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
 *
 * Where the host runs strongSwan itself (a charon netkit did not start, in the
 * root namespace), netkit's tunnels go into that charon, over VICI, with their
 * files in /etc/swanctl/conf.d (system.ts); the data path is what it runs.
 */
import {createHash} from 'node:crypto'
import {existsSync, readFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {waitFor} from '../../daemons.js'
import {NetkitError, UsageError} from '../../errors.js'
import {readSecretFile} from '../../files.js'
import {espSupport, tunSupport} from '../../kernel.js'
import {NETKIT_PROTO} from '../../ownership.js'
import type {Step} from '../../plan.js'
import {type BatchLine, type Runner, Secret} from '../../runner.js'
import {renderTemplate} from '../../templates.js'
import {compareAddresses} from '../../validate.js'
import {removeIssuedFor} from '../../wizard/pki.js'
import {listDefs, pskPath} from '../store.js'
import type {IpsecDef, TunnelContext, TunnelDef, TunnelDriver, TunnelStatus} from '../types.js'
import {
  charonLogSince,
  charonLogSize,
  charonLogTail,
  charonKnocks,
  charonPid,
  charonUsesLibipsec,
  charonScope,
  type CharonScope,
  ensureCharon,
  loadedTunnels,
  privateKeyLink,
  stopCharon,
  swanctl,
} from './charon.js'
import {parseSettings} from './settings.js'
import {
  describeSystem,
  findSystemCharon,
  SYSTEM_SWANCTL_DIR,
  SystemLog,
  systemConfPath,
  syncConnections,
  type SystemCharon,
  systemConns,
  systemInitiate,
  systemKeyLink,
  systemPlugins,
  systemTerminate,
  systemTunnels,
} from './system.js'
import {type IkeSa, initiateFailure} from './vici.js'
import {sasOn} from './vici-client.js'

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
  const ids =
    i.localId === def.local && i.remoteId === def.remote ? '' : `-${createHash('sha256').update(`${i.localId}\0${i.remoteId}`).digest('hex').slice(0, 8)}`
  return `netkit-${tag(def.local!)}-${tag(def.remote!)}${ids}`
}

/** The other tunnels of the namespace that share this one's IKE connection. */
export function siblings(def: TunnelDef, scopeDir: string): TunnelDef[] {
  const ike = ikeName(def)
  return listDefs(scopeDir).filter((o) => o.type === 'ipsec' && o.name !== def.name && ikeName(o) === ike)
}

/** The end that starts the IKE SA by itself: the one with the lower address (the peer, running netkit, agrees). */
export function initiates(def: TunnelDef): boolean {
  return compareAddresses(def.local!, def.remote!) < 0
}

/** What must be the same for tunnels that share one IKE SA (the IKE connection's settings). */
const IKE_SETTINGS: [keyof IpsecDef, string][] = [
  ['auth', '--cert/--psk-file'],
  ['cert', '--cert'],
  ['key', '--key'],
  ['ca', '--ca'],
  ['proposals', '--proposals'],
  ['dpdDelay', '--dpd'],
]

/** The metric of the guard routes: the highest, so that any real route wins. */
export const GUARD_METRIC = 4_294_967_295

function confPath(scope: CharonScope, def: TunnelDef): string {
  return join(scope.confD, `${def.name}.conf`)
}

/**
 * The host's own charon, when this tunnel goes into it: a root-namespace
 * tunnel, and a charon netkit did not start runs there (and none of netkit's).
 */
export function systemCharonFor(def: TunnelDef, configDir: string): SystemCharon | undefined {
  if (def.netns) return undefined
  if (charonPid(charonScope(configDir, def.netns)) !== undefined) return undefined
  return findSystemCharon(def.netns)
}

/** The file a tunnel's connection is written to: in the host's strongSwan, or in netkit's own charon's directory. */
export function connectionFile(def: TunnelDef, configDir: string): string {
  const sys = systemCharonFor(def, configDir)
  return sys ? systemConfPath(sys, def.name) : confPath(charonScope(configDir, def.netns), def)
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
    localTs: def.localSubnets.length > 0 ? def.localSubnets : [host(def.local!)],
    remoteTs: def.remoteSubnets.length > 0 ? def.remoteSubnets : [host(def.remote!)],
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
async function tunnelSas(def: TunnelDef, ctx: TunnelContext, scope: CharonScope, sys?: SystemCharon): Promise<IkeSa[]> {
  const conn = connName(def)
  const ike = ikeName(def)
  const all = await charonSas(ctx.runner, scope, sys)
  return all.filter((s) => s.name === ike).map((s) => ({...s, children: s.children.filter((c) => c.name === conn)}))
}

/**
 * Every IKE SA of the charon the tunnels of a scope are in (undefined: it does
 * not answer): one VICI list-sas on its socket for all of them, which each
 * tunnel filters (so that `tunnel list` and the doctor, with the runner's read
 * cache, ask charon once, and start no swanctl).
 */
export function charonSasRead(runner: Runner, scope: CharonScope, sys?: SystemCharon): Promise<IkeSa[] | undefined> {
  const socket = sys ? sys.socket : scope.socket
  return runner.memo(`vici list-sas ${socket}`, () => sasOn(socket))
}

export async function charonSas(runner: Runner, scope: CharonScope, sys?: SystemCharon): Promise<IkeSa[]> {
  return (await charonSasRead(runner, scope, sys)) ?? []
}

/** The connections loaded in the host's charon (undefined: it does not answer), read once per run with the read cache. */
export function loadedConns(runner: Runner, sys: SystemCharon): Promise<string[] | undefined> {
  return runner.memo(`vici get-conns ${sys.socket}`, () => systemConns(sys))
}

/**
 * Takes a tunnel out of the host's charon: its CHILD_SAs (or, the last tunnel
 * to that peer, its IKE SAs) go, its file and key link go, and its connection
 * is loaded again from the files left (the other tunnels' children) or
 * unloaded with its secret. The operator's connections are not touched.
 */
async function systemUnload(def: TunnelDef, ctx: TunnelContext, sys: SystemCharon): Promise<void> {
  const ike = ikeName(def)
  const loaded = new Set(systemTunnels(sys))
  const shared = siblings(def, ctx.configDir).some((o) => loaded.has(o.name))
  await systemTerminate(ctx.runner, sys, shared ? {child: connName(def)} : {ike})
  const keyLink = systemKeyLink(sys, def.name)
  const key = existsSync(keyLink) ? resolve(keyLink) : undefined
  ctx.runner.removeFiles([systemConfPath(sys, def.name), keyLink])
  await syncConnections(ctx.runner, sys, [ike], {unloadKeys: key && def.ipsec!.key ? [def.ipsec!.key] : [], without: def.name})
}

async function unload(def: TunnelDef, ctx: TunnelContext, scope: CharonScope): Promise<void> {
  const loaded = new Set(loadedTunnels(scope))
  const shared = siblings(def, ctx.configDir).some((o) => loaded.has(o.name))
  if (charonPid(scope) !== undefined || ctx.runner.dryRun) {
    // The IKE SA carries the other tunnels' children too: only this tunnel's CHILD_SAs go.
    const what = shared ? ['--child', connName(def)] : ['--ike', ikeName(def), '--force']
    await swanctl(ctx.runner, scope, ['--terminate', ...what, '--timeout', '5'], {change: true}).catch(() => {})
  }
  ctx.runner.removeFiles([confPath(scope, def), privateKeyLink(scope, def.name)])
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
  const sys = systemCharonFor(def, ctx.configDir)
  const loaded = new Set(sys ? systemTunnels(sys) : loadedTunnels(charonScope(ctx.configDir, def.netns)))
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
      for (const g of JSON.parse(r.stdout || '[]') as {dst: string; metric?: number}[])
        if (g.metric === GUARD_METRIC) present.add(g.dst.includes('/') ? g.dst : `${g.dst}/${family === '-6' ? 128 : 32}`)
    } catch {
      // nothing readable: no guard
    }
  }
  return present
}

/**
 * What a tunnel needs of the host's charon, checked before anything changes:
 * netkit never stops, restarts or reconfigures it, so what it lacks is said,
 * with the fix, and nothing is done.
 */
async function checkSystem(def: TunnelDef, sys: SystemCharon, ctx: TunnelContext, inFile = false): Promise<void> {
  const plugins = await systemPlugins(sys)
  const noRestart = 'netkit never restarts a charon it did not start'
  const elsewhere = inFile
    ? "or put the tunnel under one of the file's namespaces (namespaces.NAME.tunnels: netkit runs its own charon there)"
    : 'or give the tunnel a namespace of its own with --netns (netkit runs its own charon there)'
  if (plugins === undefined) {
    throw new UsageError(
      `${describeSystem(sys)} does not answer on its VICI socket, and netkit loads its tunnels into it over VICI`,
      `load its vici plugin (load = yes in /etc/strongswan.d/charon/vici.conf) and restart strongSwan (${noRestart}), ${elsewhere}`,
      'E_SYSTEM_CHARON',
    )
  }
  const libipsec = plugins.includes('kernel-libipsec')
  const esp = await espSupport(ctx.runner)
  if (!libipsec && !esp.present) {
    throw new UsageError(
      `${describeSystem(sys)} runs without kernel-libipsec, and this kernel has no ESP (${esp.how}): it cannot carry IPsec traffic here`,
      `set "load = yes" in /etc/strongswan.d/charon/kernel-libipsec.conf and restart strongSwan (systemctl restart strongswan; ${noRestart}), ${elsewhere}`,
      'E_SYSTEM_CHARON',
    )
  }
  if (def.datapath === 'kernel' && libipsec) {
    throw new UsageError(
      `--datapath kernel: ${describeSystem(sys)} runs kernel-libipsec (the userspace data path)`,
      `use --datapath auto or userspace, ${elsewhere}`,
      'E_SYSTEM_CHARON',
    )
  }
  if (def.datapath === 'userspace' && !libipsec) {
    throw new UsageError(
      `--datapath userspace: ${describeSystem(sys)} does not run kernel-libipsec`,
      `use --datapath auto or kernel, ${elsewhere}`,
      'E_SYSTEM_CHARON',
    )
  }
  const file = systemConfPath(sys, def.name)
  if (existsSync(file) && !readFileSync(file, 'utf8').startsWith('# Written by netkit')) {
    throw new UsageError(`${file} exists and netkit did not write it`, 'move that file away, or give the tunnel another name', 'E_CONFLICT')
  }
}

/**
 * Without the wait (apply): the peer starts the SA, but a peer that tried while
 * this charon had no connection for it yet was told NO_PROPOSAL_CHOSEN and does
 * not try again (two hosts of a fleet applying at the same moment). Then this
 * end starts it, once, without waiting for it (the wait step does the same).
 */
function answerStep(def: TunnelDef, ctx: TunnelContext, scope: CharonScope): Step {
  return {
    title: `start the SA from here if ${def.remote} tried before this host could answer it`,
    apply: async () => {
      const r = ctx.runner
      if (r.dryRun || !charonKnocks(scope).has(`${def.local}...${def.remote}`)) return false
      if ((await tunnelSas(def, ctx, scope)).some((s) => s.state === 'ESTABLISHED' || s.state === 'CONNECTING')) return false
      // --timeout: swanctl stops waiting, charon goes on negotiating.
      await swanctl(r, scope, ['--initiate', '--ike', ikeName(def), '--child', connName(def), '--timeout', '1'], {timeoutMs: 6000})
      return false
    },
  }
}

/** How the wait step reads a charon: its SAs, what it logged, and how to start the SA. */
interface CharonIo {
  sas(): Promise<IkeSa[]>
  /** What charon logged since the connection was loaded. */
  log(): string
  /** Whether the peer knocked (and was refused) before this tunnel's connection existed. */
  knocked(): boolean
  initiate(seconds: number, timeoutMs: number): Promise<{ok: boolean; timedOut: boolean; text: string}>
}

/** Negotiate (or wait for the peer to) and wait until the CHILD_SA is installed, or say why not. */
export function waitStep(def: TunnelDef, ctx: TunnelContext, libipsec: boolean, io: CharonIo): Step {
  const r = ctx.runner
  return {
    title: `negotiate with ${def.remote} and wait for the CHILD_SA`,
    apply: async () => {
      if (r.dryRun) return false
      const deadline = Date.now() + ctx.timeoutMs
      const left = () => Math.max(1000, deadline - Date.now())
      const seconds = Math.max(1, Math.round(ctx.timeoutMs / 1000))
      const installed = async () => (await io.sas()).some((s) => s.state === 'ESTABLISHED' && s.children.some((c) => c.state === 'INSTALLED'))
      const fail = (log: string, timedOut: boolean): never => {
        const why =
          timedOut && !/notify error|AUTHENTICATION_FAILED|NO_PROPOSAL_CHOSEN|TS_UNACCEPTABLE|MAC mismatched|authentication of .* failed/.test(log)
            ? initiateFailure('timeout')
            : initiateFailure(log)
        throw new NetkitError(
          `E_IKE_${why.kind.toUpperCase()}`,
          `tunnel ${def.name}: ${why.message}${why.kind === 'unreachable' ? ` within ${seconds}s` : ''}`,
          {fix: why.fix, detail: r.redact(log)},
        )
      }
      // charon initiates by itself (on load), or the peer does: watch, and the log for a refusal.
      const refused =
        /received (AUTHENTICATION_FAILED|NO_PROPOSAL_CHOSEN|TS_UNACCEPTABLE)|MAC mismatched|authentication of '.*' with .* failed|no acceptable proposal|failed to establish CHILD_SA|traffic selectors .* unacceptable|no matching CHILD_SA config/
      const watch = async (ms: number): Promise<boolean> => {
        const ok = await waitFor(async () => (await installed()) || refused.test(io.log()), ms, 200)
        if (ok && (await installed())) return true
        if (ok) fail(io.log(), false)
        return false
      }
      if (effectiveStartAction(def, libipsec) === 'start') {
        if (await watch(ctx.timeoutMs)) return false
        return fail(io.log(), true)
      }
      if (peerStarts(def, libipsec)) {
        // The peer starts the SA; a peer set up before this host retries every few seconds. But one that knocked
        // while this charon had no connection yet was told NO_PROPOSAL_CHOSEN, and does not try again.
        // Nor does one whose CHILD_SA for this tunnel this host refused over an IKE SA they already share (added there first).
        const shared = (await io.sas()).some((s) => s.state === 'ESTABLISHED')
        if (!io.knocked() && !shared && (await watch(Math.min(15_000, ctx.timeoutMs / 2)))) return false
        // It has not: it was not set up yet (or was refused while this charon had no connection), or it holds an SA
        // this host lost when it restarted. Start it from here then, unless the peer is at it right now.
        if ((await io.sas()).some((s) => s.state === 'CONNECTING')) {
          if (await watch(left())) return false
          return fail(io.log(), true)
        }
      }
      const res = await io.initiate(Math.max(1, Math.round(left() / 1000)), left())
      if (await installed()) return false
      // Both ends may start the same CHILD_SA at once: charon then refuses to make a second ("not establishing
      // CHILD_SA ... existing duplicate") and the initiate fails, while the peer's is being installed.
      if (!res.ok && (await waitFor(installed, Math.min(3000, left()), 200))) return false
      // charon may log why (the peer's AUTHENTICATION_FAILED, a certificate it does not trust) a moment after
      // swanctl returns: read its log again before saying only "failed".
      let text = res.text
      if (initiateFailure(text).kind === 'unknown') {
        await new Promise((resolve) => setTimeout(resolve, 1000))
        text = `${text}\n${io.log()}`
      }
      return fail(text, res.timedOut || (!res.ok && Date.now() >= deadline - 500))
    },
  }
}

/** What the steps of a tunnel in the host's own charon share: its log, read from the load on. */
interface SystemLogHolder {
  log?: SystemLog
}

/** The steps of a tunnel in the host's own charon: nothing is started; its connection is loaded over VICI. */
function systemSteps(def: TunnelDef, ctx: TunnelContext, sys: SystemCharon): Step[] {
  const libipsec = ctx.datapath === 'userspace'
  const held: SystemLogHolder = {}
  const steps: Step[] = [systemUseStep(sys, ctx, libipsec), systemLoadStep(def, ctx, sys, held)]
  if (libipsec) steps.push(guardStep(def, ctx))
  if (ctx.wait) steps.push(systemWaitStep(def, ctx, sys, held))
  return steps
}

/** Step: the host's charon answers on its VICI socket (and a TUN device is there for kernel-libipsec). */
function systemUseStep(sys: SystemCharon, ctx: TunnelContext, libipsec: boolean): Step {
  return {
    title: `use ${describeSystem(sys)}`,
    apply: async () => {
      if (libipsec && !tunSupport().present) throw new NetkitError('E_NO_TUN', `kernel-libipsec needs a TUN device: ${tunSupport().how}`, {fix: 'modprobe tun'})
      if (!ctx.runner.dryRun && (await systemPlugins(sys)) === undefined)
        throw new NetkitError('E_SYSTEM_CHARON', `${describeSystem(sys)} does not answer on its VICI socket`, {
          fix: 'check that strongSwan runs (systemctl status strongswan)',
        })
      return false
    },
  }
}

/** Step: the connection's file in the host's swanctl folder, loaded over VICI; a refused one is taken away again. */
function systemLoadStep(def: TunnelDef, ctx: TunnelContext, sys: SystemCharon, held: SystemLogHolder): Step {
  const r = ctx.runner
  const conn = connName(def)
  return {
    title: `load connection ${conn} into it (${systemConfPath(sys, def.name)}, mode 0600)`,
    apply: async () => {
      if (!r.dryRun) held.log = await SystemLog.open(sys)
      try {
        await loadSystemConnection(def, ctx, sys)
        if (!ctx.wait) held.log?.close()
      } catch (error) {
        // A refused file goes too: the operator's next "swanctl --load-all" would stumble on it.
        await systemUnload(def, ctx, sys).catch(() => {})
        held.log?.close()
        const e = error as Error
        if (e instanceof NetkitError) throw e
        throw new NetkitError('E_IKE_CONFIG', `${describeSystem(sys)} did not load connection ${conn}: ${r.redact(e.message)}`, {
          fix: "run with --verbose; check the tunnel's settings (proposals, certificates)",
        })
      }
    },
    undo: async () => {
      held.log?.close()
      await systemUnload(def, ctx, sys)
    },
  }
}

/** Writes the connection's file (certificate paths made absolute, the PSK a secret), links its key, and loads it. */
async function loadSystemConnection(def: TunnelDef, ctx: TunnelContext, sys: SystemCharon): Promise<void> {
  const r = ctx.runner
  const libipsec = ctx.datapath === 'userspace'
  const abs = (p?: string) => (p ? resolve(p) : undefined)
  const shown = {...def, ipsec: {...def.ipsec!, cert: abs(def.ipsec!.cert), ca: abs(def.ipsec!.ca)}}
  const psk = !r.dryRun && def.ipsec!.auth === 'psk' ? readSecretFile(pskPath(ctx.configDir, def.name), 'PSK file') : undefined
  if (psk) r.addSecret(psk)
  if (psk) r.addSecret(swanctlSecret(psk))
  r.writeFile(systemConfPath(sys, def.name), new Secret(r.dryRun ? '' : await renderConnection(shown, psk, false, libipsec)))
  if (def.ipsec!.key) r.symlink(resolve(def.ipsec!.key), systemKeyLink(sys, def.name))
  if (!r.dryRun) return void (await syncConnections(r, sys, [ikeName(def)]))
  // Shown as it would be loaded, with a stand-in for the key (the key file may not be written yet).
  const standIn = await renderConnection(shown, def.ipsec!.auth === 'psk' ? 'dry-run' : undefined, false, libipsec)
  await syncConnections(r, sys, [ikeName(def)], {extra: parseSettings(standIn)})
}

/** Step: initiate through the host's charon and wait for the SAs; its log is closed whatever the outcome. */
function systemWaitStep(def: TunnelDef, ctx: TunnelContext, sys: SystemCharon, held: SystemLogHolder): Step {
  const logText = () => held.log?.text() ?? ''
  const wait = waitStep(def, ctx, ctx.datapath === 'userspace', {
    sas: async () => tunnelSas(def, ctx, charonScope(ctx.configDir, def.netns), sys),
    log: logText,
    knocked: () => false,
    initiate: async (_seconds, timeoutMs) => {
      try {
        const res = await systemInitiate(ctx.runner, sys, ikeName(def), connName(def), timeoutMs)
        return {ok: res.ok, timedOut: /timeout/i.test(res.errmsg ?? ''), text: `${res.errmsg ?? ''}\n${res.log.join('\n')}\n${logText()}`}
      } catch (error) {
        return {ok: false, timedOut: /within/.test((error as Error).message), text: `${(error as Error).message}\n${logText()}`}
      }
    },
  })
  return {
    ...wait,
    apply: async () => {
      try {
        return await wait.apply()
      } finally {
        held.log?.close()
      }
    },
  }
}

/** What the steps of a tunnel in netkit's own charon share: whether this up started it, and where its log stood. */
interface CharonState {
  started: boolean
  /** The charon log's size before the start (what it logged since tells whether the peer knocked). */
  charonStart: number
  /** The charon log's size before the load (what it logged since goes into errors). */
  logStart: number
}

/** Step: netkit's charon for the namespace (or the host), started unless running; stopped on undo if no other tunnel uses it. */
function charonStep(def: TunnelDef, ctx: TunnelContext, scope: CharonScope, state: CharonState): Step {
  const libipsec = ctx.datapath === 'userspace'
  return {
    title: `start the charon of ${def.netns ? `namespace ${def.netns}` : 'this host'} (${libipsec ? 'kernel-libipsec' : 'kernel XFRM'})`,
    apply: async () => {
      if (libipsec && !tunSupport().present) throw new NetkitError('E_NO_TUN', `kernel-libipsec needs a TUN device: ${tunSupport().how}`, {fix: 'modprobe tun'})
      state.charonStart = charonLogSize(scope)
      state.started = await ensureCharon(ctx.runner, scope, libipsec)
      return state.started
    },
    undo: async () => {
      if (state.started && loadedTunnels(scope).filter((n) => n !== def.name).length === 0) await stopCharon(ctx.runner, scope)
    },
  }
}

/** Step: the connection's file, loaded with swanctl; a refused one is taken away again. */
function loadStep(def: TunnelDef, ctx: TunnelContext, scope: CharonScope, state: CharonState): Step {
  return {
    title: `load connection ${connName(def)} (${confPath(scope, def)}, mode 0600)`,
    apply: async () => {
      state.logStart = charonLogSize(scope)
      try {
        await loadConnection(def, ctx, scope)
      } catch (error) {
        // The file is written before swanctl reads it: a refused one goes too, or it would break the next load of every tunnel here.
        await unload(def, ctx, scope).catch(() => {})
        throw error
      }
    },
    undo: async () => {
      await unload(def, ctx, scope)
    },
  }
}

/** Writes the connection (and links its key) and has charon load it. */
async function loadConnection(def: TunnelDef, ctx: TunnelContext, scope: CharonScope): Promise<void> {
  const r = ctx.runner
  const conn = connName(def)
  const psk = !r.dryRun && def.ipsec!.auth === 'psk' ? readSecretFile(pskPath(ctx.configDir, def.name), 'PSK file') : undefined
  if (psk) r.addSecret(psk)
  if (psk) r.addSecret(swanctlSecret(psk))
  r.writeFile(confPath(scope, def), new Secret(r.dryRun ? '' : await renderConnection(def, psk, false, ctx.datapath === 'userspace')))
  if (def.ipsec!.key) r.symlink(resolve(def.ipsec!.key), privateKeyLink(scope, def.name))
  const loaded = await swanctl(r, scope, ['--load-all', '--noprompt', '--file', scope.swanctlConf], {change: true, object: `connection ${conn}`})
  if (!r.dryRun && !/loaded connection '?netkit-/.test(loaded.stdout) && !new RegExp(`\\b${conn}\\b`).test(loaded.stdout)) {
    throw new NetkitError('E_IKE_CONFIG', `charon did not load connection ${conn}`, {
      fix: 'run with --verbose for what swanctl said',
      detail: r.redact(loaded.stdout + loaded.stderr),
    })
  }
}

/** Step: initiate with swanctl through netkit's charon and wait for the SAs. */
function charonWaitStep(def: TunnelDef, ctx: TunnelContext, scope: CharonScope, state: CharonState): Step {
  const r = ctx.runner
  return waitStep(def, ctx, ctx.datapath === 'userspace', {
    sas: async () => tunnelSas(def, ctx, scope),
    log: () => charonLogSince(scope, state.logStart),
    knocked: () => charonLogSince(scope, state.charonStart).includes(`no IKE config found for ${def.local}...${def.remote}`),
    initiate: async (seconds, timeoutMs) => {
      const res = await swanctl(r, scope, ['--initiate', '--ike', ikeName(def), '--child', connName(def), '--timeout', String(seconds)], {
        timeoutMs: timeoutMs + 5000,
      })
      const timedOut = Boolean(res.timedOut) || (res.exitCode !== 0 && /timeout/i.test(res.stdout + res.stderr))
      return {ok: res.exitCode === 0, timedOut, text: `${res.stdout}\n${res.stderr}\n${charonLogSince(scope, state.logStart) || charonLogTail(scope, 20)}`}
    },
  })
}

export const ipsecDriver: TunnelDriver = {
  type: 'ipsec',

  async datapath({runner}, choice) {
    const esp = await espSupport(runner)
    if (choice === 'kernel' && !esp.present) {
      throw new UsageError(
        `--datapath kernel: this kernel has no ESP (CONFIG_INET_ESP; ${esp.how})`,
        "use --datapath auto or userspace (strongSwan's kernel-libipsec)",
      )
    }
    // The host's own charon decides: kernel-libipsec, when it loaded it, takes over from the kernel's XFRM.
    // Looked for once per run with the read cache (it scans /proc), whatever the number of tunnels.
    const sys = runner.netns ? undefined : await runner.memo('system charon', async () => findSystemCharon())
    const plugins = sys ? await runner.memo(`vici stats ${sys.socket}`, () => systemPlugins(sys)) : undefined
    if (sys && plugins) {
      if (plugins.includes('kernel-libipsec')) return {datapath: 'userspace', reason: `strongSwan's kernel-libipsec, which ${describeSystem(sys)} runs`}
      return {
        datapath: esp.present ? 'kernel' : 'userspace',
        reason: esp.present
          ? `the kernel's XFRM and ESP, through ${describeSystem(sys)}`
          : `none: ${describeSystem(sys)} runs without kernel-libipsec and this kernel has no ESP (${esp.how})`,
      }
    }
    if (choice === 'userspace') return {datapath: 'userspace', reason: "strongSwan's kernel-libipsec, as asked with --datapath userspace"}
    if (!esp.present)
      return {datapath: 'userspace', reason: `strongSwan's kernel-libipsec (ESP in UDP 4500 through a TUN device): this kernel has no ESP (${esp.how})`}
    return {datapath: 'kernel', reason: `the kernel's XFRM and ESP (${esp.how})`}
  },

  async hostCheck(def: TunnelDef, ctx: TunnelContext, opts: {inFile?: boolean} = {}): Promise<void> {
    const sys = systemCharonFor(def, ctx.configDir)
    if (sys) await checkSystem(def, sys, ctx, opts.inFile)
  },

  async check(def: TunnelDef, ctx: TunnelContext, psk?: string): Promise<void> {
    await ipsecDriver.hostCheck!(def, ctx)
    if (ctx.datapath === 'userspace' && def.localSubnets.length === 0 && def.remoteSubnets.length === 0) {
      throw new UsageError(
        'host-to-host IPsec needs the kernel data path: with kernel-libipsec the route to the peer would carry IKE itself',
        'give --local-subnet and --remote-subnet (site to site), or run on a kernel with ESP',
      )
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
        throw new UsageError(
          `tunnel ${o.name} already joins ${mine.localId} and ${mine.remoteId}, and the tunnels between two hosts share one IKE SA: this one differs in ${flags}`,
          `give tunnel ${def.name} the same ${flags} as ${o.name}${differ.includes('--psk-file') ? ` (its key is in ${pskPath(ctx.configDir, o.name)})` : ''}, or other identities (--local-id, --remote-id)`,
        )
      }
    }
  },

  /** In the host's own charon when it runs one (systemSteps); otherwise: charon, connection, guards, then the answer or the wait. */
  async up(def: TunnelDef, ctx: TunnelContext): Promise<Step[]> {
    const sys = systemCharonFor(def, ctx.configDir)
    if (sys) return systemSteps(def, ctx, sys)
    const scope = charonScope(ctx.configDir, def.netns)
    const libipsec = ctx.datapath === 'userspace'
    const state: CharonState = {started: false, charonStart: 0, logStart: 0}
    const steps: Step[] = [charonStep(def, ctx, scope, state), loadStep(def, ctx, scope, state)]
    if (libipsec) steps.push(guardStep(def, ctx))
    if (!ctx.wait && peerStarts(def, libipsec)) steps.push(answerStep(def, ctx, scope))
    if (ctx.wait) steps.push(charonWaitStep(def, ctx, scope, state))
    return steps
  },

  async down(def: TunnelDef, ctx: TunnelContext): Promise<void> {
    const scope = charonScope(ctx.configDir, def.netns)
    const sys = systemCharonFor(def, ctx.configDir)
    if (sys) {
      if (existsSync(systemConfPath(sys, def.name)) || ((await systemConns(sys)) ?? []).includes(ikeName(def))) await systemUnload(def, ctx, sys)
    } else {
      if (existsSync(confPath(scope, def)) || charonPid(scope) !== undefined) await unload(def, ctx, scope)
      // No charon and no other tunnel: what an add killed as charon started left (its strongswan.conf) goes too.
      else if (loadedTunnels(scope).filter((n) => n !== def.name).length === 0) await stopCharon(ctx.runner, scope)
      // Its file in the host's strongSwan, from when that ran (it has stopped since): nothing holds it now.
      const stale = systemConfPath({confD: join(SYSTEM_SWANCTL_DIR, 'conf.d')}, def.name)
      if (!def.netns && existsSync(stale) && readFileSync(stale, 'utf8').startsWith('# Written by netkit')) {
        ctx.runner.removeFiles([stale, systemKeyLink({swanctlDir: SYSTEM_SWANCTL_DIR}, def.name)])
      }
    }
    await removeGuards(def, ctx)
  },

  async purge(def: TunnelDef, ctx: TunnelContext): Promise<void> {
    // The certificates the wizard made for this tunnel (and, with the last such tunnel, its CA and this host's).
    removeIssuedFor(
      ctx.runner,
      def,
      ctx.configDir,
      listDefs(ctx.configDir).filter((o) => o.name !== def.name),
    )
  },

  async status(def: TunnelDef, ctx: TunnelContext): Promise<TunnelStatus> {
    const scope = charonScope(ctx.configDir, def.netns)
    const conn = connName(def)
    const sys = systemCharonFor(def, ctx.configDir)
    const pid = sys ? sys.pid : charonPid(scope)
    const file = sys ? systemConfPath(sys, def.name) : confPath(scope, def)
    // In the host's charon, the file is not enough: a restart of strongSwan that did not load it has dropped the connection.
    const loaded = existsSync(file) && (!sys || ((await loadedConns(ctx.runner, sys)) ?? []).includes(ikeName(def)))
    const libipsec = sys ? undefined : charonUsesLibipsec(scope)
    const datapath = libipsec === undefined ? ctx.datapath : libipsec ? 'userspace' : 'kernel'
    const charon = sys ? {pid: sys.pid, program: sys.program, socket: sys.socket, system: true} : {pid, socket: scope.socket}
    if (pid === undefined || !loaded) {
      return {
        state: 'down',
        datapath,
        details: {charon: pid === undefined ? 'not running' : 'running', connection: ikeName(def), child: conn, loaded, ikeSas: []},
      }
    }
    // The IKE SAs of the connection (shared with the tunnels to the same peer), each with this tunnel's CHILD_SAs only.
    const sas = await tunnelSas(def, ctx, scope, sys)
    const ike = sas.find((s) => s.state === 'ESTABLISHED' && s.children.some((c) => c.state === 'INSTALLED')) ?? sas.find((s) => s.state === 'ESTABLISHED')
    const child = ike?.children.find((c) => c.state === 'INSTALLED')
    const now = Date.now()
    return {
      state: ike && child ? 'up' : 'connecting',
      datapath,
      ...(ike?.established !== undefined ? {since: new Date(now - ike.established * 1000).toISOString()} : {}),
      details: {
        charon,
        connection: ikeName(def),
        child: conn,
        config: file,
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
