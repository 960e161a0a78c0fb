/**
 * The routes to given prefixes, exactly, in every table: `ip -N -j -batch -`
 * of `route show table all exact PREFIX`, one JSON array a line, in order.
 * For a check about a few prefixes (a peer's new subnets) this reads a few
 * rows instead of every route of the host (a thousand peers' routes).
 */
import type {Runner} from '../runner.js'

/** A route as `ip -N -j route show` prints it (tables, protocols and types as numbers). */
export interface NumericRouteRow {
  dst: string
  dev?: string
  gateway?: string
  type?: string
  table?: string
  protocol?: string
}

/**
 * Each prefix's routes in every table ("default" shown as the prefix asked,
 * 0.0.0.0/0 or ::/0); undefined when ip's answer cannot be matched to the
 * prefixes line by line (then read the whole table instead).
 */
export async function routesExactly(runner: Runner, prefixes: string[]): Promise<NumericRouteRow[][] | undefined> {
  if (prefixes.length === 0) return []
  const input = prefixes.map((p) => `route show table all exact ${p}`).join('\n') + '\n'
  const r = await runner.probe({tool: 'ip', args: ['-N', '-j', '-batch', '-'], input})
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('['))
  if (r.exitCode !== 0 || lines.length !== prefixes.length) return undefined
  try {
    return lines.map((l, i) => (JSON.parse(l) as NumericRouteRow[]).map((row) => (row.dst === 'default' ? {...row, dst: prefixes[i]} : row)))
  } catch {
    return undefined
  }
}
