/**
 * netkit's systemd unit: a oneshot after network-online.target (and after the
 * host's strongSwan service, when there is one) that runs `netkit service
 * boot`. Rendered from templates/systemd/netkit.service.eta with the netkit
 * that installs it: the single binary itself, or node with this checkout's
 * bin/run.js.
 */
import {realpathSync} from 'node:fs'
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

async function runningAsSingleBinary(): Promise<boolean> {
  try {
    const sea = (await import('node:sea')) as {isSea?: () => boolean}
    return Boolean(sea.isSea?.())
  } catch {
    return false
  }
}

/** The command that runs this netkit, as absolute paths: the single binary, or node and bin/run.js (symlinks resolved). */
export async function thisNetkit(): Promise<string[]> {
  if (await runningAsSingleBinary()) return [process.execPath]
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
