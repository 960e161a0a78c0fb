/**
 * The plan as steps (../plan.ts runPlan): each namespace's iproute2 changes
 * in `ip -batch -`, namespaces and tunnels through netkit's own services,
 * each with its undo.
 */
import {existsSync, readFileSync} from 'node:fs'
import {availableParallelism} from 'node:os'

import {configDir} from '../files.js'
import {addNetns, delNetns} from '../iproute2/netns.js'
import type {Step} from '../plan.js'
import {Secret} from '../runner.js'
import {addTunnel, delTunnel, downTunnel, requireDef, setPeers, upTunnel} from '../tunnel/service.js'
import {scopeDir} from '../tunnel/store.js'
import type {TunnelDef, TunnelStatus, WgPeer} from '../tunnel/types.js'
import {checkPeerSet, isInterface, withPeers} from '../tunnel/wireguard/peers.js'
import {inNamespace} from '../wording.js'
import {KIND_ORDER, PeerObj, RouteObj, TunnelObj} from '../kinds/index.js'
import {forward, inverse, runOps, type UndoFailures} from './ops.js'
import {type Change, type Plan, type Scope, statusKey} from './plan.js'

const where = (netns?: string) => inNamespace(netns)
const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`

const PARALLEL_MIN = 2000

/** Changes whose lines depend on no other line of the step: routes without a gateway, xfrm policies and proxy entries. */
const independent = (c: Change) =>
  (c.action === 'remove' || (c.action === 'add' && !(c.kind === 'route' && (c.desired as RouteObj).spec.via))) &&
  (c.kind === 'route' || c.kind === 'xfrm-policy' || c.kind === 'proxy')

/**
 * Runs a step's changes in order. When thousands of them are independent
 * (routes, SPD entries), those go to several `ip -batch -` processes at once,
 * one per CPU: the kernel work is per line, and one process does it on one
 * CPU. What comes before routes in the step's order runs before them, the rest
 * after.
 */
async function runChanges(changes: Change[], scope: Scope, original: (path: string) => string | undefined): Promise<void> {
  const ops = (cs: Change[]) => cs.flatMap((c) => forward(c, scope.runner, original))
  const free = changes.filter(independent)
  const ways = Math.min(availableParallelism(), 4, Math.floor(free.length / PARALLEL_MIN))
  if (ways < 2 || scope.runner.dryRun) return runOps(ops(changes))
  const removing = changes[0].action === 'remove'
  const rest = changes.filter((c) => !independent(c))
  const first = rest.filter((c) => (removing ? ORDER[c.kind] > ORDER.route : ORDER[c.kind] < ORDER.route))
  await runOps(ops(first))
  const lines = free.flatMap((c) => (c.action === 'remove' ? c.live!.del : c.desired!.add))
  const size = Math.ceil(lines.length / ways)
  const results = await Promise.allSettled(Array.from({length: ways}, (_, i) => scope.runner.batch(lines.slice(i * size, (i + 1) * size))))
  const failed = results.find((r) => r.status === 'rejected')
  if (failed) throw (failed as PromiseRejectedResult).reason
  const done = new Set(first)
  await runOps(ops(rest.filter((c) => !done.has(c))))
}

/** A step that runs iproute2/sysctl/table changes and, failing halfway, undoes them all (forced) before it fails. */
function batchStep(title: string, changes: Change[], scope: Scope, original: (path: string) => string | undefined, failed: UndoFailures): Step {
  const undo = () =>
    runOps(
      changes
        .slice()
        .reverse()
        .flatMap((c) => inverse(c, scope.runner)),
      {failed},
    )
  return {
    title,
    apply: async () => {
      try {
        await runChanges(changes, scope, original)
      } catch (error) {
        if (!scope.runner.dryRun) await undo()
        throw error
      }
    },
    undo,
  }
}

const ORDER = KIND_ORDER

/** A tunnel's secret files, kept so that undoing its removal brings back the same keys (the peer knows them). */
function secretsOf(dir: string, name: string): [string, string][] {
  return ['psk', 'key', 'pub']
    .map((ext) => `${dir}/secrets/${name}.${ext}`)
    .filter((p) => existsSync(p))
    .map((p) => [p, readFileSync(p, 'utf8')])
}

function tunnelSteps(c: Change, scope: Scope, progressTimeoutMs: number): Step {
  const svc = {runner: scope.runner, configDir: configDir(), progress: 'none' as const, wait: false, timeoutMs: progressTimeoutMs}
  const d = c.desired as TunnelObj | undefined
  const l = c.live as TunnelObj | undefined
  const dir = scopeDir(configDir(), (d ?? l)!.def.netns)
  let kept: [string, string][] = []
  const restore = async () => {
    // Not the PSK file: addTunnel writes it, and finding it equal already would take the tunnel as unchanged
    // and leave charon with the key of the change being undone.
    for (const [p, text] of kept) if (!p.endsWith('.psk')) scope.runner.writeFile(p, new Secret(text))
    const psk = kept.find(([p]) => p.endsWith('.psk'))?.[1]
    await addTunnel(l!.def, {...svc, replace: true, ...(psk ? {psk: new Secret(psk.trim())} : {})})
  }
  if (c.action === 'add') {
    return {
      title: `set up ${d!.desc}${where(c.netns)}`,
      apply: async () => {
        // Keys that were there before (a WireGuard key pair "tunnel pubkey" made, whose public half a
        // fleet has gathered) stay when the add is undone: the next run must not make a new one.
        kept = secretsOf(dir, d!.def.name)
        await addTunnel(d!.def, {...svc, psk: d!.psk})
      },
      undo: async () => {
        await delTunnel(d!.def, svc)
        for (const [p, text] of kept) scope.runner.writeFile(p, new Secret(text))
      },
    }
  }
  if (c.action === 'remove') {
    return {
      title: `remove ${l!.desc}${where(c.netns)}`,
      apply: async () => {
        kept = secretsOf(dir, l!.def.name)
        await delTunnel(l!.def, svc)
      },
      undo: restore,
    }
  }
  if (c.why === 'it is down') {
    // Only its runtime is missing (a daemon killed, a device deleted): brought up, and down again on undo.
    return {
      title: `bring up ${d!.desc}${where(c.netns)} (it is down)`,
      apply: async () => void (await upTunnel(l!.def, svc)),
      undo: async () => void (await downTunnel(l!.def, svc)),
    }
  }
  return {
    title: `replace ${d!.desc}${where(c.netns)} (${c.why})`,
    apply: async () => {
      kept = secretsOf(dir, l!.def.name)
      await addTunnel(keepForeignPeers(d!.def, l!.def, scope), {...svc, replace: true, psk: d!.psk})
    },
    undo: restore,
  }
}

/** A WireGuard interface made again keeps the peers apply did not make (added with "tunnel peer add"): apply never removes those. */
function keepForeignPeers(def: TunnelDef, live: TunnelDef, scope: Scope): TunnelDef {
  if (!isInterface(def) || !isInterface(live)) return def
  const foreign = Object.entries(live.wireguard!.peers!).filter(([name]) => !def.wireguard!.peers![name] && !scope.applied[`wg-peer:${def.name} ${name}`])
  return foreign.length ? withPeers(def, {...Object.fromEntries(foreign), ...def.wireguard!.peers!}) : def
}

/**
 * The peer changes of one WireGuard interface, in one step: one `wg set` that
 * names only those peers (tunnel/service.ts setPeers), made against the peers
 * the tunnel has when the step runs. `covered`: the plan makes or removes the
 * tunnel as a whole, its peers with it (nothing to do here, nothing to undo).
 */
function peerStep(tunnel: string, changes: Change[], scope: Scope, covered: boolean, status?: TunnelStatus): Step {
  const netns = scope.netns ?? scope.runner.netns ?? undefined
  const svc = {runner: scope.runner, configDir: configDir(), progress: 'none' as const, wait: false}
  const n = (a: Change['action']) => changes.filter((c) => c.action === a).length
  const what = [
    ['add', n('add')],
    ['change', n('change')],
    ['remove', n('remove')],
  ]
    .filter(([, k]) => k)
    .map(([a, k]) => `${a} ${count(k as number, 'peer')}`)
    .join(', ')
  let before: Record<string, WgPeer> | undefined
  return {
    title: `${what} of WireGuard tunnel ${tunnel}${where(netns)}`,
    apply: async () => {
      if (covered) return false
      const def = requireDef(configDir(), tunnel, netns)
      before = def.wireguard!.peers ?? {}
      const next = {...before}
      for (const c of changes) {
        if (c.action === 'remove') delete next[(c.live as PeerObj).name]
        else next[(c.desired as PeerObj).name] = (c.desired as PeerObj).peer
      }
      checkPeerSet(next, def)
      // The device as the plan read it (under this lock, and nothing before this step touched it): not read again.
      return (await setPeers(def, next, {...svc, status})).changed
    },
    undo: async () => {
      if (covered || !before) return
      await setPeers(requireDef(configDir(), tunnel, netns), before, svc)
    },
  }
}

/** The plan as steps: tunnels and contents removed, namespaces removed and made, contents made, tunnels set up. */
export function planSteps(plan: Plan, originalIn: (s: Scope) => (path: string) => string | undefined, timeoutMs: number, failed: UndoFailures): Step[] {
  const steps: Step[] = []
  const [root] = plan.scopes
  const of = (s: Scope) => plan.changes.filter((c) => c.netns === s.netns)
  for (const s of plan.scopes) for (const c of of(s)) if (c.kind === 'tunnel' && c.action === 'remove') steps.push(tunnelSteps(c, s, timeoutMs))
  for (const s of plan.scopes.slice().reverse()) {
    const rm = of(s).filter((c) => c.action === 'remove' && c.kind !== 'tunnel' && c.kind !== 'wg-peer' && c.kind !== 'netns')
    if (rm.length) steps.push(batchStep(`remove ${count(rm.length, 'object')}${where(s.netns)}`, rm, s, originalIn(s), failed))
  }
  for (const c of of(root).filter((c) => c.kind === 'netns')) {
    const name = (c.desired ?? c.live)!.key
    const make = async () => void (await addNetns(root.runner, name))
    const drop = async () => void (await delNetns(root.runner, name, {force: true}))
    steps.push(
      c.action === 'remove' ? {title: `remove namespace ${name}`, apply: drop, undo: make} : {title: `create namespace ${name}`, apply: make, undo: drop},
    )
  }
  // Every namespace's links first: a veth made from one namespace puts its far end in another, where the file may put addresses on it.
  for (const links of [true, false]) {
    for (const s of plan.scopes) {
      const mk = of(s).filter(
        (c) => c.action !== 'remove' && c.kind !== 'tunnel' && c.kind !== 'wg-peer' && c.kind !== 'netns' && ORDER[c.kind] <= ORDER.link === links,
      )
      if (mk.length) steps.push(batchStep(`make ${count(mk.length, links ? 'link change' : 'change')}${where(s.netns)}`, mk, s, originalIn(s), failed))
    }
  }
  for (const s of plan.scopes) for (const c of of(s)) if (c.kind === 'tunnel' && c.action !== 'remove') steps.push(tunnelSteps(c, s, timeoutMs))
  // A WireGuard interface's peers, one step per tunnel (after the tunnel is up).
  for (const s of plan.scopes) {
    const byTunnel = new Map<string, Change[]>()
    for (const c of of(s)) {
      if (c.kind !== 'wg-peer') continue
      const t = ((c.desired ?? c.live) as PeerObj).tunnel
      byTunnel.set(t, [...(byTunnel.get(t) ?? []), c])
    }
    for (const [t, cs] of byTunnel) {
      const whole = of(s).find((c) => c.kind === 'tunnel' && (c.desired ?? c.live)!.key === t)
      const status = whole ? undefined : plan.statuses?.get(statusKey(s.netns, t))
      steps.push(peerStep(t, cs, s, Boolean(whole && (whole.action !== 'change' || whole.why !== 'it is down')), status))
    }
  }
  return steps
}
