/**
 * What netkit does at boot (`netkit service boot`, run by its systemd unit):
 * applies /etc/netkit/host.yaml when the operator keeps one there (namespaces,
 * links, routes, tunnels: everything a reboot took), then brings every defined
 * tunnel up, in every namespace netkit has tunnels in, without waiting for the
 * peers. The host file goes first: the namespaces it makes are where some
 * tunnels live. A failure of one part does not stop the others; the result
 * says what failed, and the command exits 1.
 */
import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {NetkitError} from '../errors.js'
import type {Runner} from '../runner.js'
import type {TunnelDef} from '../tunnel/types.js'
import {upAllTunnels, type UpRow} from '../tunnel/up-all.js'

export interface BootOptions {
  runner: Runner
  configDir: string
  /** netkit's version (apply's memo is per version). */
  version: string
  progress?: 'tty' | 'simple' | 'none'
  log?: (line: string) => void
  warn?: (line: string) => void
}

export interface BootResult {
  hostFile: {path: string; present: boolean; changed?: boolean; changes?: number; error?: string}
  tunnels: UpRow[]
  failed: number
}

/** The host file the boot applies, when it is there. */
export const bootHostFile = (configDir: string): string => join(configDir, 'host.yaml')

export async function bootNetkit(opts: BootOptions): Promise<BootResult> {
  const {runner, log = () => {}, warn = () => {}} = opts
  const path = bootHostFile(opts.configDir)
  const hostFile: BootResult['hostFile'] = {path, present: existsSync(path)}
  let failed = 0
  const byFile = new Set<string>()
  if (hostFile.present) {
    try {
      const {applyHost} = await import('../apply/run.js')
      const {readHostText} = await import('../apply/input.js')
      const r = await applyHost(runner, {...readHostText(path), version: opts.version}, {progress: opts.progress, log: warn})
      hostFile.changed = r.changed
      hostFile.changes = r.changes.length
      const n = `${r.changes.length} change${r.changes.length === 1 ? '' : 's'}`
      if (!r.changed) log(`the host already matches ${path}; nothing to do`)
      else log(runner.dryRun ? `dry run: would apply ${path} (${n}); nothing was changed` : `applied ${path} (${n}, verified)`)
      // A dry run leaves the file's tunnels as they are: "tunnel up --all" would plan them again, which the real apply has done.
      if (runner.dryRun) for (const c of r.changes) if (c.kind === 'tunnel') byFile.add(`${c.netns ?? ''} ${c.object}`)
    } catch (error) {
      failed++
      hostFile.error = error instanceof NetkitError ? error.line : String((error as Error).message ?? error)
      warn(`error: ${path}: ${hostFile.error}`)
    }
  }
  const skip = (def: TunnelDef) =>
    byFile.has(`${def.netns ?? ''} ${def.type} tunnel ${def.name}`) ? `tunnel ${def.name}: set up by ${path} (above)` : undefined
  const up = await upAllTunnels({runner, configDir: opts.configDir, progress: opts.progress, log, warn, skip})
  if (!hostFile.present && up.tunnels.length === 0) log(`no tunnels defined and no ${path}; nothing to do`)
  return {hostFile, tunnels: up.tunnels, failed: failed + up.failed}
}
