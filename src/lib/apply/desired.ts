/**
 * Stage 1, the desired state: the host file's objects, scope by scope (the
 * namespace apply runs in, each namespace of the file, and those an earlier
 * apply filled that the file no longer lists).
 */
import {netnsExists} from '../iproute2/netns.js'
import {resolveTable} from '../iproute2/tables.js'
import {
  addrFromEntry,
  linkFromEntry,
  NetnsObj,
  type Obj,
  policyFromEntry,
  proxyFromEntry,
  routeFromEntry,
  ruleFromEntry,
  stateFromEntry,
  sysctlsFromEntries,
  TableObj,
  tunnelFromEntry,
} from '../kinds/index.js'
import type {TunnelEntry} from '../kinds/tunnel.js'
import {ledgerScopes, owned, scopeOf} from '../ownership.js'
import {type Runner} from '../runner.js'
import * as v from '../validate.js'
import {appliedIn} from './ledger.js'
import type {Scope} from './plan.js'
import type {HostFile, ScopeFile} from './schema.js'

/** A table name's number (by the file's tables, or the host's names); none: main. */
export const tableOfFile =
  (tables: Record<string, number>) =>
  (t?: string): number =>
    t === undefined ? 254 : (tables[t] ?? resolveTable(t))

/** The objects one namespace's part of the file describes (addresses were parsed by the schema), kind by kind, one at a time (no spread of a file's many routes). */
export async function scopeObjects(s: ScopeFile, tables: Record<string, number>, runner: Runner, netns: string | undefined, at: string): Promise<Obj[]> {
  const out: Obj[] = []
  const tableOf = tableOfFile(tables)
  for (const l of s.links) out.push(linkFromEntry(l))
  for (const a of s.addresses) out.push(addrFromEntry(a))
  for (const o of sysctlsFromEntries(s.sysctls)) out.push(o)
  for (const r of s.routes) out.push(routeFromEntry(r, tableOf))
  for (const r of s.rules) out.push(ruleFromEntry(r, tableOf))
  for (const p of s.proxyArp) out.push(proxyFromEntry(p))
  for (const p of s.xfrmPolicies) out.push(policyFromEntry(p))
  s.xfrmStates.forEach((x, i) => out.push(stateFromEntry(x, runner, `${at}xfrmStates.${i}`)))
  for (const [name, t] of Object.entries(s.tunnels))
    for (const o of await tunnelFromEntry(name, {...fromFile(s, t), ...t}, runner, netns, `${at}tunnels.${name}`)) out.push(o)
  return out
}

/**
 * A tunnel's `local` (and a VXLAN tunnel's `dev`) from the file's own
 * addresses, when it does not give them: the address on the peer's subnet,
 * or the one on the subnet of the gateway of a route to the peer. A namespace
 * the file creates has no routes yet to ask the kernel; for the rest, the file
 * says what the host will be. Nothing found: the kernel's route decides.
 */
function fromFile(s: ScopeFile, t: TunnelEntry): {local?: TunnelEntry['local']; dev?: string} {
  if (!t.remote || (t.local && (t.type !== 'vxlan' || t.dev))) return {}
  const remote = t.remote.ip
  const family = t.remote.family
  const onLink = (ip: string) => s.addresses.find((a) => a.address.family === family && v.contains(v.networkOf(a.address.cidr), ip))
  let a = onLink(remote)
  if (!a) {
    const covers = (to: (typeof s.routes)[number]['to']) => (to === 'default' ? true : to.family === family && v.contains(to.cidr, remote))
    const gw = s.routes
      .filter((r) => r.via && r.table === undefined && covers(r.to))
      .sort((x, y) => (y.to === 'default' ? 0 : y.to.prefix) - (x.to === 'default' ? 0 : x.to.prefix))[0]
    if (gw?.via) a = onLink(gw.via.ip)
  }
  if (!a) return {}
  return {local: {ip: a.address.ip, family: a.address.family} as TunnelEntry['local'], ...(t.type === 'vxlan' ? {dev: a.dev} : {})}
}

/** Every scope the file or the ledger names, with its desired objects. */
export async function desiredScopes(runner: Runner, f: HostFile): Promise<Scope[]> {
  const top = scopeOf(runner.netns)
  // Several applies can record in one namespace (one run there, others that list it in their files): each sees its own.
  const applied = appliedIn(top, null)
  const root: Scope = {runner, ledger: top, desired: [], fresh: false, applied, owner: null}
  for (const [name, id] of Object.entries(f.tables)) root.desired.push(new TableObj(name, id))
  for (const name of Object.keys(f.namespaces)) root.desired.push(new NetnsObj(name))
  // One at a time: a spread of a file's hundreds of thousands of routes overflows the stack.
  for (const o of await scopeObjects(f, f.tables, runner, runner.netns ?? undefined, '')) root.desired.push(o)
  const scopes = [root]
  const named = new Set(Object.keys(f.namespaces))
  for (const [name, s] of Object.entries(f.namespaces)) {
    const r = runner.in(name)
    scopes.push({
      netns: name,
      runner: r,
      ledger: scopeOf(name),
      desired: await scopeObjects(s, f.tables, r, name, `namespaces.${name}.`),
      fresh: !netnsExists(name),
      applied: appliedIn(scopeOf(name), top),
      owner: top,
    })
  }
  // Namespaces an earlier apply made and the file no longer lists: their contents go with them.
  const gone = new Set<string>()
  for (const k of Object.keys(applied)) {
    const name = k.startsWith('netns:') ? k.slice(6) : undefined
    if (name && !named.has(name) && netnsExists(name)) {
      gone.add(name)
      scopes.push({netns: name, runner: runner.in(name), ledger: scopeOf(name), desired: [], fresh: false, applied: owned(scopeOf(name), 'applied')})
    }
  }
  // Namespaces that were not this apply's but that it filled, and the file no longer lists: what it made there goes (not what another apply made).
  for (const ledger of ledgerScopes()) {
    const name = ledger.startsWith('ns:') ? ledger.slice(3) : undefined
    if (!name || named.has(name) || gone.has(name) || name === runner.netns || !netnsExists(name)) continue
    const mine = appliedIn(ledger, top)
    if (Object.keys(mine).length) scopes.push({netns: name, runner: runner.in(name), ledger, desired: [], fresh: false, applied: mine, owner: top})
  }
  return scopes
}
