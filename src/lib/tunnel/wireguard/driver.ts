/**
 * WireGuard between two hosts. The device is the kernel's where the kernel
 * has the module, and wireguard-go's (a TUN device) where it has not.
 *
 * wireguard-go's control socket is /run/wireguard/<ifname>.sock, and /run is
 * shared by every network namespace: two namespaces could not both have a
 * wg-t1. So in a namespace, wireguard-go runs in a private mount namespace of
 * its own with a fresh /run/wireguard, and netkit runs `wg` inside it with
 * `nsenter -t <pid> -m` (OpenStack solves the same for charon with bind
 * mounts). In the root namespace it runs as wg-quick would start it, and `wg`
 * works as usual.
 *
 * The private key goes to `wg set ... private-key FILE` through a short-lived
 * 0600 file, never on an argv; the wg-quick-compatible config is written with mode 0600.
 */
import {existsSync, readFileSync, rmSync} from 'node:fs'
import {join} from 'node:path'

import {adoptDaemon, daemonAlive, daemonLog, daemonPid, type DaemonRef, startDaemon, stopDaemon, waitFor} from '../../daemons.js'
import {NetkitError, UsageError} from '../../errors.js'
import {tunSupport, wireguardSupport} from '../../kernel.js'
import {NETKIT_ALIAS} from '../../ownership.js'
import type {Step} from '../../plan.js'
import {type Invocation, Secret} from '../../runner.js'
import {renderTemplate} from '../../templates.js'
import {LINKS_WITH_ADDRESSES} from '../../iproute2/json.js'
import {ensureProtoName} from '../../iproute2/tables.js'
import {addRoutes, removeRoutes, routeSteps} from '../routes.js'
import type {TunnelContext, TunnelDef, TunnelDriver, TunnelStatus} from '../types.js'
import {underlayTo} from '../underlay.js'
import {ensureKeyPair, readPrivateKey, wgKeyPath} from './keys.js'
import {type UapiDump, uapiGet} from './uapi.js'
import {isInterface, type NamedPeer, onePeerAllowedIps, peerSetArgs, peersOf} from './peers.js'
import {inNamespace, netnsFlag} from '../../wording.js'

/** Outer IPv6 (40) + UDP (8) + WireGuard (32): what wg-quick subtracts. */
export const WG_OVERHEAD = 80
/** WireGuard drops a session older than this (REJECT_AFTER_TIME), in seconds. */
export const REJECT_AFTER_TIME = 180

/**
 * The one shell netkit runs: a fixed script that mounts a private
 * /run/wireguard and execs its arguments ("$@"), which are an argv: nothing
 * user-given is ever parsed by the shell.
 */
const PRIVATE_RUN_SCRIPT = 'mkdir -p /run/wireguard && mount -t tmpfs -o mode=0700 netkit-wg /run/wireguard && exec "$@"'

interface LinkJson {
  ifname: string
  mtu?: number
  operstate?: string
  flags?: string[]
  ifalias?: string
  linkinfo?: {info_kind?: string}
}

function goRef(def: TunnelDef): DaemonRef {
  return {netns: def.netns, name: `wireguard-go.${def.wireguard!.ifname}`, match: 'wireguard-go'}
}

/** The mark netkit puts in the environment of the wireguard-go it starts: this variable, set to its device's name. */
const GO_MARK = 'NETKIT_WIREGUARD_GO'
const goMark = (def: TunnelDef) => `${GO_MARK}=${def.wireguard!.ifname}`

/**
 * The pid of this tunnel's wireguard-go: recorded, or one netkit started and
 * never recorded (killed between its start and its pid file), found by its
 * mark and recorded now, so that down and del stop it.
 */
function goPid(def: TunnelDef): number | undefined {
  return daemonPid(goRef(def)) ?? adoptDaemon(goRef(def), ['wireguard-go'], goMark(def))
}

export function wgConfPath(scopeDir: string, ifname: string): string {
  return join(scopeDir, 'wireguard', `${ifname}.conf`)
}

/** What the peers may send from, and what goes to them: every peer's allowed-ips. */
export function allowedIps(def: TunnelDef): string[] {
  return isInterface(def) ? peersOf(def).flatMap((p) => p.allowedIps) : onePeerAllowedIps(def)
}

/**
 * The device's MTU: the underlay's less WireGuard's overhead. The one-peer
 * form takes the underlay toward its peer; an interface, whose peers come and
 * go, the device of the default route (1500 without one), as wg-quick does.
 */
async function deviceMtu(def: TunnelDef, ctx: TunnelContext): Promise<number> {
  if (def.mtu) return def.mtu
  if (def.remote) return ((await underlayTo(ctx.runner, def.remote))?.mtu ?? 1500) - WG_OVERHEAD
  const r = await ctx.runner.probe({tool: 'ip', args: ['-j', 'route', 'show', 'default']})
  const dev = r.exitCode === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as {dev?: string}[])[0]?.dev : undefined
  const link = dev ? await readLink(ctx, dev) : undefined
  return (link?.mtu ?? 1500) - WG_OVERHEAD
}

/** The wg-quick config of the tunnel (mode 0600: it holds the private key, and the peers' PSKs). */
async function writeConf(def: TunnelDef, ctx: TunnelContext, privateKey: string, mtu: number): Promise<void> {
  const w = def.wireguard!
  const peers = peersOf(def).map((p) => {
    let psk: string | undefined
    if (p.pskFile) {
      try {
        psk = readFileSync(p.pskFile, 'utf8').trim()
        ctx.runner.addSecret(psk)
      } catch {
        psk = undefined
      }
    }
    return {...p, psk}
  })
  const text = await renderTemplate('wireguard/wg-quick.conf.eta', {
    name: def.name,
    privateKey,
    listenPort: w.listenPort,
    address: w.address,
    mtu,
    fwmark: w.fwmark,
    peers,
    named: isInterface(def),
  })
  ctx.runner.writeFile(wgConfPath(ctx.configDir, w.ifname), new Secret(text))
}

async function readLink(ctx: TunnelContext, ifname: string): Promise<LinkJson | undefined> {
  // With the read cache (tunnel list, the doctor): one read of the namespace's links for every tunnel and check.
  if (ctx.runner.cachesReads) {
    const all = await ctx.runner.probe({tool: 'ip', args: LINKS_WITH_ADDRESSES})
    if (all.exitCode === 0) return (JSON.parse(all.stdout) as LinkJson[]).find((l) => l.ifname === ifname)
  }
  const r = await ctx.runner.probe({tool: 'ip', args: ['-j', '-d', 'link', 'show', 'dev', ifname]})
  if (r.exitCode !== 0) return undefined
  return (JSON.parse(r.stdout) as LinkJson[])[0]
}

/** How to run `wg` for this tunnel: inside wireguard-go's mount namespace when it has one. */
function wg(def: TunnelDef, ctx: TunnelContext, args: string[], extra: Partial<Invocation> = {}): Invocation {
  if (def.netns && daemonPid(goRef(def)) !== undefined) {
    return {tool: 'nsenter', args: ['-t', String(daemonPid(goRef(def))), '-m', 'wg', ...args], ...extra}
  }
  if (def.netns && ctx.datapath === 'userspace' && ctx.runner.dryRun) {
    return {tool: 'nsenter', args: ['-t', '$WIREGUARD_GO_PID', '-m', 'wg', ...args], ...extra}
  }
  return {tool: 'wg', args, ...extra}
}

function logTail(def: TunnelDef): string {
  try {
    return readFileSync(daemonLog(goRef(def)), 'utf8')
      .trim()
      .split('\n')
      .slice(-5)
      .join('\n')
  } catch {
    return ''
  }
}

/** A device's state as `wg show IF dump` (or its control socket: uapi.ts) tells it, without its private key. */
export type WgDump = UapiDump
export type WgPeerState = UapiDump['peers'][number]

/**
 * Parses `wg show IF dump`. Its first line starts with the private key: that
 * field is dropped here and never kept.
 */
export function parseWgDump(text: string): WgDump | undefined {
  const lines = text.split('\n').filter(Boolean)
  if (lines.length === 0) return undefined
  const head = lines[0].split('\t')
  return {
    publicKey: head[1],
    listenPort: Number(head[2]),
    fwmark: head[3] && head[3] !== 'off' ? Number(head[3]) : null,
    peers: lines.slice(1).map((l) => {
      const f = l.split('\t')
      return {
        publicKey: f[0],
        endpoint: f[2] === '(none)' ? null : f[2],
        allowedIps: f[3] === '(none)' ? [] : f[3].split(','),
        latestHandshake: Number(f[4]) || 0,
        rxBytes: Number(f[5]) || 0,
        txBytes: Number(f[6]) || 0,
        keepalive: f[7] && f[7] !== 'off' ? Number(f[7]) : null,
      }
    }),
  }
}

/** Where wireguard-go's control socket for the device is, as netkit sees it (in its private mount namespace, through /proc). */
function controlSocket(def: TunnelDef): string | undefined {
  const ifname = def.wireguard!.ifname
  if (!def.netns) return `/var/run/wireguard/${ifname}.sock`
  const pid = daemonPid(goRef(def))
  return pid === undefined ? undefined : `/proc/${pid}/root/run/wireguard/${ifname}.sock`
}

async function readDump(def: TunnelDef, ctx: TunnelContext): Promise<WgDump | undefined> {
  // With the read cache (tunnel list, the doctor), wireguard-go's device answers over its socket, once per run: no process.
  const socket = ctx.runner.cachesReads && ctx.runner.real ? controlSocket(def) : undefined
  if (socket && existsSync(socket)) {
    const dump = await ctx.runner.memo(`wireguard uapi ${socket}`, () => uapiGet(socket))
    if (dump) return dump
  }
  const inv = wg(def, ctx, ['show', def.wireguard!.ifname, 'dump'])
  // With the read cache (tunnel list, the doctor), one `wg show all dump` serves every device `wg` reaches from here.
  if (ctx.runner.cachesReads && inv.tool === 'wg') {
    const all = await ctx.runner.probe({tool: 'wg', args: ['show', 'all', 'dump']})
    const mine = all.exitCode === 0 ? splitAllDump(all.stdout).get(def.wireguard!.ifname) : undefined
    if (mine) return parseWgDump(mine)
  }
  const r = await ctx.runner.probe(inv)
  return r.exitCode === 0 ? parseWgDump(r.stdout) : undefined
}

/** `wg show all dump` as the `wg show IF dump` text of each device (its lines start with the device's name). */
export function splitAllDump(text: string): Map<string, string> {
  const by = new Map<string, string>()
  for (const line of text.split('\n')) {
    const tab = line.indexOf('\t')
    if (tab <= 0) continue
    const dev = line.slice(0, tab)
    by.set(dev, (by.get(dev) ?? '') + line.slice(tab + 1) + '\n')
  }
  return by
}

async function latestHandshake(def: TunnelDef, ctx: TunnelContext): Promise<number> {
  const dump = await readDump(def, ctx)
  return dump?.peers.find((p) => p.publicKey === def.wireguard!.peerPublicKey)?.latestHandshake ?? 0
}

/**
 * The steps that take a running tunnel's peers from `before` to `after`
 * (definitions of the same device, which is up: the caller read it, and its
 * MTU): one `wg set` that names only the peers that change, and their routes.
 * Other peers, and their sessions, are not touched; the device is not
 * restarted. (A tunnel that is down gets its peers when it comes up.)
 */
export function peerSteps(before: TunnelDef, after: TunnelDef, ctx: TunnelContext, mtu: number): Step[] {
  const w = after.wireguard!
  const r = ctx.runner
  const dev = w.ifname
  const gone = before.remoteSubnets.filter((s) => !after.remoteSubnets.includes(s))
  const added = after.remoteSubnets.filter((s) => !before.remoteSubnets.includes(s))
  const set = async (from: NamedPeer[], to: NamedPeer[]) => {
    const args = peerSetArgs(from, to)
    if (args.length) await r.run(wg(after, ctx, ['set', dev, ...args], {object: `WireGuard device ${dev}`}))
    return args.length > 0
  }
  const conf = async (def: TunnelDef) => {
    if (r.dryRun) return
    const key = readPrivateKey(ctx.configDir, def.name)
    if (key) await writeConf(def, ctx, key, mtu)
  }
  const steps: Step[] = [
    {
      title: `set the changed peers of ${dev}`,
      apply: async () => set(peersOf(before), peersOf(after)),
      undo: async () => void (await set(peersOf(after), peersOf(before))),
    },
  ]
  if (gone.length) {
    steps.push({
      title: `remove the routes to ${gone.join(', ')}`,
      apply: async () => removeRoutes({...before, remoteSubnets: gone}, ctx, dev),
      undo: async () => addRoutes({...before, remoteSubnets: gone}, ctx, dev),
    })
  }
  // (Whether another tunnel has them was asked before anything changed: service.ts setPeers.)
  if (added.length) {
    steps.push({
      title: `route ${added.join(', ')} through ${dev}`,
      apply: async () => {
        ensureProtoName(r)
        await addRoutes({...after, remoteSubnets: added}, ctx, dev)
      },
      undo: async () => removeRoutes({...after, remoteSubnets: added}, ctx, dev),
    })
  }
  steps.push({title: `write ${wgConfPath(ctx.configDir, dev)}`, apply: async () => conf(after), undo: async () => conf(before)})
  return steps
}

/** What one `up`'s steps learn and pass on: the private key, whether this up made it, whether it made the device. */
interface UpState {
  privateKey: string
  keyCreated: boolean
  made: boolean
}

/** Makes the device (kernel or wireguard-go) and marks it as netkit's. */
async function createDevice(def: TunnelDef, ctx: TunnelContext): Promise<void> {
  const w = def.wireguard!
  const r = ctx.runner
  const alias = {args: ['link', 'set', w.ifname, 'alias', NETKIT_ALIAS], object: `WireGuard device ${w.ifname}`}
  if (ctx.datapath === 'kernel') {
    await r.batch([{args: ['link', 'add', w.ifname, 'type', 'wireguard'], object: `WireGuard device ${w.ifname}`}, alias])
    return
  }
  const started = await startWireguardGo(def, ctx)
  // A dry run starts nothing: the rest is printed.
  if (started) await waitForGoDevice(def, ctx)
  await r.batch([alias])
}

/** Starts wireguard-go for the device (in a namespace, with its own /run/wireguard); false in a dry run. */
async function startWireguardGo(def: TunnelDef, ctx: TunnelContext): Promise<boolean> {
  const w = def.wireguard!
  const r = ctx.runner
  const tun = tunSupport()
  if (!tun.present)
    throw new NetkitError('E_NO_TUN', `wireguard-go needs a TUN device: ${tun.how}`, {fix: 'modprobe tun, or use a kernel with the WireGuard module'})
  const argv = ['wireguard-go', '-f', w.ifname]
  const inv: Invocation = def.netns
    ? {
        tool: 'unshare',
        args: ['--mount', '--propagation', 'private', 'sh', '-c', PRIVATE_RUN_SCRIPT, 'netkit-wg', ...argv],
        object: `wireguard-go for ${w.ifname}`,
      }
    : {tool: 'wireguard-go', args: argv.slice(1), object: `wireguard-go for ${w.ifname}`}
  const pid = await startDaemon(r, goRef(def), {...inv, env: {LOG_LEVEL: r.verbose ? 'verbose' : 'error', [GO_MARK]: w.ifname}})
  return pid !== undefined
}

/** Waits until wireguard-go has made the device, or says why not (with its log). */
async function waitForGoDevice(def: TunnelDef, ctx: TunnelContext): Promise<void> {
  const ifname = def.wireguard!.ifname
  const ready = await waitFor(async () => (await readLink(ctx, ifname)) !== undefined || !daemonAlive(goRef(def)), 5000, 50)
  if (ready && (await readLink(ctx, ifname))) return
  throw new NetkitError('E_DAEMON', `wireguard-go did not create ${ifname}`, {
    fix: 'check that wireguard-go is installed (apt-get install wireguard-go) and that /dev/net/tun works; run with --verbose for its log',
    detail: logTail(def),
  })
}

/** Stops the daemon and deletes the device an up made (whether or not it got its mark). */
async function removeDevice(def: TunnelDef, ctx: TunnelContext): Promise<void> {
  const r = ctx.runner
  const ifname = def.wireguard!.ifname
  await stopDaemon(r, goRef(def), 2000).catch(() => {})
  // What it logged is in the error already (E_DAEMON's detail): an undone add leaves no file.
  if (!r.dryRun) rmSync(daemonLog(goRef(def)), {force: true})
  if (await readLink(ctx, ifname)) await r.batch([{args: ['link', 'del', ifname], object: `WireGuard device ${ifname}`}]).catch(() => {})
}

/** Step: the tunnel's key pair (made once, mode 0600), its private key known to the runner as a secret. */
function keyPairStep(def: TunnelDef, ctx: TunnelContext, state: UpState): Step {
  const r = ctx.runner
  return {
    title: 'make the WireGuard key pair (mode 0600)',
    apply: async () => {
      const k = ensureKeyPair(r, ctx.configDir, def.name)
      state.privateKey = k.privateKey
      state.keyCreated = k.created
      r.addSecret(state.privateKey)
      return k.created
    },
    undo: async () => {
      if (state.keyCreated) r.removeFiles([wgKeyPath(ctx.configDir, def.name)])
    },
  }
}

/** Step: the device, refused when a link of its name is there and is not this tunnel's own being replaced. */
function deviceStep(def: TunnelDef, ctx: TunnelContext, state: UpState): Step {
  const r = ctx.runner
  const ifname = def.wireguard!.ifname
  return {
    title: `create the WireGuard device ${ifname} (${ctx.datapath === 'kernel' ? 'kernel' : 'wireguard-go'})`,
    apply: async () => {
      const existing = await readLink(ctx, ifname)
      // A dry run of --replace finds the old tunnel's own device, which the real run removes first.
      if (existing && !(ctx.replacing && existing.ifalias === NETKIT_ALIAS)) {
        throw new NetkitError('E_CONFLICT', `a link named ${ifname} already exists${inNamespace(r.netns)}`, {
          fix:
            existing.ifalias === NETKIT_ALIAS
              ? `it is a netkit leftover: remove it with "netkit doctor --fix" or "ip link del ${ifname}"`
              : "it is not netkit's: rename or remove it, or choose another tunnel name",
        })
      }
      // From here on the device and its daemon are ours, marked or not yet: a failure in this step takes them away too.
      state.made = !existing
      try {
        await createDevice(def, ctx)
      } catch (error) {
        if (state.made && !r.dryRun) await removeDevice(def, ctx)
        throw error
      }
    },
    undo: async () => {
      if (state.made) await removeDevice(def, ctx)
    },
  }
}

/** Step: one `wg set` with the private key (from a secret file), the listen port, the fwmark and every peer. */
function configureStep(def: TunnelDef, ctx: TunnelContext, state: UpState): Step {
  const w = def.wireguard!
  const r = ctx.runner
  const peers = peersOf(def)
  return {
    title: `configure ${w.ifname}: key, listen port ${w.listenPort}, ${isInterface(def) ? `${peers.length} peer${peers.length === 1 ? '' : 's'}` : `peer ${w.endpoint}`}`,
    apply: async () => {
      await r.withSecretFile(new Secret(`${state.privateKey}\n`), async (keyFile) => {
        const args = ['set', w.ifname, 'listen-port', String(w.listenPort), 'private-key', keyFile]
        if (w.fwmark) args.push('fwmark', String(w.fwmark))
        args.push(...peerSetArgs([], peers))
        await r.run(wg(def, ctx, args, {object: `WireGuard device ${w.ifname}`}))
      })
    },
  }
}

/** Step: the address (if any), the MTU and up, in one `ip -batch`. */
function addressStep(def: TunnelDef, ctx: TunnelContext, mtu: number): Step {
  const w = def.wireguard!
  return {
    title: `address${w.address ? ` ${w.address}` : ''}, MTU ${mtu}, up`,
    apply: async () => {
      const lines = []
      if (w.address) lines.push({args: ['addr', 'add', w.address, 'dev', w.ifname], object: `address ${w.address}`})
      lines.push({args: ['link', 'set', w.ifname, 'mtu', String(mtu), 'up'], object: `WireGuard device ${w.ifname}`})
      await ctx.runner.batch(lines)
    },
  }
}

/** Step: the wg-quick configuration file (mode 0600), removed on undo. */
function confFileStep(def: TunnelDef, ctx: TunnelContext, state: UpState, mtu: number): Step {
  const confPath = wgConfPath(ctx.configDir, def.wireguard!.ifname)
  return {
    title: `write ${confPath} (wg-quick format, mode 0600)`,
    apply: async () => {
      await writeConf(def, ctx, state.privateKey, mtu)
    },
    undo: async () => {
      ctx.runner.removeFiles([confPath])
    },
  }
}

/** Step: wait for the one peer's handshake (a keepalive every second meanwhile, then back to what was asked). */
function handshakeStep(def: TunnelDef, ctx: TunnelContext): Step {
  const w = def.wireguard!
  const r = ctx.runner
  const peerKey = w.peerPublicKey!
  const ep = w.endpoint!
  const keepalive = (seconds: string) =>
    r.run(wg(def, ctx, ['set', w.ifname, 'peer', peerKey, 'persistent-keepalive', seconds], {object: `WireGuard device ${w.ifname}`}))
  return {
    title: `wait for the handshake with ${ep}`,
    apply: async () => {
      if (r.dryRun) return false
      // A handshake needs a packet to send: a keepalive every second until it is done.
      if (!w.keepalive) await keepalive('1')
      const ok = await waitFor(async () => (await latestHandshake(def, ctx)) > 0, ctx.timeoutMs, 200)
      if (!ok) {
        throw new NetkitError('E_NO_HANDSHAKE', `no WireGuard handshake with ${ep} within ${Math.round(ctx.timeoutMs / 1000)}s`, {
          fix: `either the peer is not set up yet (on the first of two hosts use --no-wait), or a public key is wrong (compare "netkit tunnel pubkey ${def.name}${netnsFlag(def.netns)}" here with the peer's --peer-public-key, and back), or UDP ${ep.replace(/^.*:/, '')} is blocked`,
        })
      }
      // Back to no keepalive, as asked. If wg cannot, the tunnel is not what was asked (a packet every second): an error, and the plan undoes it.
      if (!w.keepalive) await keepalive('0')
      return false
    },
  }
}

export const wireguardDriver: TunnelDriver = {
  type: 'wireguard',

  async datapath({runner}, choice) {
    const mod = await wireguardSupport(runner)
    if (choice === 'kernel' && !mod.present) {
      throw new UsageError(
        `--datapath kernel: this kernel has no WireGuard module (${mod.how})`,
        'use --datapath auto or userspace (wireguard-go), or load the module with "modprobe wireguard"',
      )
    }
    if (choice === 'userspace') return {datapath: 'userspace', reason: 'wireguard-go, as asked with --datapath userspace'}
    if (!mod.present) return {datapath: 'userspace', reason: `wireguard-go: this kernel has no WireGuard module (${mod.how})`}
    return {datapath: 'kernel', reason: `the kernel's WireGuard (${mod.how})`}
  },

  /** The wg-quick order, one small step each: key pair, device, configuration, address and MTU, routes, file, handshake. */
  async up(def: TunnelDef, ctx: TunnelContext): Promise<Step[]> {
    const mtu = await deviceMtu(def, ctx)
    const state: UpState = {privateKey: '', keyCreated: false, made: false}
    const steps: Step[] = [
      keyPairStep(def, ctx, state),
      deviceStep(def, ctx, state),
      configureStep(def, ctx, state),
      addressStep(def, ctx, mtu),
      ...routeSteps(def, ctx, def.wireguard!.ifname),
      confFileStep(def, ctx, state, mtu),
    ]
    // An interface's peers come and go (and are often not set up yet): nothing to wait for.
    if (ctx.wait && !isInterface(def)) steps.push(handshakeStep(def, ctx))
    return steps
  },

  async down(def: TunnelDef, ctx: TunnelContext): Promise<void> {
    const w = def.wireguard!
    await removeRoutes(def, ctx, w.ifname)
    goPid(def) // one never recorded is recorded now, and stopped
    await stopDaemon(ctx.runner, goRef(def))
    const link = await readLink(ctx, w.ifname)
    if (link && link.ifalias === NETKIT_ALIAS) await ctx.runner.batch([{args: ['link', 'del', w.ifname], object: `WireGuard device ${w.ifname}`}])
  },

  async purge(def: TunnelDef, ctx: TunnelContext): Promise<void> {
    ctx.runner.removeFiles([wgConfPath(ctx.configDir, def.wireguard!.ifname)])
    // Runtime state (its log), not configuration: not echoed.
    if (!ctx.runner.dryRun) rmSync(daemonLog(goRef(def)), {force: true})
  },

  async status(def: TunnelDef, ctx: TunnelContext): Promise<TunnelStatus> {
    const w = def.wireguard!
    try {
      const key = readPrivateKey(ctx.configDir, def.name)
      if (key) ctx.runner.addSecret(key)
    } catch {
      // An unreadable or too open key file is the doctor's business (wireguard.keys), not status's.
    }
    // Both at once (a dump without the device fails, and is not used).
    const [link, read] = await Promise.all([readLink(ctx, w.ifname), readDump(def, ctx)])
    const pid = goPid(def)
    const datapath = link?.linkinfo?.info_kind === 'wireguard' ? 'kernel' : link || pid ? 'userspace' : ctx.datapath
    const dump = link ? read : undefined
    const now = Math.floor(Date.now() / 1000)
    const live = new Map((dump?.peers ?? []).map((p) => [p.publicKey, p]))
    const peers = peersOf(def).map((p) => peerState(p, live.get(p.publicKey), now))
    const up = Boolean(link?.flags?.includes('UP'))
    const common = {
      ifname: w.ifname,
      publicKey: null as string | null,
      listenPort: dump?.listenPort ?? w.listenPort,
    }
    const tail = {
      mtu: link?.mtu ?? null,
      wireguardGoPid: pid ?? null,
      config: existsSync(wgConfPath(ctx.configDir, w.ifname)) ? wgConfPath(ctx.configDir, w.ifname) : null,
    }
    if (isInterface(def)) {
      const latest = Math.max(0, ...(dump?.peers ?? []).map((p) => p.latestHandshake))
      return {
        state: !up ? 'down' : peers.length === 0 || latest > 0 ? 'up' : 'connecting',
        datapath,
        ...(latest > 0 ? {since: new Date(latest * 1000).toISOString()} : {}),
        details: withPublicKey({...common, address: w.address ?? null, peers, ...tail}, dump),
      }
    }
    const peer = live.get(w.peerPublicKey!)
    const hs = peer?.latestHandshake ?? 0
    const {name: _name, present: _present, ...one} = peers[0]
    return {
      state: !up ? 'down' : hs > 0 ? 'up' : 'connecting',
      datapath,
      ...(hs > 0 ? {since: new Date(hs * 1000).toISOString()} : {}),
      details: withPublicKey({...common, peer: one, peers, ...tail}, dump),
    }
  },
}

/**
 * The device's public key in a status's details, worked out only when read
 * (`tunnel show`, --json): from wireguard-go's socket it comes as the private
 * key, and the first key derivation of a process costs more than the rest of
 * `tunnel list`, which never shows it.
 */
function withPublicKey<T extends {publicKey: string | null}>(details: T, dump: WgDump | undefined): T {
  let key: string | null | undefined
  // Redefined in place: it keeps its position among the details.
  return Object.defineProperty(details, 'publicKey', {
    enumerable: true,
    configurable: true,
    get: () => (key === undefined ? (key = dump?.publicKey ?? null) : key),
  })
}

/** A peer as `tunnel show` and the doctor report it: as defined, with what the device says of it. */
export function peerState(p: NamedPeer, live: WgPeerState | undefined, now: number) {
  const hs = live?.latestHandshake ?? 0
  return {
    name: p.name,
    publicKey: p.publicKey,
    endpoint: live?.endpoint ?? p.endpoint ?? null,
    allowedIps: live?.allowedIps ?? p.allowedIps,
    latestHandshake: hs > 0 ? new Date(hs * 1000).toISOString() : null,
    handshakeAgeSeconds: hs > 0 ? now - hs : null,
    sessionCurrent: hs > 0 && now - hs < REJECT_AFTER_TIME,
    rxBytes: live?.rxBytes ?? 0,
    txBytes: live?.txBytes ?? 0,
    keepalive: live?.keepalive ?? p.keepalive ?? null,
    /** Whether the device has the peer (false: the device is down, or the peer was removed behind netkit's back). */
    present: live !== undefined,
  }
}

export type PeerState = ReturnType<typeof peerState>
