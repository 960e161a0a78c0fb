import {Flags} from '@oclif/core'
import {existsSync, statSync} from 'node:fs'
import {isAbsolute, resolve} from 'node:path'

import {UsageError} from '../errors.js'

/** --root DIR: the tree of a host being built (an image), instead of this host. */
export const root = Flags.custom<string>({
  summary: 'Install into the tree of a host being built (an image) instead of this host: its etc/systemd/system, enabled with "systemctl --root".',
  default: '/',
  parse: async (s) => {
    if (!isAbsolute(s)) throw new UsageError(`--root ${s} is not an absolute path`, 'give the full path of the tree, e.g. /mnt/image')
    if (!existsSync(s) || !statSync(s).isDirectory()) throw new UsageError(`--root ${s} is not a directory`, 'give the path of an existing directory')
    return resolve(s)
  },
})()

/** --bin PATH: the netkit the unit runs. */
export const bin = Flags.string({summary: 'The netkit executable the unit runs, as an absolute path on the host (default: this netkit).'})

/** The service commands act on the whole host: --netns has no meaning there. */
export function refuseNetns(flags: {netns?: string}): void {
  if (flags.netns !== undefined)
    throw new UsageError(
      '--netns does not apply to the service commands: they act on the whole host',
      'leave --netns out (boot brings up the tunnels of every namespace)',
    )
}
