import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {addBridge} from '../../lib/iproute2/bridge.js'
import type {ChangeOutcome} from '../../lib/output.js'

export default class BridgeAdd extends NetkitCommand {
  static override summary = "Create a bridge (up, marked as netkit's)."
  static override description =
    'Same as "link add NAME --type bridge --up". An existing bridge of that name is left alone (brought up if down, unless --down); another kind of link of that name is a conflict (exit 1).'
  static override examples = ['<%= config.bin %> bridge add br0', '<%= config.bin %> bridge add br0 --netns hostA']
  static override args = {name: f.ifnameArg('bridge name')}
  static override flags = {'dry-run': f.dryRun, mtu: f.mtu({summary: 'MTU of the bridge.'}), down: Flags.boolean({summary: 'Leave it down.'})}

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(BridgeAdd)
    const runner = this.makeRunner(flags)
    const result = await addBridge(runner, args.name, {mtu: flags.mtu, up: !flags.down})
    const foreign = result.owned ? '' : ' (not created by netkit)'
    if (result.outcome === 'brought-up') return this.outcome(true, {verb: 'bring up', object: `existing bridge ${args.name}${foreign}`, noop: ''}, runner)
    return this.outcome(
      result.outcome === 'created',
      {verb: 'add', object: `bridge ${args.name}`, noop: `bridge ${args.name}${foreign} already exists`},
      runner,
    )
  }
}
