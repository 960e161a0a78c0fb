/**
 * Stage 2, the live read: what one scope's comparison depends on, read as raw
 * text first (so that memo.ts can digest it), then made into objects.
 */
import {createHash} from 'node:crypto'
import {existsSync, readdirSync} from 'node:fs'

import {configDir, readSecretFile} from '../files.js'
import {type IpLink, ipJsonProbe} from '../iproute2/json.js'
import {NETNS_DIR} from '../iproute2/netns.js'
import type {IpRoute} from '../iproute2/route.js'
import type {IpRule} from '../iproute2/rule.js'
import {listTables, tableNumber, type TableRow} from '../iproute2/tables.js'
import {parsePolicies, parseStates, stateKeys} from '../iproute2/xfrm-parse.js'
import {isNetkitProto, ledgerText, owned, type OwnedEntry, ROOT_SCOPE} from '../ownership.js'
import {type Runner, Secret} from '../runner.js'
import {getSysctls} from '../sysctl.js'
import {tunnelStatus} from '../tunnel/service.js'
import {listDefs, pskPath, scopeDir} from '../tunnel/store.js'
import type {TunnelDef, TunnelStatus, WgPeer} from '../tunnel/types.js'
import type {PeerState} from '../tunnel/wireguard/driver.js'
import {interfaceOnly, isInterface, peerFingerprint, peersOf} from '../tunnel/wireguard/peers.js'
import * as v from '../validate.js'
import {fingerprint} from './desired.js'
import {
  AddrObj,
  liveLink,
  NetnsObj,
  type Obj,
  PeerObj,
  PolicyObj,
  ProxyObj,
  RouteObj,
  RuleObj,
  StateObj,
  SysctlObj,
  TableObj,
  TUNNEL_DEV,
  TunnelObj,
  LinkObj,
} from './model.js'
import type {Change, Scope} from './plan.js'

type Neigh = {dst: string; dev: string; protocol?: string}

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
  tunnels: {
    def: TunnelDef
    fingerprint: string
    running: boolean
    peers?: {name: string; peer: WgPeer; fingerprint: string; running: boolean}[]
    /** As the driver read it (apply hands it to the peer change, which need not read the device again). */
    status?: TunnelStatus
  }[]
}

// Routes: only unicast ones are compared; the kernel's local-table entries come and go by themselves (an IPv6
// address gets its local route only once duplicate address detection ends).
const IP_READS = ['link show', 'addr show', 'route show table all type unicast', 'rule show', 'neigh show proxy', 'netns list-id']
// `neigh show proxy` without a family shows both; `rule show` only IPv4.
const IP6_READS = ['rule show']

export function recipeOf(scope: Scope, opts: {all?: boolean} = {}): ReadRecipe {
  const {desired, applied} = scope
  const kinds = new Set<string>(desired.map((d) => d.kind))
  for (const k of Object.keys(applied)) kinds.add(k.slice(0, k.indexOf(':')))
  const sysctls = [
    ...new Set([
      ...desired.filter((d) => d.kind === 'sysctl').map((d) => d.key),
      ...Object.keys(applied)
        .filter((k) => k.startsWith('sysctl:'))
        .map((k) => k.slice(7)),
    ]),
  ]
  return {
    ...(scope.netns ? {netns: scope.netns} : {}),
    fresh: scope.fresh,
    xfrm: Boolean(opts.all) || kinds.has('xfrm-policy'),
    ...(opts.all || kinds.has('xfrm-state') ? {sad: true} : {}),
    sysctls,
    tunnels: Boolean(opts.all) || kinds.has('tunnel') || kinds.has('wg-peer'),
  }
}

/** Everything a scope's comparison depends on, read (processes in parallel), nothing parsed yet. */
export async function readLive(runner: Runner, recipe: ReadRecipe): Promise<LiveRead> {
  const out: LiveRead = {recipe, ip: [], xfrm: '', sad: '', tables: [], netns: [], sysctls: [], tunnels: []}
  if (!recipe.netns) {
    out.tables = listTables().filter((t) => t.source !== 'built in')
    if (existsSync(NETNS_DIR)) out.netns = readdirSync(NETNS_DIR).sort()
  }
  if (recipe.fresh) return out
  const [ip4, ip6, xfrm, sad, sysctls] = await Promise.all([
    ipJsonBatch(runner, ['-d'], IP_READS),
    ipJsonBatch(runner, ['-6', '-d'], IP6_READS),
    recipe.xfrm ? runner.read({tool: 'ip', args: ['xfrm', 'policy', 'list']}) : Promise.resolve(''),
    recipe.sad ? runner.read({tool: 'ip', args: ['xfrm', 'state', 'list']}) : Promise.resolve(''),
    recipe.sysctls.length ? readSysctls(runner, recipe.sysctls) : Promise.resolve([]),
  ])
  out.ip = [...ip4, ...ip6]
  out.xfrm = xfrm
  out.sad = sad
  out.sysctls = sysctls
  if (recipe.tunnels) {
    const dir = scopeDir(configDir(), recipe.netns ?? runner.netns ?? undefined)
    // Each tunnel's runtime as its driver reads it (swanctl, wg, ip): one that is down is brought up again.
    out.tunnels = await Promise.all(
      listDefs(dir).map(async (def) => {
        const file = pskPath(dir, def.name)
        const psk = existsSync(file) ? readSecretFile(file, 'PSK file') : undefined
        const status = await tunnelStatus(def, {runner, configDir: configDir()})
        const {state, details} = status
        if (!isInterface(def)) return {def, fingerprint: fingerprint(def, psk), running: state !== 'down'}
        // An interface: the tunnel without its peers, and each peer with whether the device has it.
        const present = new Set(((details.peers ?? []) as PeerState[]).filter((p) => p.present).map((p) => p.name))
        const peers = peersOf(def).map(({name, ...p}) => ({name, peer: p, fingerprint: peerFingerprint(p), running: present.has(name)}))
        return {def, fingerprint: fingerprint(interfaceOnly(def)), running: state !== 'down', peers, status}
      }),
    )
  }
  return out
}

/**
 * What in `ip -j -d` output changes by itself, none of which apply compares: what counts down (bridge timers,
 * address lifetimes, route expiry) and an IPv6 address's "tentative" (until duplicate address detection ends,
 * a second or so after a link comes up on a host that does DAD).
 */
const VOLATILE = /"(?:\w+_timer|valid_life_time|preferred_life_time|expires)":[\d.]+,?|"tentative":true,?/g

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
    for (const t of r.ip) h.update(t.replace(VOLATILE, '')).update('\0')
    h.update(r.xfrm).update('\0')
    // The SAD's text holds keys: only its digest goes in (as part of this one).
    h.update(r.sad).update('\0')
    h.update(
      JSON.stringify([r.tables, r.netns, r.sysctls, r.tunnels.map((t) => [t.fingerprint, t.running, t.peers?.map((p) => [p.name, p.fingerprint, p.running])])]),
    )
  }
  return h.digest('hex')
}

/** The live objects of one namespace, from what was read. */
export function objectsOf(read: LiveRead, scope: {ledger: string; applied: Record<string, OwnedEntry>; runner?: Runner}): Obj[] {
  const out: Obj[] = []
  for (const t of read.tables) out.push(new TableObj(t.name, t.id, t.owned))
  const mine = read.netns.length ? owned(ROOT_SCOPE, 'netns') : {}
  for (const n of read.netns) out.push(new NetnsObj(n, Object.hasOwn(mine, n)))
  if (read.recipe.fresh) return out
  const [links, addrs, routes, rules4, neigh, ids, rules6] = read.ip.map((t) => JSON.parse(t) as unknown[])
  const nsById = new Map((ids as {nsid: number; name?: string}[]).map((i) => [i.nsid, i.name]))
  for (const l of links as IpLink[]) {
    const o = liveLink(l, (id) => nsById.get(id))
    if (o) out.push(o)
  }
  const ledgerAddrs = owned(scope.ledger, 'addr')
  for (const l of addrs as {ifname: string; addr_info?: {local: string; prefixlen: number; secondary?: boolean}[]}[]) {
    for (const a of l.addr_info ?? []) {
      const cidr = `${a.local}/${a.prefixlen}`
      const o = new AddrObj(l.ifname, cidr, Boolean(ledgerAddrs[`${l.ifname} ${cidr}`]))
      o.secondary = Boolean(a.secondary)
      o.auto = cidr.startsWith('127.') || cidr === '::1/128' || cidr.startsWith('fe80:') || TUNNEL_DEV.test(l.ifname)
      out.push(o)
    }
  }
  for (const r of routes as IpRoute[]) {
    if (r.type && r.type !== 'unicast') continue
    const table = tableNumber(r.table, 254)
    if (table === 255) continue
    const family = r.dst.includes(':') || r.gateway?.includes(':') ? 6 : 4
    const dst = r.dst === 'default' ? 'default' : r.dst.includes('/') ? r.dst : `${r.dst}/${family === 6 ? 128 : 32}`
    const o = new RouteObj({dst, family, via: r.gateway, dev: r.dev, table, metric: r.metric, src: r.prefsrc}, isNetkitProto(r.protocol))
    o.auto = r.protocol === 'kernel' || r.protocol === 'ra' || dst.startsWith('fe80:') || TUNNEL_DEV.test(r.dev ?? '')
    out.push(o)
  }
  for (const [family, rows] of [
    [4, rules4],
    [6, rules6],
  ] as const) {
    for (const r of rows as IpRule[]) {
      const net = (a?: string, len?: number) => (!a || a === 'all' ? undefined : `${a}/${len ?? (family === 6 ? 128 : 32)}`)
      const fwmark = r.fwmark ? v.mark(`${r.fwmark}${r.fwmask ? `/${r.fwmask}` : ''}`) : undefined
      const o = new RuleObj(
        {family, from: net(r.src, r.srclen), to: net(r.dst, r.dstlen), fwmark, iif: r.iif, oif: r.oif, table: tableNumber(r.table, 0), priority: r.priority},
        isNetkitProto(r.protocol),
      )
      // The kernel's own three: from all lookup local, main, default.
      o.auto = (r.priority === 0 || r.priority === 32766 || r.priority === 32767) && !o.spec.from && !o.spec.to && !fwmark && !r.iif && !r.oif
      out.push(o)
    }
  }
  for (const n of neigh as Neigh[]) out.push(new ProxyObj(n.dst, n.dev, isNetkitProto(n.protocol)))
  if (read.xfrm) {
    const ledger = owned(scope.ledger, 'xfrm-policy')
    for (const p of parsePolicies(read.xfrm)) {
      if (p.dir !== 'in' && p.dir !== 'out' && p.dir !== 'fwd') continue
      const t = p.tmpls[0]
      const [mv, mm] = (p.mark ?? '').split('/')
      const mark = p.mark ? {value: Number(mv), mask: Number(mm)} : undefined
      const o = new PolicyObj(
        {
          src: p.src,
          dst: p.dst,
          family: p.src.includes(':') ? 6 : 4,
          dir: p.dir,
          tmplSrc: t?.src,
          tmplDst: t?.dst,
          proto: 'esp',
          mode: (t?.mode as 'tunnel') ?? 'tunnel',
          reqid: t?.reqid || undefined,
          priority: p.priority,
          mark,
          action: p.action,
        },
        p.mark,
      )
      o.owned = Boolean(ledger[o.key])
      out.push(o)
    }
  }
  if (read.sad) {
    const ledger = owned(scope.ledger, 'xfrm-state')
    const keys = stateKeys(read.sad, (k) => {
      scope.runner?.addSecret(k)
      return new Secret(k)
    })
    for (const x of parseStates(read.sad)) {
      if (x.proto !== 'esp') continue
      const [mv, mm] = (x.mark ?? '').split('/')
      const spec = {
        src: x.src,
        dst: x.dst,
        spi: Number(x.spi),
        mode: x.mode as 'tunnel',
        reqid: x.reqid || undefined,
        mark: x.mark ? {value: Number(mv), mask: Number(mm)} : undefined,
      }
      const k = `${x.src} ${x.dst} ${x.spi}`
      out.push(new StateObj(spec, keys.get(k), x.keyDigest, ledger[k]?.meta?.keyFiles as Record<string, string> | undefined, Boolean(ledger[k])))
    }
  }
  for (const [i, value] of read.sysctls.entries()) if (value !== undefined) out.push(new SysctlObj(read.recipe.sysctls[i], value))
  for (const t of read.tunnels) {
    out.push(new TunnelObj(t.def, t.fingerprint, undefined, Boolean(scope.applied[`tunnel:${t.def.name}`]), t.running))
    for (const p of t.peers ?? [])
      out.push(new PeerObj(t.def.name, p.name, p.peer, p.fingerprint, Boolean(scope.applied[`wg-peer:${t.def.name} ${p.name}`]), p.running))
  }
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
