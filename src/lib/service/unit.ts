/**
 * netkit's systemd unit: a oneshot after network-online.target (and after the
 * host's strongSwan service, when there is one) that runs `netkit service
 * boot`. Rendered from templates/systemd/netkit.service.eta with the netkit
 * that installs it: the single binary itself, or node with this checkout's
 * bin/run.js.
 */
import {realpathSync} from 'node:fs'
import {createRequire} from 'node:module'
import {isAbsolute, join} from 'node:path'

import {UsageError} from '../errors.js'
import {renderTemplate} from '../templates.js'

export const UNIT_NAME = 'netkit.service'
/** The first line of every unit netkit writes: what tells netkit's own file from an operator's. */
export const UNIT_MARKER = 'Written by "netkit service install"; removed by "netkit service uninstall".'

/** Where the unit goes: the local administrator's unit directory, under `root` (an image being built) or /. */
export function unitPath(root = '/'): string {
  return join(root, 'etc/systemd/system', UNIT_NAME)
}

/**
 * Whether this is the single binary. node:sea is asked through require: the bundle runs in a
 * vm.Script there, where a dynamic import() of a builtin fails. Before Node 20.12 (no node:sea),
 * the binary is told by its argv: a script runs as [node, script], the binary as [binary, binary].
 */
function runningAsSingleBinary(): boolean {
  try {
    const sea = createRequire(import.meta.url)('node:sea') as {isSea?: () => boolean}
    if (typeof sea.isSea === 'function') return sea.isSea()
  } catch {
    // no node:sea
  }
  return process.argv[1] === process.execPath
}

/** The command that runs this netkit, as absolute paths: the single binary, or node and bin/run.js (symlinks resolved). */
export async function thisNetkit(): Promise<string[]> {
  if (runningAsSingleBinary()) return [process.execPath]
  return [process.execPath, realpathSync(process.argv[1])]
}

/** One word of a systemd command line: % and $ doubled, quoted when it holds a space or a quote. */
export function systemdWord(word: string): string {
  const plain = word.replaceAll('%', '%%').replaceAll('$', '$$')
  return /^[A-Za-z0-9_@+=:,./-]+$/.test(word) ? plain : `"${plain.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`
}

/** The netkit a unit runs: `bin` (an absolute path, as it will be on the host) or this one. */
export async function unitCommand(bin?: string): Promise<string[]> {
  if (bin === undefined) return thisNetkit()
  if (!isAbsolute(bin)) throw new UsageError(`--bin ${bin} is not an absolute path`, 'give the full path of the netkit executable, e.g. /usr/bin/netkit')
  return [bin]
}

export async function renderUnit(command: string[]): Promise<string> {
  return renderTemplate('systemd/netkit.service.eta', {marker: UNIT_MARKER, exec: command.map(systemdWord).join(' ')})
}
