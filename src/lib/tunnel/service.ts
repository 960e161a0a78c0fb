/**
 * Tunnels as a whole: add (idempotent, with rollback), up, down, del, list,
 * show. The type-specific work is the driver's (registry.ts); this module
 * owns what every tunnel shares: the definition on disk, its secrets, the
 * host settings a routed tunnel needs (forwarding, proxy ARP), and the
 * choice of data path.
 */
import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {NetkitError, UsageError} from '../errors.js'
import {pruneDaemonDir} from '../daemons.js'
import {pruneEmptyDirs, pruneTree, readSecretFile} from '../files.js'
import {release, scopeOf} from '../ownership.js'
import {runPlan, type Step} from '../plan.js'
import {type Runner, Secret} from '../runner.js'
import {forgetGoneInterfaces} from '../sysctl.js'
import {phase} from '../timing.js'
import {driverFor} from './registry.js'
import {diffDefs, listDefs, listScopes, loadDef, pskPath, removeDef, sameDef, saveDef, scopeDir} from './store.js'
import type {TunnelContext, TunnelDef, TunnelStatus} from './types.js'
import {hostSettings, hostSteps, restoreHost} from './host.js'
import {refuseTakeover} from './routes.js'
import {requireUnderlay} from './underlay.js'
import {tunnelName} from './define.js'
import {ensureKeyPair} from './wireguard/keys.js'
import {peerSteps} from './wireguard/driver.js'
import {canonical} from './store.js'
import {checkPeer, checkPeerSet, isInterface, peerName, type PeerInput, peersOf, samePeers, withPeers} from './wireguard/peers.js'
import type {WgPeer} from './types.js'
import {inNamespace} from '../wording.js'

export interface ServiceOptions {
  runner: Runner
  configDir: string
  timeoutMs?: number
  progress?: 'tty' | 'simple' | 'none'
  /** Wait until the tunnel is proven up (default: true). */
  wait?: boolean
}

export interface AddResult {
  changed: boolean
  /** The state after the change (undefined in a dry run). */
  state?: TunnelStatus['state']
  summary: string
  datapath: string
  datapathReason: string
  steps: string[]
}

/** `known`: the data path, when the caller knows it already (a running device says its own). */
async function contextFor(def: TunnelDef, opts: ServiceOptions, known?: {datapath: TunnelContext['datapath']; reason: string}): Promise<TunnelContext> {
  const runner = opts.runner.in(def.netns ?? null)
  const driver = driverFor(def.type)
  const {datapath, reason} = known ?? (await driver.datapath({runner}, def.datapath))
  return {
    runner,
    configDir: scopeDir(opts.configDir, def.netns),
    datapath,
    datapathReason: reason,
    timeoutMs: opts.timeoutMs ?? 30_000,
    wait: opts.wait ?? true,
  }
}

/**
 * What the host cannot give a tunnel, whatever else changes (the data path it
 * asks for, what the host's own charon lacks): refused before anything
 * changes. `tunnel add` says it through its driver's check; apply's plan
 * (and so diff and --dry-run) asks here for each tunnel it would set up.
 */
export async function refuseUnfit(def: TunnelDef, opts: ServiceOptions & {inFile?: boolean}): Promise<void> {
  const ctx = await contextFor(def, opts)
  await driverFor(def.type).hostCheck?.(def, ctx, {inFile: opts.inFile})
}

type AddOptions = ServiceOptions & {replace?: boolean; psk?: Secret; keepPeers?: boolean}

/**
 * Adds a tunnel. Identical definition already up: a no-op. Identical but
 * down: brings it up. Different: an error unless `replace`.
 */
export async function addTunnel(def: TunnelDef, opts: AddOptions): Promise<AddResult> {
  const dir = scopeDir(opts.configDir, def.netns)
  const driver = driverFor(def.type)
  const ctx = await contextFor(def, opts)
  const existing = loadDef(dir, def.name)
  // "tunnel add" of a WireGuard interface says nothing of its peers ("tunnel peer add" does): those it has stay.
  if (opts.keepPeers && existing && isInterface(existing) && isInterface(def)) def = withPeers(def, existing.wireguard!.peers!)
  const pskFile = pskPath(dir, def.name)
  const pskSame = !opts.psk || (existsSync(pskFile) && readSecretFile(pskFile, 'PSK file') === opts.psk.value)

  const replacing = Boolean(existing && !(sameDef(existing, def) && pskSame))
  if (existing) {
    const noop = await upAlready(def, existing, replacing, ctx, opts)
    if (noop) return noop
  }
  await refuseBeforeAdd(def, ctx, opts)

  const steps: Step[] = []
  // The old tunnel goes down in the plan only: there a failure or a signal brings it back.
  if (existing && replacing) steps.push(replaceStep(existing, ctx, opts))
  steps.push(saveDefStep(dir, def, existing, ctx))
  if (opts.psk) steps.push(pskStep(pskFile, opts.psk, ctx.runner))
  steps.push(...(await hostSteps(def, ctx)), ...(await driver.up(def, ctx)))
  const result = await runAddPlan(steps, def, ctx, opts)
  const state = ctx.runner.dryRun ? undefined : (await driver.status(def, ctx)).state
  return {
    changed: true,
    state,
    summary: `${ctx.runner.dryRun ? (existing ? 'would bring up' : 'would add') : existing ? 'brought up' : 'added'} tunnel ${def.name} (${def.type}, ${ctx.datapath} data path${state === 'connecting' ? ', waiting for the peer' : ''})`,
    datapath: ctx.datapath,
    datapathReason: ctx.datapathReason,
    steps: result.changed,
  }
}

/** A tunnel of this name exists: the no-op result when it is the same and not down; a conflict when it differs and --replace is not given. */
async function upAlready(def: TunnelDef, existing: TunnelDef, replacing: boolean, ctx: TunnelContext, opts: AddOptions): Promise<AddResult | undefined> {
  if (!replacing) {
    const status = await driverFor(def.type).status(existing, ctx)
    if (status.state === 'down') return undefined
    return {
      changed: false,
      summary: `tunnel ${def.name} is already set up (${status.state})`,
      datapath: ctx.datapath,
      datapathReason: ctx.datapathReason,
      steps: [],
    }
  }
  if (!opts.replace) {
    const fields = sameDef(existing, def) ? ['psk'] : diffDefs(existing, def)
    throw new NetkitError('E_CONFLICT', `tunnel ${def.name} already exists with a different definition (${fields.join(', ')})`, {
      fix: 'pass --replace to replace it, or delete it first with "netkit tunnel del"',
    })
  }
  return undefined
}

/**
 * Nothing can work without a path to the peer, nor by taking another tunnel's subnets: say so before changing anything.
 * (A WireGuard interface has peers instead: one that cannot be reached now is reached when it can.)
 */
async function refuseBeforeAdd(def: TunnelDef, ctx: TunnelContext, opts: AddOptions): Promise<void> {
  if (def.remote) await requireUnderlay(ctx.runner, def.remote, def.name)
  await refuseTakeover(def, ctx)
  await driverFor(def.type).check?.(def, ctx, opts.psk?.value)
}

/**
 * Written ahead: the definition is stored before anything of the tunnel exists, so that whatever a
 * kill -9 leaves half made is a tunnel that "tunnel del", "tunnel up" and the doctor know.
 */
function saveDefStep(dir: string, def: TunnelDef, existing: TunnelDef | undefined, ctx: TunnelContext): Step {
  return {
    title: 'save the tunnel definition',
    apply: async () => {
      saveDef(ctx.runner, dir, def)
    },
    // A replaced tunnel gets its old definition back, so what is stored is what runs.
    undo: async () => {
      if (existing) saveDef(ctx.runner, dir, existing)
      else removeDef(ctx.runner, dir, def.name)
    },
  }
}

/** Runs the add's steps; undone (a failure, a refusal, a signal), the directories its files were written to go too. */
async function runAddPlan(steps: Step[], def: TunnelDef, ctx: TunnelContext, opts: AddOptions): ReturnType<typeof runPlan> {
  try {
    return await runPlan(steps, {runner: ctx.runner, progress: opts.progress})
  } catch (error) {
    if (!ctx.runner.dryRun) tidyScope(opts.configDir, def.netns)
    throw error
  }
}

/**
 * `--replace`: the old tunnel goes down first; if the new one cannot be made,
 * the undo brings the old one back up, running as before (the save step's
 * undo has put its definition back by then).
 */
function replaceStep(old: TunnelDef, ctx: TunnelContext, opts: ServiceOptions): Step {
  let halfDown = false
  return {
    title: `take down the old tunnel ${old.name}`,
    // Half taken down (a route that would not go): it comes back up all the same.
    undoIfFailed: true,
    apply: async () => {
      halfDown = true
      await driverFor(old.type).down(old, ctx)
      halfDown = false
      if (ctx.runner.dryRun) ctx.replacing = true
    },
    undo: async () => {
      const back = await contextFor(old, {...opts, wait: false})
      // What is still up of it goes first (its device, its daemon), so that it is made again whole.
      if (halfDown)
        await driverFor(old.type)
          .down(old, back)
          .catch(() => {})
      await runPlan([...(await hostSteps(old, back)), ...(await driverFor(old.type).up(old, back))], {runner: back.runner})
    },
  }
}

function pskStep(path: string, psk: Secret, runner: Runner): Step {
  let before: string | undefined
  let written = false
  return {
    title: 'store the pre-shared key (mode 0600)',
    apply: async () => {
      before = existsSync(path) ? readSecretFile(path, 'PSK file') : undefined
      if (before === psk.value) return false
      runner.writeFile(path, new Secret(psk.value + '\n'))
      written = !runner.dryRun
    },
    // The key the tunnel had before (a --replace with a new key that failed), or none.
    undo: async () => {
      if (!written) return
      if (before === undefined) runner.removeFiles([path])
      else runner.writeFile(path, new Secret(before + '\n'))
    },
  }
}

export function requireDef(configDir: string, name: string, netns?: string): TunnelDef {
  const def = loadDef(scopeDir(configDir, netns), name)
  if (!def) {
    throw new UsageError(`there is no tunnel ${name}${inNamespace(netns)}`, 'see "netkit tunnel list"', 'E_NO_TUNNEL')
  }
  return def
}

/** Brings a defined tunnel up (no-op if it is). */
export async function upTunnel(def: TunnelDef, opts: ServiceOptions): Promise<AddResult> {
  return addTunnel(def, opts)
}

/** Takes a tunnel's runtime objects down, keeping its definition. */
export async function downTunnel(def: TunnelDef, opts: ServiceOptions): Promise<boolean> {
  const ctx = await contextFor(def, opts)
  const driver = driverFor(def.type)
  const before = await driver.status(def, ctx)
  await driver.down(def, ctx)
  return before.state !== 'down'
}

/** Removes everything the tunnel made, its secrets and its definition. */
export async function delTunnel(def: TunnelDef, opts: ServiceOptions): Promise<void> {
  const ctx = await contextFor(def, opts)
  const driver = driverFor(def.type)
  await driver.down(def, ctx)
  await driver.purge?.(def, ctx)
  const dir = scopeDir(opts.configDir, def.netns)
  const others = listDefs(dir).filter((d) => d.name !== def.name)
  await restoreHost(def, ctx, others)
  // Its secrets and its definition (shown in a dry run).
  ctx.runner.removeFiles(['psk', 'key', 'pub'].map((ext) => `${dir}/secrets/${def.name}.${ext}`))
  removeDef(ctx.runner, dir, def.name)
  if (ctx.runner.dryRun) return
  // The keys of its device (or of charon's ipsec0) went with it: nothing to put back.
  await forgetGoneInterfaces(ctx.runner)
  // Made by apply or not, it is gone: apply no longer has it to remove.
  release(scopeOf(def.netns), 'applied', `tunnel:${def.name}`)
  tidyScope(opts.configDir, def.netns)
}

/**
 * Removes the directories of a scope that nothing is left in (secrets/,
 * tunnels/, wireguard/, then a namespace's own directory), and its daemons
 * directory under the state directory: netkit leaves no empty directory.
 */
export function tidyScope(configDir: string, netns?: string): void {
  const dir = scopeDir(configDir, netns)
  for (const sub of ['secrets', 'tunnels', 'wireguard']) pruneEmptyDirs(join(dir, sub), configDir)
  if (netns) pruneTree(dir, configDir)
  pruneDaemonDir(netns)
}

export interface TunnelRow {
  name: string
  netns: string | null
  type: string
  /** The underlay addresses (null for a WireGuard interface with peers). */
  local: string | null
  remote: string | null
  /** A WireGuard interface's number of peers (null for the other tunnels). */
  peers: number | null
  state: TunnelStatus['state']
  datapath: string
  since: string | null
  localSubnets: string[]
  remoteSubnets: string[]
}

export async function tunnelStatus(def: TunnelDef, opts: ServiceOptions): Promise<TunnelStatus> {
  // A WireGuard device (or its wireguard-go) says its own data path: the kernel's module is looked for only without one.
  const wg = def.type === 'wireguard'
  const ctx = await contextFor(def, opts, wg ? PROVISIONAL : undefined)
  try {
    const status = await driverFor(def.type).status(def, ctx)
    return wg && !wgRunning(status) ? {...status, datapath: (await contextFor(def, opts)).datapath} : status
  } catch (error) {
    if (error instanceof NetkitError && error.code === 'E_NO_NETNS')
      return {state: 'down', datapath: (await contextFor(def, opts)).datapath, details: {error: error.what}}
    throw error
  }
}

/**
 * A data path to start from where the WireGuard driver's status tells the real one: it is used only when there is
 * no device, and then looked up. ('kernel': `wg` is run as itself, unless a wireguard-go is there to nsenter.)
 */
const PROVISIONAL = {datapath: 'kernel', reason: ''} as const
/** Whether a WireGuard tunnel's device or its wireguard-go is there (its status's data path is then the device's own). */
const wgRunning = (status: TunnelStatus): boolean => status.details.mtu != null || status.details.wireguardGoPid != null

export async function listTunnels(opts: ServiceOptions & {netns?: string}): Promise<TunnelRow[]> {
  const scopes = listScopes(opts.configDir).filter((s) => opts.netns === undefined || s.netns === opts.netns)
  const defs = scopes.flatMap((s) => listDefs(s.dir))
  // One snapshot for all tunnels: each daemon's and the kernel's state is read once and every tunnel filters it.
  const read = {...opts, runner: opts.runner.cachesReads ? opts.runner : opts.runner.withReadCache()}
  return Promise.all(
    defs.map(async (def) => {
      const st = await tunnelStatus(def, read)
      return {
        name: def.name,
        netns: def.netns ?? null,
        type: def.type,
        local: def.local ?? null,
        remote: def.remote ?? null,
        peers: isInterface(def) ? Object.keys(def.wireguard!.peers!).length : null,
        state: st.state,
        datapath: st.datapath,
        since: st.since ?? null,
        localSubnets: def.localSubnets,
        remoteSubnets: def.remoteSubnets,
      }
    }),
  )
}

/** A tunnel's WireGuard public key, making the key pair if it has none (before or after `add`). */
export function tunnelPublicKey(runner: Runner, configDir: string, name: string, netns?: string): {publicKey: string; created: boolean} {
  tunnelName(name)
  const def = loadDef(scopeDir(configDir, netns), name)
  if (def && def.type !== 'wireguard')
    throw new UsageError(`tunnel ${name} is a ${def.type} tunnel, which has no public key`, 'pubkey is for WireGuard tunnels')
  const k = ensureKeyPair(runner, scopeDir(configDir, netns), name)
  return {publicKey: k.publicKey, created: k.created}
}

export interface PeerResult {
  changed: boolean
  summary: string
  /** The tunnel's device is not there: the definition changed, the device gets the peers when the tunnel comes up. */
  down: boolean
  steps: string[]
}

/** A tunnel that takes peers by name: a WireGuard interface (made without --remote). */
export function requireInterface(configDir: string, name: string, netns?: string): TunnelDef {
  const def = requireDef(configDir, name, netns)
  if (def.type !== 'wireguard')
    throw new UsageError(
      `tunnel ${name} is a ${def.type} tunnel, which has no peers by name`,
      'peers are for WireGuard interfaces ("netkit tunnel add NAME --type wireguard" without --remote)',
    )
  if (!isInterface(def)) {
    throw new UsageError(
      `tunnel ${name} has its one peer given by --remote`,
      `make a WireGuard interface without --remote for peers by name ("netkit tunnel del ${name}", then "netkit tunnel add ${name} --type wireguard --address ..." and "netkit tunnel peer add")`,
    )
  }
  return def
}

/**
 * Takes a WireGuard interface's peers to `peers`: one `wg set` that names only
 * the peers that change (and their routes, and the host settings the new
 * routes need), so the device is not restarted and the other peers' sessions
 * go on. The definition is stored first; a failure undoes it all. A peer the
 * device lost (removed behind netkit's back) is set again. `def`: the stored
 * definition.
 */
export async function setPeers(def: TunnelDef, peers: Record<string, WgPeer>, opts: ServiceOptions & {status?: TunnelStatus}): Promise<PeerResult> {
  phase('peers: defined')
  const dir = scopeDir(opts.configDir, def.netns)
  const next = withPeers(def, peers)
  // The device says its data path (a kernel device, or wireguard-go's): the module is looked for only when it is down.
  const provisional = await contextFor(def, opts, PROVISIONAL)
  // `status`: read by the caller under the same lock, with nothing changed to the device since (apply's live read).
  const status = opts.status ?? (await driverFor('wireguard').status(def, provisional))
  const ctx = wgRunning(status)
    ? {...provisional, datapath: status.datapath as TunnelContext['datapath'], datapathReason: `the device's (${status.datapath})`}
    : await contextFor(def, opts)
  phase('peers: device read')
  const down = status.state === 'down'
  // What the device has (by key): the change is made against that.
  const present = new Set(((status.details.peers ?? []) as {publicKey: string; present: boolean}[]).filter((p) => p.present).map((p) => p.publicKey))
  const onDevice = down ? def : withPeers(def, Object.fromEntries(Object.entries(def.wireguard!.peers!).filter(([, p]) => present.has(p.publicKey))))
  const missing = peersOf(next).filter((p) => !down && !present.has(p.publicKey))
  // (`next` is `def` with other peers and the routes they need: comparing those is comparing the two.)
  const same = samePeers(def.wireguard!.peers!, next.wireguard!.peers!) && def.remoteSubnets.join() === next.remoteSubnets.join()
  if (same && missing.length === 0) return {changed: false, down, summary: 'nothing to change', steps: []}
  // A route another tunnel (or something else) has is not taken over: said before anything changes.
  const newRoutes = next.remoteSubnets.filter((s) => !def.remoteSubnets.includes(s))
  if (newRoutes.length) await refuseTakeover({...next, remoteSubnets: newRoutes}, ctx)
  phase('peers: routes checked')
  const steps: Step[] = [
    {
      title: 'save the tunnel definition',
      apply: async () => {
        saveDef(ctx.runner, dir, next)
      },
      undo: async () => {
        saveDef(ctx.runner, dir, def)
      },
    },
  ]
  // The host settings follow what the tunnel routes (forwarding for subnets): looked at only when that changes.
  const facts = {datapath: ctx.datapath}
  const settingsChange = canonical(hostSettings(def, facts)) !== canonical(hostSettings(next, facts))
  const mtu = (status.details.mtu as number | null) ?? 1420
  if (!down) steps.push(...(settingsChange ? await hostSteps(next, ctx) : []), ...peerSteps(onDevice, next, ctx, mtu))
  const result = await runPlan(steps, {runner: ctx.runner, progress: opts.progress})
  phase('peers: changed')
  // Settings only the removed peers' routes needed go back (as "tunnel del" does for a tunnel).
  if (!down && settingsChange) await restoreHost(def, ctx, [next, ...listDefs(dir).filter((d) => d.name !== def.name)])
  return {changed: true, down, summary: `set the peers of tunnel ${def.name}`, steps: result.changed}
}

/** `tunnel peer add`: a new peer, or (with `replace`) a peer changed in place. */
export async function addPeer(
  def: TunnelDef,
  name: string,
  input: PeerInput,
  opts: ServiceOptions & {replace?: boolean},
): Promise<PeerResult & {peer: WgPeer}> {
  peerName(name)
  const peer = checkPeer(input, `peer ${name}`)
  const peers = {...def.wireguard!.peers!}
  const old = peers[name]
  if (old && canonical(old) !== canonical(peer) && !opts.replace) {
    const fields = (Object.keys({...old, ...peer}) as (keyof WgPeer)[]).filter((k) => canonical(old[k]) !== canonical(peer[k]))
    throw new NetkitError('E_CONFLICT', `tunnel ${def.name} has a peer ${name} with a different definition (${fields.join(', ')})`, {
      fix: 'pass --replace to change it (only that peer is touched), or remove it first with "netkit tunnel peer del"',
    })
  }
  peers[name] = peer
  checkPeerSet(peers, def)
  return {...(await setPeers(def, peers, opts)), peer}
}

/** `tunnel peer del`: the peer and its routes go; an absent one is a no-op. */
export async function delPeer(def: TunnelDef, name: string, opts: ServiceOptions): Promise<PeerResult> {
  const peers = {...def.wireguard!.peers!}
  if (!peers[name]) return {changed: false, down: false, summary: `tunnel ${def.name} has no peer ${name}`, steps: []}
  delete peers[name]
  return setPeers(def, peers, opts)
}
