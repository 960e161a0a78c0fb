import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {delBridge} from '../../lib/iproute2/bridge.js'
import type {ChangeOutcome} from '../../lib/output.js'

export default class BridgeDel extends NetkitCommand {
  static override summary = 'Delete a bridge that netkit created (its ports stay, detached).'
  static override description =
    'A bridge without the "netkit" alias is refused (exit 2) unless --force; a link that is not a bridge is refused too. An absent bridge is a no-op.'
  static override examples = ['<%= config.bin %> bridge del br0']
  static override args = {name: f.ifnameArg('bridge name')}
  static override flags = {'dry-run': f.dryRun, force: Flags.boolean({summary: 'Delete it even if netkit did not create it.'})}

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(BridgeDel)
    const runner = this.makeRunner(flags)
    const changed = await delBridge(runner, args.name, {force: flags.force})
    return this.outcome(changed, {verb: 'delete', object: `bridge ${args.name}`, noop: `bridge ${args.name} is already absent`}, runner)
  }
}
