/**
 * The host file read without zod: its text parsed (JSON or YAML), the checks
 * that need more than one field (each kind's), and a quick path for the files
 * netkit reads most: bulk entries (routes and SPD entries, tens of thousands of
 * them) and a fleet's host file (a WireGuard interface with its peers, and
 * sysctls), which gives exactly what the schema (schema.ts) gives, so that such
 * a file is validated without loading zod at all. Anything else, and any
 * error, is the schema's to check and name.
 */
import {UsageError} from '../errors.js'
import {checkLinks} from '../kinds/link.js'
import {checkRoutes, routeEntryFast} from '../kinds/route.js'
import {checkRules} from '../kinds/rule.js'
import type {AddIssue, Path} from '../kinds/schema-parts.js'
import {checkSysctls} from '../kinds/sysctl.js'
import {TUNNEL_NAME, checkTunnels, tunnelEntryFast} from '../kinds/tunnel.js'
import {checkPolicies, policyEntryFast} from '../kinds/xfrm-policy.js'
import {checkStates} from '../kinds/xfrm-state.js'
import {isMap} from '../validate.js'
import type {HostFile, ScopeFile} from './schema.js'

/** Whether a host file is read as JSON (by its name); any other is YAML. */
export const isJson = (source: string) => source.endsWith('.json')

/**
 * The text of a host file as data (not validated yet): JSON for a .json file, else YAML through `yaml`
 * (yaml.ts's parseYaml, which the caller loads only for a YAML file).
 */
export function hostFileData(text: string, source: string, yaml: (text: string, source: string) => unknown): unknown {
  let data: unknown
  const json = isJson(source)
  try {
    data = json ? JSON.parse(text) : yaml(text, source)
  } catch (error) {
    throw new UsageError(
      `${source} is not valid ${json ? 'JSON' : 'YAML'}: ${String(error instanceof Error ? error.message : error).split('\n')[0]}`,
      'fix its syntax',
      'E_FILE',
    )
  }
  if (data === null || data === undefined)
    throw new UsageError(
      `${source} is empty`,
      'a host file starts with "version: 1" (a file with only that removes everything an earlier apply made)',
      'E_FILE',
    )
  return data
}

/** Checks that need more than one field, kind by kind (the first issue is the one reported). */
export function scopeChecks(s: ScopeFile, prefix: Path, add: AddIssue): void {
  checkSysctls(s.sysctls, prefix, add)
  checkStates(s.xfrmStates, prefix, add)
  checkRoutes(s.routes, prefix, add)
  checkPolicies(s.xfrmPolicies, prefix, add)
  checkRules(s.rules, prefix, add)
  checkLinks(s.links, prefix, add)
  checkTunnels(s.tunnels, prefix, add)
}

/** A scope's lists, and the kinds whose entries have a quick check (the others: the schema, unless the list is empty). */
const LISTS = ['links', 'addresses', 'routes', 'rules', 'proxyArp', 'xfrmPolicies', 'xfrmStates'] as const
const QUICK: Partial<Record<(typeof LISTS)[number], (x: unknown) => unknown>> = {routes: routeEntryFast, xfrmPolicies: policyEntryFast}
/** The file's maps: the quick path takes them left out or empty, and these with a quick check of their entries. */
const MAPS = ['tables', 'namespaces', 'sysctls', 'tunnels'] as const
const QUICK_MAPS: Partial<Record<(typeof MAPS)[number], (key: string, value: unknown) => unknown>> = {
  // A sysctl's name and value are checked by checkSysctls (scopeChecks) as the schema's are.
  sysctls: (_, value) => (typeof value === 'string' ? value : typeof value === 'number' && Number.isFinite(value) ? String(value) : undefined),
  tunnels: (name, value) => (TUNNEL_NAME.test(name) ? tunnelEntryFast(value) : undefined),
}

/** A map's entries, each through its quick check, as an object without a prototype (as the schema's); undefined when one of them is not for it. */
function quickMap(value: unknown, check: ((key: string, value: unknown) => unknown) | undefined): Record<string, unknown> | undefined {
  if (!isMap(value)) return undefined
  const out = Object.create(null) as Record<string, unknown>
  const keys = Object.keys(value)
  if (keys.length > 0 && !check) return undefined
  for (const k of keys) {
    const entry = check!(k, value[k])
    if (entry === undefined) return undefined
    out[k] = entry
  }
  return out
}

/** The entries of one list, each through its quick check; undefined when one of them is not for it. */
function quickList(value: unknown, check: ((x: unknown) => unknown) | undefined): unknown[] | undefined {
  if (!Array.isArray(value)) return undefined
  if (value.length === 0) return []
  if (!check) return undefined
  const out = new Array<unknown>(value.length)
  for (let i = 0; i < value.length; i++) {
    const entry = check(value[i])
    if (entry === undefined) return undefined
    out[i] = entry
  }
  return out
}

/**
 * A host file that holds only routes, SPD entries, sysctls and WireGuard interfaces with peers (and empty
 * lists and maps), every entry plainly valid and the kinds' checks passed: exactly what the schema gives
 * for it. Else undefined (the schema decides).
 */
export function quickHostFile(data: unknown): HostFile | undefined {
  if (!isMap(data) || data.version !== 1) return undefined
  const f: Record<string, unknown> = {version: 1}
  for (const k of MAPS) f[k] = Object.create(null)
  for (const k of LISTS) f[k] = []
  for (const k in data) {
    if (k === 'version') continue
    const value = data[k]
    if ((MAPS as readonly string[]).includes(k)) {
      const map = quickMap(value, QUICK_MAPS[k as (typeof MAPS)[number]])
      if (!map) return undefined
      f[k] = map
      continue
    }
    if (!(LISTS as readonly string[]).includes(k)) return undefined
    const list = quickList(value, QUICK[k as (typeof LISTS)[number]])
    if (!list) return undefined
    f[k] = list
  }
  const host = f as unknown as HostFile
  let fine = true
  scopeChecks(host, [], () => (fine = false))
  return fine ? host : undefined
}
