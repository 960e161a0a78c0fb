/**
 * The guards: what the plan refuses before anything changes (bad input found
 * only against the host, a change the kernel would carry further than the
 * file says, what this host cannot hold).
 */
import {NetkitError, UsageError} from '../errors.js'
import {configDir} from '../files.js'
import {promotesSecondaries} from '../iproute2/addr.js'
import {ipJsonProbe} from '../iproute2/json.js'
import {netnsExists} from '../iproute2/netns.js'
import {requireEsp} from '../iproute2/xfrm.js'
import {
  addrFromEntry,
  AddrObj,
  fileWords,
  linkFromEntry,
  LinkObj,
  type Obj,
  proxyFromEntry,
  ProxyObj,
  routeFromEntry,
  RouteObj,
  settingsOnly,
  SysctlObj,
  TableObj,
  TUNNEL_DEV,
  TunnelObj,
} from '../kinds/index.js'
import type {Runner} from '../runner.js'
import {refuseUnfit} from '../tunnel/service.js'
import * as v from '../validate.js'
import {inNamespace} from '../wording.js'
import {desiredIds, order} from './compare.js'
import {tableOfFile} from './desired.js'
import type {LiveRead} from './live.js'
import type {Change, Scope} from './plan.js'
import type {HostFile, ScopeFile} from './schema.js'

/** Each object once per namespace: two entries for the same route (or link, rule, ...) would leave one of them unsaid. */
export function refuseDuplicates(scopes: Scope[]): void {
  for (const scope of scopes) refuseDuplicatesIn(scope)
}

function refuseDuplicatesIn(scope: Scope): void {
  const o = desiredIds(scope.desired).twice
  if (o)
    throw new UsageError(
      `the file lists ${o.desc}${inNamespace(scope.runner.netns)} twice`,
      'keep one entry for it (a route is one per table, destination and metric; a rule one per priority and selector)',
      'E_FILE',
    )
}

/**
 * Every device the file's objects sit on is in the file or on the host (a
 * tunnel's device is made by its tunnel): a name that is neither is bad input,
 * found before anything changes, and before a big file's objects are made.
 */
export async function checkDevices(runner: Runner, f: HostFile, links?: () => Promise<{ifname: string}[]>): Promise<void> {
  const scopes: [string | undefined, ScopeFile][] = [[undefined, f]]
  for (const [name, s] of Object.entries(f.namespaces)) scopes.push([name, s])
  // A veth's far end, moved into another of the file's namespaces, is a device there.
  const movedIn = new Map<string, string[]>()
  for (const [, s] of scopes)
    for (const l of s.links) {
      if (l.type !== 'veth' || !l.peerNetns || !l.peer) continue
      if (!movedIn.has(l.peerNetns)) movedIn.set(l.peerNetns, [])
      movedIn.get(l.peerNetns)!.push(l.peer)
    }
  for (const [name, s] of scopes) {
    const r = name ? runner.in(name) : runner
    const have = new Set<string>(name ? movedIn.get(name) : [])
    have.add('lo')
    // `links`: this namespace's links, read already (the early live read).
    if (!name || netnsExists(name)) for (const l of await (!name && links ? links() : ipJsonProbe<{ifname: string}>(r, ['link', 'show']))) have.add(l.ifname)
    for (const l of s.links) {
      have.add(l.name)
      if (l.type === 'veth' && !l.peerNetns && l.peer) have.add(l.peer)
    }
    const where = r.netns ? `namespace ${r.netns}` : 'this host'
    const need = (dev: string | undefined, what: () => string) => {
      if (dev && !have.has(dev) && !TUNNEL_DEV.test(dev))
        throw new UsageError(
          `the file's ${what()} needs link ${dev}, which is neither in the file nor on ${where}`,
          `add ${dev} to the file's links, or correct the name`,
          'E_FILE',
        )
    }
    for (const l of s.links) {
      need(l.master, () => `the bridge port ${l.name}`)
      need(l.type === 'vxlan' ? l.dev : undefined, () => linkFromEntry(l).desc)
      need(l.type === 'macvlan' ? l.parent : undefined, () => linkFromEntry(l).desc)
    }
    for (const a of s.addresses) need(a.dev, () => addrFromEntry(a).desc)
    for (const rt of s.routes) need(rt.dev, () => routeFromEntry(rt, tableOfFile(f.tables)).desc)
    for (const p of s.proxyArp) need(p.dev, () => proxyFromEntry(p).desc)
  }
}

/**
 * Deleting an IPv4 primary address makes the kernel delete the secondary
 * addresses of its subnet too: when one of those is not netkit's and not
 * going anyway, removing (or re-making) that address is refused before
 * anything changes.
 */
export async function keepSecondaries(scope: Scope, live: Obj[], changes: Change[]): Promise<void> {
  const going = new Set(changes.filter((c) => c.action !== 'add').map((c) => c.live!.id))
  const subnet = (a: AddrObj) => `${a.dev} ${v.networkOf(a.cidr)}`
  for (const c of changes) {
    const a = c.live
    if (!(a instanceof AddrObj) || c.action === 'add' || a.secondary || a.cidr.includes(':')) continue
    const lost = live.filter(
      (o): o is AddrObj => o instanceof AddrObj && o.secondary && !o.owned && !going.has(o.id) && !o.cidr.includes(':') && subnet(o) === subnet(a),
    )
    if (lost.length === 0) continue
    if (!(await promotesSecondaries(scope.runner, a.dev))) {
      throw new NetkitError(
        'E_CONFLICT',
        `removing ${a.desc}${inNamespace(scope.runner.netns)} would delete ${lost.map((o) => o.cidr).join(', ')} too (the kernel removes a subnet's secondary addresses with its primary), and netkit did not add ${lost.length === 1 ? 'that one' : 'those'}`,
        {fix: `keep ${a.cidr} in the file, or remove the others first (or set net/ipv4/conf/${a.dev}/promote_secondaries to 1)`},
      )
    }
  }
}

/**
 * What the file asks that the host cannot take, found before anything
 * changes: a table number another name already has here, a sysctl that does
 * not exist (and is not one of a link the plan makes).
 */
export function refuseUnknowable(scopes: Scope[], reads: LiveRead[], changes: Change[]): void {
  const removing = new Set(changes.filter((c) => c.kind === 'table' && c.action === 'remove').map((c) => c.live!.key))
  for (const c of changes) {
    if (c.kind === 'table' && c.action === 'add') {
      const t = c.desired as TableObj
      const other = reads[0].tables.find((x) => x.id === t.number && x.name !== t.name && !removing.has(x.name))
      if (other)
        throw new UsageError(
          `tables.${t.name}: table ${t.number} is already named ${other.name} on this host (${other.source})`,
          `use the name ${other.name}, or another number`,
          'E_FILE',
        )
    }
    if (c.kind === 'sysctl' && c.action === 'add') {
      const scope = scopes.find((s) => s.netns === c.netns)!
      const path = (c.desired as SysctlObj).path
      const dev = /^net\/ipv[46]\/(?:conf|neigh)\/([^/]+)\//.exec(path)?.[1]
      const here = scope.netns ?? scope.runner.netns ?? undefined
      const made =
        dev !== undefined &&
        scopes.some((sc) =>
          sc.desired.some(
            (o) =>
              o instanceof LinkObj &&
              (sc === scope ? o.spec.name === dev || (o.spec.peer === dev && !o.spec.peerNetns) : o.spec.peer === dev && o.spec.peerNetns === here),
          ),
        )
      if (!made && !scope.fresh)
        throw new UsageError(
          `sysctls: ${path.replaceAll('/', '.')} does not exist${inNamespace(scope.runner.netns)}`,
          dev ? `check the name, and that link ${dev} is there or in the file` : 'check the name (netkit sysctl get NAME)',
          'E_FILE',
        )
    }
  }
}

/**
 * What this host cannot hold, refused by the plan itself, so that `diff`
 * and `--dry-run` say what the real apply would, and apply changes nothing:
 * SAs need the kernel's ESP (modules are machine-wide, so one look answers
 * for every namespace); a tunnel the plan sets up needs what it cannot be
 * given (its data path; the host's own charon's plugins, which netkit never
 * changes), as `tunnel add` refuses it.
 */
export async function refuseUnsupported(scopes: Scope[], changes: Change[]): Promise<void> {
  if (changes.some((c) => c.kind === 'xfrm-state' && c.action !== 'remove')) await requireEsp(scopes[0].runner)
  for (const c of changes) {
    if (c.kind !== 'tunnel' || c.action === 'remove') continue
    const def = (c.desired as TunnelObj).def
    const scope = scopes.find((s) => s.netns === c.netns)!
    try {
      await refuseUnfit(def, {runner: scope.runner, configDir: configDir(), inFile: true})
    } catch (error) {
      if (!(error instanceof UsageError)) throw error
      const at = `${c.netns ? `namespaces.${c.netns}.` : ''}tunnels.${def.name}`
      throw new UsageError(`host file: ${at}: ${fileWords(error.what)}`, error.fix ? fileWords(error.fix) : 'fix that entry', error.code)
    }
  }
}

/**
 * What the kernel deletes along with what the plan deletes: the addresses,
 * routes and proxy entries on a link that goes (removed, or deleted and made
 * again; a veth's far end goes with it, in its namespace), the routes through
 * the subnet of the last address there, and all of a namespace that goes.
 * What the file keeps is taken away before and made again after (a pair of
 * changes, undone in the reverse order); anything else (another tool's, or
 * netkit's but no longer the file's) would be lost for good, so such a plan is
 * refused before anything changes. Returns how many unchanged objects the plan
 * now makes again.
 */
export function collateral(scopes: Scope[], lives: Obj[][], reads: LiveRead[], changes: Change[]): number {
  const hit = collateralOf(scopes, lives, reads, changes)
  if (hit.length === 0) return 0
  refuseLost(scopes, hit)
  return remakeKept(scopes, hit, changes)
}

/** An object the kernel deletes along with a change: `again`, what it sits on is there again afterwards (a link made again, a new address in the subnet), so it can be made again too. */
type Hit = {scope: number; object: Obj; because: string; again: boolean}

const onDev = (dev: string) => (o: Obj) => (o instanceof AddrObj || o instanceof ProxyObj ? o.dev === dev : o instanceof RouteObj && o.spec.dev === dev)

/** What each change takes along: on a link that goes, through the last address of a subnet, in a namespace that goes. */
function collateralOf(scopes: Scope[], lives: Obj[][], reads: LiveRead[], changes: Change[]): Hit[] {
  const at = (netns?: string) => scopes.findIndex((s) => (s.runner.netns ?? undefined) === netns)
  const removed = scopes.map((s) => new Set(changes.filter((c) => c.action === 'remove' && c.netns === s.netns).map((c) => c.live!.id)))
  const hit: Hit[] = []
  const take = (i: number, because: string, again: boolean, pick: (o: Obj) => boolean) => {
    for (const o of lives[i] ?? [])
      if (!o.auto && !removed[i].has(o.id) && (o.kind === 'addr' || o.kind === 'route' || o.kind === 'proxy') && pick(o))
        hit.push({scope: i, object: o, because, again})
  }
  const where = (i: number) => inNamespace(scopes[i].runner.netns)
  for (const c of changes) {
    const i = scopes.findIndex((s) => s.netns === c.netns)
    const l = c.live
    if (l instanceof LinkObj && (c.action === 'remove' || (c.action === 'change' && !settingsOnly(c.desired!, l)))) {
      const because = `${c.action === 'remove' ? 'removing' : 'making again'} ${l.desc}${where(i)}`
      const again = c.action === 'change'
      take(i, because, again, onDev(l.spec.name))
      if (l.spec.kind === 'veth' && l.spec.peer && !l.spec.peerNetns) take(i, because, again, onDev(l.spec.peer))
      const j = l.spec.peerNetns ? at(l.spec.peerNetns) : -1
      const far = j >= 0 ? farEnd(l, reads[j]) : undefined
      if (far) take(j, because, again, onDev(far))
    } else if (l instanceof AddrObj && c.action !== 'add' && !l.cidr.includes(':')) {
      const gone = lastInSubnet(l, c, lives[i], removed[i], changes)
      if (gone) take(i, `removing ${l.desc}${where(i)}`, gone.renumbered, gone.through)
    } else if (c.kind === 'netns' && c.action === 'remove') {
      const j = at(l!.key)
      if (j >= 0) take(j, `removing namespace ${l!.key}`, false, () => true)
    }
  }
  return hit
}

/** The name of a veth's far end, in the namespace read as `read`. */
function farEnd(l: LinkObj, read: LiveRead | undefined): string | undefined {
  if (l.spec.peerIndex === undefined || !read?.ip.length) return undefined
  return (JSON.parse(read.ip[0]) as {ifindex: number; ifname: string}[]).find((x) => x.ifindex === l.spec.peerIndex)?.ifname
}

/**
 * An IPv4 address that goes and is the last of its subnet on its link: the
 * routes through a gateway in that subnet go with it (`through`);
 * `renumbered`, a new address in the same subnet brings the gateways back within reach.
 */
function lastInSubnet(
  l: AddrObj,
  c: Change,
  live: Obj[],
  removed: Set<string>,
  changes: Change[],
): {through: (o: Obj) => boolean; renumbered: boolean} | undefined {
  const net = v.networkOf(l.cidr)
  const inNet = (ip?: string) => Boolean(ip && v.contains(net, ip))
  const others = live.some(
    (o) => o instanceof AddrObj && o.dev === l.dev && o.id !== l.id && !removed.has(o.id) && !changes.some((x) => x.live === o) && inNet(o.cidr.split('/')[0]),
  )
  if (others) return undefined
  const renumbered = changes.some(
    (x) => x.action !== 'remove' && x.netns === c.netns && x.desired instanceof AddrObj && x.desired.dev === l.dev && inNet(x.desired.cidr.split('/')[0]),
  )
  return {through: (o) => o instanceof RouteObj && o.spec.dev === l.dev && inNet(o.spec.via), renumbered}
}

const wanted = (scopes: Scope[], h: Hit) => scopes[h.scope].desired.find((d) => d.id === h.object.id)

/** What the file does not keep (another tool's, or netkit's but not the file's), or keeps on something that will not be there: refused. */
function refuseLost(scopes: Scope[], hit: Hit[]): void {
  const where = (i: number) => inNamespace(scopes[i].runner.netns)
  // Once each: a route can go both with its link and with the address its gateway is reached through.
  const named = new Set<string>()
  const lost = hit.filter((h) => {
    const id = `${h.scope}|${h.object.id}`
    if ((wanted(scopes, h) && h.again) || named.has(id)) return false
    named.add(id)
    return true
  })
  if (lost.length === 0) return
  const list = lost
    .slice(0, 3)
    .map(
      (h) =>
        `${h.object.desc}${where(h.scope)} (${wanted(scopes, h) ? 'the file keeps it' : h.object.owned || scopes[h.scope].applied[h.object.id] ? "netkit's" : "not netkit's"})`,
    )
    .join(', ')
  throw new NetkitError(
    'E_CONFLICT',
    `${lost[0].because} would also delete ${list}${lost.length > 3 ? ` and ${lost.length - 3} more` : ''}: the kernel deletes them with it, and netkit would not put them back`,
    {
      fix: 'remove those first, or keep what they depend on as it is; nothing was changed',
    },
  )
}

/** What the file keeps: taken away before and made again after (and, undoing, in the reverse order). Returns how many unchanged objects are now made again. */
function remakeKept(scopes: Scope[], hit: Hit[], changes: Change[]): number {
  const done = new Set<string>()
  let remade = 0
  for (const h of hit) {
    const d = wanted(scopes, h)!
    const netns = scopes[h.scope].netns
    const id = `${netns ?? ''}|${d.id}`
    if (done.has(id)) continue
    done.add(id)
    const was = changes.findIndex((c) => c.netns === netns && c.live === h.object)
    if (was >= 0) changes.splice(was, 1)
    else remade++
    changes.push({action: 'remove', kind: d.kind, desc: d.desc, netns, live: h.object, why: `${h.because} deletes it`, again: true})
    changes.push({action: 'add', kind: d.kind, desc: d.desc, netns, desired: d, why: `made again after ${h.because}`, again: true})
  }
  const ordered = order(changes)
  changes.length = 0
  for (const c of ordered) changes.push(c)
  return remade
}
