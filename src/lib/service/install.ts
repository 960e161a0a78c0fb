/**
 * Installs and removes netkit's systemd unit (unit.ts), and says where it
 * stands. The unit file is netkit's only when it carries UNIT_MARKER: an
 * operator's own netkit.service is never overwritten or removed. systemd is
 * told (daemon-reload, enable, disable) only when it runs the host (PID 1);
 * elsewhere (a container, a chroot) the file is still installed and the
 * command says so. `root` installs into a host tree being built (an image):
 * there `systemctl --root` enables the unit without a running systemd.
 */
import {existsSync, readFileSync} from 'node:fs'

import {NetkitError} from '../errors.js'
import type {Runner} from '../runner.js'
import {renderUnit, UNIT_MARKER, UNIT_NAME, unitPath} from './unit.js'

export interface ServiceOptions {
  runner: Runner
  /** The tree to install into: / (this host) or an image's root. */
  root: string
}

export interface ServiceChange {
  changed: boolean
  path: string
  /** enabled, disabled, or why it is not known. */
  enabled: string
  summary: string
  notes: string[]
  dryRun: boolean
  commands: string[]
}

/** Whether systemd runs this host (sd_booted: /run/systemd/system exists). */
export function systemdRuns(): boolean {
  return existsSync('/run/systemd/system')
}

/** What PID 1 is (its command name), for saying why systemd is not told. */
export function pid1(): string {
  try {
    return readFileSync('/proc/1/comm', 'utf8').trim()
  } catch {
    return 'unknown'
  }
}

function readUnit(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

function refuseForeign(path: string, text: string | undefined): void {
  if (text !== undefined && !text.includes(UNIT_MARKER)) {
    throw new NetkitError('E_CONFLICT', `${path} is not netkit's (it lacks the line "# ${UNIT_MARKER}")`, {
      fix: 'netkit leaves it alone: move it away first if netkit should install its own',
    })
  }
}

const systemctlArgs = (root: string, ...args: string[]) => (root === '/' ? args : [`--root=${root}`, ...args])

/** systemd's view of the unit: 'enabled', 'disabled', ..., or undefined when systemctl cannot tell (not installed). */
async function enabledState(runner: Runner, root: string): Promise<string | undefined> {
  const r = await runner.probe({tool: 'systemctl', args: systemctlArgs(root, 'is-enabled', UNIT_NAME), netns: null})
  if (r.exitCode === 127) return undefined
  return r.stdout.trim() || 'not installed'
}

/** Where systemd is told nothing (this host, not run by systemd): the reason, else undefined. */
function systemdAbsent(root: string): string | undefined {
  return root === '/' && !systemdRuns() ? `systemd is not running here (PID 1 is ${pid1()})` : undefined
}

export async function installService(opts: ServiceOptions & {command: string[]}): Promise<ServiceChange> {
  const {runner, root} = opts
  const path = unitPath(root)
  const text = await renderUnit(opts.command)
  const current = readUnit(path)
  refuseForeign(path, current)
  const notes: string[] = []
  let changed = false
  if (current !== text) {
    runner.writeFile(path, text)
    changed = true
  }
  let enabled: string
  const absent = systemdAbsent(root)
  if (absent) {
    enabled = 'not enabled (systemd is not running)'
    notes.push(
      `${absent}: the unit ${runner.dryRun ? 'would be' : 'is'} installed but not enabled; on a host that boots with systemd run "systemctl enable ${UNIT_NAME}" (or install into its tree with --root)`,
    )
  } else {
    if (root === '/' && changed) await runner.run({tool: 'systemctl', args: ['daemon-reload'], netns: null})
    const state = await enabledState(runner, root)
    if (state === undefined) {
      enabled = 'unknown (systemctl is not installed)'
      notes.push(`systemctl is not installed: the unit is installed but not enabled`)
    } else {
      if (state !== 'enabled') {
        await runner.run({tool: 'systemctl', args: systemctlArgs(root, 'enable', UNIT_NAME), netns: null, object: `unit ${UNIT_NAME}`})
        changed = true
      }
      enabled = 'enabled'
    }
  }
  const summary = !changed
    ? `${UNIT_NAME} is already installed${enabled === 'enabled' ? ' and enabled' : ''} (${path})`
    : `${runner.dryRun ? 'would install' : 'installed'} ${UNIT_NAME} (${path})${enabled === 'enabled' ? `, enabled: it runs "netkit service boot" at every boot` : ''}`
  return {changed, path, enabled, summary, notes, dryRun: runner.dryRun, commands: [...runner.journal]}
}

export async function uninstallService(opts: ServiceOptions): Promise<ServiceChange> {
  const {runner, root} = opts
  const path = unitPath(root)
  const current = readUnit(path)
  refuseForeign(path, current)
  const notes: string[] = []
  let changed = false
  const state = current === undefined ? undefined : await enabledState(runner, root)
  // Disabled while the file is there (systemctl reads its [Install] section); also where systemd does not run, so no link is left dangling.
  if (state === 'enabled') {
    await runner.run({tool: 'systemctl', args: systemctlArgs(root, 'disable', UNIT_NAME), netns: null, object: `unit ${UNIT_NAME}`})
    changed = true
  }
  if (current !== undefined) {
    runner.removeFiles([path])
    changed = true
    if (root === '/' && systemdRuns()) await runner.run({tool: 'systemctl', args: ['daemon-reload'], netns: null})
  }
  const absent = systemdAbsent(root)
  if (changed && absent) notes.push(`${absent}: removed the file only`)
  const summary = changed ? `${runner.dryRun ? 'would remove' : 'removed'} ${UNIT_NAME} (${path})` : `${UNIT_NAME} is not installed (${path})`
  return {changed, path, enabled: 'not installed', summary, notes, dryRun: runner.dryRun, commands: [...runner.journal]}
}

export interface ServiceStatus {
  path: string
  /** installed (as install would write it now), outdated (an earlier netkit's or another path's), absent, or foreign (not netkit's). */
  unit: 'installed' | 'outdated' | 'absent' | 'foreign'
  enabled: string
  systemd: string
}

export async function serviceStatus(opts: ServiceOptions & {command: string[]}): Promise<ServiceStatus> {
  const path = unitPath(opts.root)
  const current = readUnit(path)
  const unit =
    current === undefined ? 'absent' : !current.includes(UNIT_MARKER) ? 'foreign' : current === (await renderUnit(opts.command)) ? 'installed' : 'outdated'
  const enabled = (await enabledState(opts.runner, opts.root)) ?? 'unknown (systemctl is not installed)'
  const systemd = opts.root !== '/' ? `not asked (--root ${opts.root})` : systemdRuns() ? 'running' : `not running (PID 1 is ${pid1()})`
  return {path, unit, enabled, systemd}
}

/** The outcome for people: the summary (stderr in a dry run, whose stdout is the commands) and the notes. */
export function report(json: boolean, r: {changed: boolean; summary: string; notes: string[]; dryRun: boolean}): void {
  if (json) return
  const line = r.changed ? (r.dryRun ? `dry run: ${r.summary}; nothing was changed` : r.summary) : `${r.summary}; nothing to do`
  if (r.dryRun) process.stderr.write(`${line}\n`)
  else process.stdout.write(`${line}\n`)
  for (const n of r.notes) process.stderr.write(`note: ${n}\n`)
}
