/**
 * The plan: desired (the host file) against live (ip -j, ip xfrm, sysctl,
 * netkit's files): what to add, change and remove, per namespace, in an order
 * that works (namespaces, tables and links before what uses them; removals
 * the other way round). Only objects a previous `apply` made (recorded in the
 * ledger as "applied") are ever removed; a foreign object in the way is an
 * error, never touched.
 *
 * The stages, in the order `planHost` and `computePlan` run them (one module each):
 *   memo.ts      the host exactly as a verified apply of this file left it: nothing to do
 *   schema.ts    the file parsed and validated
 *   guards.ts    checkDevices: every device an entry sits on is in the file or on the host
 *   desired.ts   the file's objects, scope by scope; then guards.ts refuseDuplicates
 *   live.ts      each scope's live state read (in parallel), then made into objects
 *   compare.ts   desired against live, with ownership from the ledger
 *   guards.ts    what the host cannot take, and what the kernel would take along
 * Then run.ts makes the changes (steps.ts, ops.ts), records them (ledger.ts) and verifies them (verify.ts).
 */
import {type OwnedEntry, scopeOf} from '../ownership.js'
import type {Runner} from '../runner.js'
import {phase} from '../timing.js'
import type {TunnelStatus} from '../tunnel/types.js'
import {compareScope, type Foreign} from './compare.js'
import {desiredScopes} from './desired.js'
import {checkDevices, collateral, keepSecondaries, refuseDuplicates, refuseUnknowable, refuseUnsupported} from './guards.js'
import {hostFileData, isJson, quickHostFile} from './host-file.js'
import type {HostInput} from './input.js'
import {digestOf, earlyLinks, type EarlyRead, type LiveRead, namePeers, objectsOf, readLive, type ReadRecipe, recipeOf, startRead} from './live.js'
import {fileDigest, loadMemo, saveMemo} from './memo.js'
import type {Kind, Obj} from '../kinds/index.js'
import type {HostFile} from './schema.js'

export interface Change {
  action: 'add' | 'change' | 'remove'
  kind: Kind
  desc: string
  /** The namespace the object is in (undefined: the one apply runs in). */
  netns?: string
  /** What is there now (change, remove), and what should be (add, change). */
  live?: Obj
  desired?: Obj
  why?: string
  /** A sysctl's value found just before apply set it, where the plan could not read it (a namespace it makes): what removing it puts back. */
  before?: string
  /** Half of a pair that takes an object away and makes it again (the kernel deletes it along with something the plan changes): its ownership stays as it is. */
  again?: boolean
}

/** One namespace's part of the plan: the one apply runs in, or one the file names. */
export interface Scope {
  /** The namespace, or undefined for the one apply runs in. */
  netns?: string
  runner: Runner
  /** The ledger scope its objects are recorded in. */
  ledger: string
  desired: Obj[]
  /** The namespace does not exist yet (nothing to read) or is going away. */
  fresh: boolean
  applied: Record<string, OwnedEntry>
  /**
   * Whose records in this scope are this apply's: null, those of an apply run
   * here (no "by"); a scope name, those an apply run there made here (a
   * namespace of its file); undefined, all of them (a namespace it made and removes).
   */
  owner?: string | null
}

export interface Plan {
  scopes: Scope[]
  changes: Change[]
  unchanged: number
  /** What the comparison read, and its digest (see memo.ts). */
  reads: {recipes: ReadRecipe[]; digest: string}
  /** Objects here that are neither netkit's nor in the file: left alone, and said so. */
  foreign: Foreign[]
  /** The plan came from the memo: the host is exactly as a verified apply of this file left it. */
  memo?: boolean
  /** Each scope's live objects when the plan was made (to tell, after an undo, what did not come back). */
  before?: Obj[][]
  /** A WireGuard interface's status as the plan read it (key: `statusKey`), for a peer change of a tunnel the plan does not touch otherwise. */
  statuses?: Map<string, TunnelStatus>
}

export const statusKey = (netns: string | undefined, tunnel: string): string => `${netns ?? ''}\0${tunnel}`

/** A plan's changes as `diff` and `apply` report them. */
export type PlannedChange = {action: string; kind: string; object: string; netns?: string; why?: string}

export function describePlan(plan: Plan): PlannedChange[] {
  // Built field by field, not spread: a plan can hold tens of thousands of changes.
  return plan.changes.map((c) => {
    const p: PlannedChange = {action: c.action, kind: c.kind, object: c.desc}
    if (c.netns) p.netns = c.netns
    if (c.why) p.why = c.why
    return p
  })
}

/**
 * The plan for a host file. When the file and everything the last comparison
 * read are exactly as a verified apply left them (memo.ts), the plan is empty
 * without parsing the file or comparing. `remember`: keep the digests of a
 * plan that found nothing to do (apply does; a dry run and diff change nothing).
 */
export async function planHost(runner: Runner, input: HostInput, opts: {remember?: boolean} = {}): Promise<Plan> {
  const top = scopeOf(runner.netns)
  const file = fileDigest(input.text, input.source, input.version)
  const memo = await fromMemo(runner, top, file)
  if (memo.plan) return memo.plan
  // Without the memo's reads, the live read of this namespace starts now and runs while the file is parsed.
  const early = memo.earlier.length ? undefined : startRead(runner, input.text.includes('xfrmPolicies'))
  const host = await parseFile(input)
  await checkDevices(runner, host, early && (() => earlyLinks(early)))
  const scopes = await desiredScopes(runner, host)
  refuseDuplicates(scopes)
  const plan = await computePlan(scopes, memo.earlier, early)
  if (opts.remember && plan.changes.length === 0) remember(top, file, plan, plan.reads, plan.foreign)
  return plan
}

/** The empty plan when the memo's reads, made again, match its digest; else those reads (computePlan need not make them again). */
async function fromMemo(runner: Runner, top: string, file: string): Promise<{plan?: Plan; earlier: LiveRead[]}> {
  const memo = loadMemo(top, file)
  if (!memo) return {earlier: []}
  try {
    const earlier = await Promise.all(memo.recipes.map((r) => readLive(r.netns ? runner.in(r.netns) : runner, r)))
    const digest = digestOf(earlier)
    phase('memo read')
    if (digest === memo.state)
      return {plan: {scopes: [], changes: [], unchanged: memo.unchanged, foreign: memo.foreign, reads: {recipes: memo.recipes, digest}, memo: true}, earlier}
    return {earlier}
  } catch {
    // A read that fails now (a namespace gone behind our back): the whole comparison says what is what.
    return {earlier: []}
  }
}

/** The host file parsed; the schema (zod) is loaded only when the quick check of bulk entries cannot tell (host-file.ts). */
async function parseFile(input: HostInput): Promise<HostFile> {
  const yaml = isJson(input.source) ? () => undefined : (await import('../yaml.js')).parseYaml
  const data = hostFileData(input.text, input.source, yaml)
  const host = quickHostFile(data) ?? (await import('./schema.js')).validateHostFile(data, input.source)
  phase('file parsed')
  return host
}

/** The whole plan for the desired scopes: every scope read (in parallel), compared, and guarded. */
export async function computePlan(scopes: Scope[], earlier: LiveRead[] = [], early?: EarlyRead): Promise<Plan> {
  phase('desired')
  const reads = await readScopes(scopes, earlier, early)
  phase('live read')
  const lives = scopes.map((s, i) => objectsOf(reads[i], s))
  const compared = scopes.map((s, i) => compareScope(s, lives[i]))
  for (const [i, s] of scopes.entries()) await keepSecondaries(s, lives[i], compared[i].changes)
  const changes = compared.flatMap((r) => r.changes)
  refuseUnknowable(scopes, reads, changes)
  await refuseUnsupported(scopes, changes)
  const remade = collateral(scopes, lives, reads, changes)
  await namePeers(scopes, reads, changes)
  return {
    scopes,
    changes,
    unchanged: compared.reduce((n, r) => n + r.unchanged, 0) - remade,
    foreign: compared.flatMap((r) => r.foreign),
    reads: {recipes: reads.map((r) => r.recipe), digest: digestOf(reads)},
    before: lives,
    statuses: tunnelStatuses(scopes, reads),
  }
}

/** Each scope's live state; a read just made with the same recipe (the memo's, which did not match) is not made again. */
function readScopes(scopes: Scope[], earlier: LiveRead[], early?: EarlyRead): Promise<LiveRead[]> {
  const reuse = (r: ReadRecipe) => earlier.find((e) => JSON.stringify(e.recipe) === JSON.stringify(r))
  return Promise.all(
    scopes.map((s, i) => {
      const r = recipeOf(s)
      // The first scope is the namespace apply runs in (desiredScopes), whose read may have started early.
      return reuse(r) ?? readLive(s.runner, r, i === 0 && !s.netns ? early : undefined)
    }),
  )
}

/** The WireGuard interfaces' status as read, by `statusKey`. */
function tunnelStatuses(scopes: Scope[], reads: LiveRead[]): Map<string, TunnelStatus> {
  const statuses = new Map<string, TunnelStatus>()
  scopes.forEach((sc, i) => reads[i].tunnels.forEach((t) => t.status && statuses.set(statusKey(sc.netns, t.def.name), t.status)))
  return statuses
}

/**
 * Keeps the digests of a state that matches the file (not with tunnels or SAs, whose keys live in other files: see
 * memo.ts), and the file's digest as the last applied here (every file). Called only once the host matches the file:
 * verified (and confirmed, with --try), or found matching. Never fails the command.
 */
export function remember(top: string, file: string, plan: Plan, reads: Plan['reads'], foreign: Foreign[]): void {
  try {
    const unchanged = plan.scopes.reduce((n, s) => n + s.desired.length, 0)
    saveMemo(top, reads.recipes.some((r) => r.tunnels || r.sad) ? undefined : {file, state: reads.digest, recipes: reads.recipes, unchanged, foreign}, file)
  } catch {
    // the shortcut is only a shortcut
  }
}
