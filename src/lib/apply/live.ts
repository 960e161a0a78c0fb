/**
 * Stage 2, the live read: what one scope's comparison depends on, read as raw
 * text first (so that memo.ts can digest it), then made into objects.
 */
import {createHash} from 'node:crypto'
import {existsSync, readdirSync} from 'node:fs'

import {configDir} from '../files.js'
import type {IpAddrLink} from '../iproute2/addr.js'
import {ipJsonProbe, type IpLink} from '../iproute2/json.js'
import type {IpNeigh} from '../iproute2/neigh.js'
import {NETNS_DIR} from '../iproute2/netns.js'
import type {IpRoute} from '../iproute2/route.js'
import type {IpRule} from '../iproute2/rule.js'
import {listTables, type TableRow} from '../iproute2/tables.js'
import {parsePolicies, parseStates, stateKeys} from '../iproute2/xfrm-parse.js'
import {
  LinkObj,
  liveAddrs,
  liveLinks,
  liveNamespaces,
  livePolicies,
  liveProxies,
  liveRoutes,
  liveRules,
  liveStates,
  liveSysctls,
  liveTables,
  type LiveTunnel,
  liveTunnels,
  type Obj,
  readTunnels,
} from '../kinds/index.js'
import {ledgerText, owned, type OwnedEntry, ROOT_SCOPE} from '../ownership.js'
import {type Runner, Secret} from '../runner.js'
import {getSysctls} from '../sysctl.js'
import {scopeDir} from '../tunnel/store.js'
import type {Change, Scope} from './plan.js'

/**
 * What one scope's live read covers (decided by the file and the ledger).
 * Kept with the digest of what it read, so that a later run can repeat
 * exactly the same read and know, from the digest alone, that nothing changed.
 */
export interface ReadRecipe {
  /** The namespace (undefined: the one apply runs in). */
  netns?: string
  fresh: boolean
  xfrm: boolean
  /** The SAD (`ip xfrm state`): only when the file or the ledger has SAs (it holds keys). */
  sad?: boolean
  sysctls: string[]
  tunnels: boolean
  /**
   * The machine's namespaces that the comparison looks at (the file's and the ledger's, sorted); absent:
   * all of them. Others' namespaces come and go all the time on a busy host, and must not make a no-op
   * look like a change (memo.ts).
   */
  namespaces?: string[]
}

/** One scope's live state as read, before it is made into objects. */
export interface LiveRead {
  recipe: ReadRecipe
  /** `ip -j -d -batch` output: links, addresses, routes, rules, proxy entries, netns ids; then -6 rules and proxy entries. */
  ip: string[]
  xfrm: string
  sad: string
  tables: TableRow[]
  netns: string[]
  sysctls: (string | undefined)[]
  tunnels: LiveTunnel[]
}

// Routes: only unicast ones are compared; the kernel's local-table entries come and go by themselves (an IPv6
// address gets its local route only once duplicate address detection ends).
const IP_READS = ['link show', 'addr show', 'route show table all type unicast', 'rule show', 'neigh show proxy', 'netns list-id']
// `neigh show proxy` without a family shows both; `rule show` only IPv4.
const IP6_READS = ['rule show']

export function recipeOf(scope: Scope, opts: {all?: boolean} = {}): ReadRecipe {
  const {desired, applied} = scope
  const kinds = new Set<string>()
  // The file's sysctls, then the ledger's, once each.
  const wanted = new Set<string>()
  for (const d of desired) {
    kinds.add(d.kind)
    if (d.kind === 'sysctl') wanted.add(d.key)
  }
  // One walk of the ledger's records (tens of thousands), a key's kind cut out only when it is not the last one's.
  let kind = ''
  for (const k in applied) {
    if (!k.startsWith(kind) || k.charCodeAt(kind.length) !== 58) kinds.add((kind = k.slice(0, k.indexOf(':'))))
    if (kind === 'sysctl') wanted.add(k.slice(7))
  }
  const sysctls = [...wanted]
  const namespaces = scope.netns || opts.all ? undefined : namespacesOf(desired, applied)
  return {
    ...(scope.netns ? {netns: scope.netns} : {}),
    ...(namespaces ? {namespaces} : {}),
    fresh: scope.fresh,
    xfrm: Boolean(opts.all) || kinds.has('xfrm-policy'),
    ...(opts.all || kinds.has('xfrm-state') ? {sad: true} : {}),
    sysctls,
    tunnels: Boolean(opts.all) || kinds.has('tunnel') || kinds.has('wg-peer'),
  }
}

/** The namespaces a comparison of the namespace apply runs in looks at: those of the file and of the ledger. */
function namespacesOf(desired: Obj[], applied: Record<string, OwnedEntry>): string[] {
  const names = new Set<string>()
  for (const d of desired) if (d.kind === 'netns') names.add(d.key)
  for (const k of Object.keys(applied)) if (k.startsWith('netns:')) names.add(k.slice(6))
  return [...names].sort()
}

/**
 * The part of the live read of the namespace apply runs in that does not depend on the file (the `ip -j`
 * dumps; the SPD when the file may have policies), started before the file is parsed so that the `ip`
 * processes run on the other CPU meanwhile. A failure is the read's, said when the read is used.
 */
export interface EarlyRead {
  ip: Promise<string[]>
  xfrm?: Promise<string>
}

export function startRead(runner: Runner, xfrm: boolean): EarlyRead {
  const ip = Promise.all([ipJsonBatch(runner, ['-d'], IP_READS), ipJsonBatch(runner, ['-6', '-d'], IP6_READS)]).then(([a, b]) => [...a, ...b])
  const policies = xfrm ? runner.read({tool: 'ip', args: ['xfrm', 'policy', 'list']}) : undefined
  // A file refused before the read is used leaves it unused: not an unhandled rejection.
  ip.catch(() => {})
  policies?.catch(() => {})
  return {ip, xfrm: policies}
}

/** The links of an early read (`ip -j link show`). */
export const earlyLinks = async (early: EarlyRead): Promise<IpLink[]> => JSON.parse((await early.ip)[0]) as IpLink[]

/** Everything a scope's comparison depends on, read (processes in parallel), nothing parsed yet; `early`: its file-independent part, started already. */
export async function readLive(runner: Runner, recipe: ReadRecipe, early?: EarlyRead): Promise<LiveRead> {
  const out: LiveRead = {recipe, ip: [], xfrm: '', sad: '', tables: [], netns: [], sysctls: [], tunnels: []}
  if (!recipe.netns) {
    out.tables = listTables().filter((t) => t.source !== 'built in')
    if (existsSync(NETNS_DIR)) {
      const wanted = recipe.namespaces && new Set(recipe.namespaces)
      out.netns = readdirSync(NETNS_DIR)
        .filter((n) => !wanted || wanted.has(n))
        .sort()
    }
  }
  if (recipe.fresh) return out
  const [ip, xfrm, sad, sysctls] = await Promise.all([
    early?.ip ?? Promise.all([ipJsonBatch(runner, ['-d'], IP_READS), ipJsonBatch(runner, ['-6', '-d'], IP6_READS)]).then(([a, b]) => [...a, ...b]),
    recipe.xfrm ? (early?.xfrm ?? runner.read({tool: 'ip', args: ['xfrm', 'policy', 'list']})) : Promise.resolve(''),
    recipe.sad ? runner.read({tool: 'ip', args: ['xfrm', 'state', 'list']}) : Promise.resolve(''),
    recipe.sysctls.length ? readSysctls(runner, recipe.sysctls) : Promise.resolve([]),
  ])
  out.ip = ip
  out.xfrm = xfrm
  out.sad = sad
  out.sysctls = sysctls
  // Each tunnel's runtime as its driver reads it (swanctl, wg, ip): one that is down is brought up again.
  if (recipe.tunnels) out.tunnels = await readTunnels(runner, scopeDir(configDir(), recipe.netns ?? runner.netns ?? undefined))
  return out
}

/**
 * What in `ip -j -d` output changes by itself, none of which apply compares: what counts down (bridge timers,
 * address lifetimes, route expiry) and an IPv6 address's "tentative" (until duplicate address detection ends,
 * a second or so after a link comes up on a host that does DAD).
 */
const VOLATILE = /"(?:\w+_timer|valid_life_time|preferred_life_time|expires)":[\d.]+,?|"tentative":true,?/g
/** Text that VOLATILE can match has one of these; the big reads (20,000 routes) usually have none, and a search for them costs far less than the pattern's scan. */
const VOLATILE_MARKS = ['_timer"', 'life_time"', '"expires"', '"tentative"']

/** `ip -j` output without what changes by itself. */
export const steady = (text: string): string => (VOLATILE_MARKS.some((m) => text.includes(m)) ? text.replace(VOLATILE, '') : text)

/**
 * A digest of what was read and of the ledger (whole: cheaper to digest as
 * text than to parse): equal digests, equal comparisons. No secret is in it
 * (PSKs are digested already).
 */
export function digestOf(reads: LiveRead[]): string {
  const h = createHash('sha256')
  h.update(ledgerText()).update('\0')
  for (const r of reads) {
    h.update(JSON.stringify(r.recipe))
    for (const t of r.ip) h.update(steady(t)).update('\0')
    h.update(r.xfrm).update('\0')
    // The SAD's text holds keys: only its digest goes in (as part of this one).
    h.update(r.sad).update('\0')
    h.update(
      JSON.stringify([r.tables, r.netns, r.sysctls, r.tunnels.map((t) => [t.fingerprint, t.running, t.peers?.map((p) => [p.name, p.fingerprint, p.running])])]),
    )
  }
  return h.digest('hex')
}

/** The live objects of one namespace, from what was read: each kind's parser on its part of the read. */
export function objectsOf(read: LiveRead, scope: {ledger: string; applied: Record<string, OwnedEntry>; runner?: Runner}): Obj[] {
  const out: Obj[] = []
  const add = (objs: Obj[]) => {
    for (const o of objs) out.push(o)
  }
  add(liveTables(read.tables))
  add(liveNamespaces(read.netns, read.netns.length ? owned(ROOT_SCOPE, 'netns') : {}))
  if (read.recipe.fresh) return out
  const [links, addrs, routes, rules4, neigh, ids, rules6] = read.ip.map((t) => JSON.parse(t) as unknown[])
  add(liveLinks(links as IpLink[], new Map((ids as {nsid: number; name?: string}[]).map((i) => [i.nsid, i.name]))))
  add(liveAddrs(addrs as IpAddrLink[], owned(scope.ledger, 'addr')))
  add(liveRoutes(routes as IpRoute[]))
  add(liveRules(rules4 as IpRule[], 4))
  add(liveRules(rules6 as IpRule[], 6))
  add(liveProxies(neigh as IpNeigh[]))
  if (read.xfrm) add(livePolicies(parsePolicies(read.xfrm), owned(scope.ledger, 'xfrm-policy')))
  if (read.sad)
    add(
      liveStates(
        parseStates(read.sad),
        stateKeys(read.sad, (k) => (scope.runner?.addSecret(k), new Secret(k))),
        owned(scope.ledger, 'xfrm-state'),
      ),
    )
  add(liveSysctls(read.recipe.sysctls, read.sysctls))
  add(liveTunnels(read.tunnels, scope.applied))
  return out
}

/** The live objects of one namespace (links, addresses, routes, rules, proxy entries; xfrm policies, sysctls and tunnels when the file or the ledger has any). */
export async function liveObjects(scope: Scope, opts: {all?: boolean} = {}): Promise<Obj[]> {
  return objectsOf(await readLive(scope.runner, recipeOf(scope, opts)), scope)
}

/** Sysctl values, undefined for a key that does not exist (yet: an interface the plan makes). */
async function readSysctls(runner: Runner, paths: string[]): Promise<(string | undefined)[]> {
  const keys = paths.map((p) => ({path: p, name: p.replaceAll('/', '.')}))
  try {
    return await getSysctls(runner, keys)
  } catch {
    return Promise.all(
      keys.map((k) =>
        getSysctls(runner, [k]).then(
          ([x]) => x,
          () => undefined,
        ),
      ),
    )
  }
}

/**
 * Several `ip -j` reads in one process (one process per read costs more than
 * the read): one JSON array per command, one per line, returned as text.
 * Should one of them fail (IPv6 off in a namespace), each is read on its own,
 * a failure as empty.
 */
async function ipJsonBatch(runner: Runner, global: string[], commands: string[]): Promise<string[]> {
  const r = await runner.probe({tool: 'ip', args: [...global, '-j', '-batch', '-'], input: commands.join('\n') + '\n'})
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('['))
  if (r.exitCode === 0 && lines.length === commands.length) return lines
  // One read failed: find which, one at a time. A host without IPv6 has no IPv6 rules (nothing to compare);
  // any other failure (a namespace gone, ip refusing) is an error, never "nothing there", which would plan
  // to make everything again or to remove nothing.
  return Promise.all(
    commands.map(async (c) => {
      const inv = {tool: 'ip', args: [...global, '-j', ...c.split(' ')]}
      const one = await runner.probe(inv)
      if (one.exitCode === 0) return one.stdout.trim() || '[]'
      if (global.includes('-6') && /address family not supported/i.test(one.stderr)) return '[]'
      return runner.read(inv)
    }),
  )
}

/**
 * A live veth whose far end is in another namespace knows that end only by
 * its ifindex there; one the plan deletes gets its name, read there, so that
 * undoing can make the pair again.
 */
export async function namePeers(scopes: Scope[], reads: LiveRead[], changes: Change[]): Promise<void> {
  for (const c of changes) {
    const l = c.live
    if (!(l instanceof LinkObj) || c.action === 'add' || !l.spec.peerNetns || l.spec.peer || l.spec.peerIndex === undefined) continue
    const j = scopes.findIndex((s) => (s.runner.netns ?? undefined) === l.spec.peerNetns)
    const there =
      j >= 0 && reads[j]?.ip.length
        ? (JSON.parse(reads[j].ip[0]) as IpLink[])
        : await ipJsonProbe<IpLink>(scopes[0].runner.in(l.spec.peerNetns), ['link', 'show']).catch(() => [])
    l.spec.peer = there.find((x) => x.ifindex === l.spec.peerIndex)?.ifname
  }
}
