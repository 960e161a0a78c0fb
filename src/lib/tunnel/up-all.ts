/**
 * Every defined tunnel up, for boot (`tunnel up --all`, `service boot`): in
 * every namespace netkit has tunnels in (or only one), without waiting for the
 * peers (they may be booting too). One tunnel failing does not stop the
 * others; each result says what happened.
 */
import {netnsExists} from '../iproute2/netns.js'
import {NetkitError} from '../errors.js'
import {upTunnel, type ServiceOptions} from './service.js'
import {listDefs, listScopes} from './store.js'
import type {TunnelDef} from './types.js'

export interface UpRow {
  name: string
  netns: string | null
  changed: boolean
  summary?: string
  error?: string
}

/** One tunnel's line: in a dry run, what it would do and that nothing was changed. */
export function upLine(r: {changed: boolean; summary: string}, dryRun: boolean): string {
  if (!r.changed) return `${r.summary}; nothing to do`
  return dryRun ? `dry run: ${r.summary}; nothing was changed` : r.summary
}

/**
 * `skip`: tunnels something else sets up in this run (a dry run of boot: the
 * host file's, which its apply would have brought up already), with the line
 * that says so.
 */
export async function upAllTunnels(
  opts: ServiceOptions & {netns?: string; log?: (line: string) => void; warn?: (line: string) => void; skip?: (def: TunnelDef) => string | undefined},
): Promise<{tunnels: UpRow[]; failed: number}> {
  const defs = listScopes(opts.configDir)
    .filter((s) => opts.netns === undefined || s.netns === opts.netns)
    .flatMap((s) => listDefs(s.dir))
  const tunnels: UpRow[] = []
  let failed = 0
  for (const def of defs) {
    const row = {name: def.name, netns: def.netns ?? null}
    const skipped = opts.skip?.(def)
    if (skipped) {
      tunnels.push({...row, changed: false, summary: skipped})
      opts.log?.(skipped)
      continue
    }
    try {
      // A namespace is gone at boot unless something made it again (host.yaml, or the operator's own unit).
      if (def.netns && !netnsExists(def.netns)) {
        throw new NetkitError('E_NO_NETNS', `its namespace ${def.netns} does not exist`, {
          fix: `make it before netkit's boot (list it in /etc/netkit/host.yaml, or "netkit ns add ${def.netns}")`,
        })
      }
      const r = await upTunnel(def, {...opts, wait: false})
      tunnels.push({...row, changed: r.changed, summary: r.summary})
      opts.log?.(upLine(r, opts.runner.dryRun))
    } catch (error) {
      failed++
      const message = error instanceof NetkitError ? error.line : error instanceof Error ? error.message : String(error)
      tunnels.push({...row, changed: false, error: message})
      opts.warn?.(`error: tunnel ${def.name}${def.netns ? ` (namespace ${def.netns})` : ''}: ${message}`)
    }
  }
  return {tunnels, failed}
}
