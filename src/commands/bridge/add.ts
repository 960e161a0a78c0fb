import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {addLink} from '../../lib/iproute2/link.js'
import type {ChangeOutcome} from '../../lib/output.js'

export default class BridgeAdd extends NetkitCommand {
  static override summary = 'Create a bridge (up, marked as netkit\'s).'
  static override examples = ['<%= config.bin %> bridge add br0', '<%= config.bin %> bridge add br0 --netns hostA']
  static override args = {name: f.ifnameArg('bridge name')}
  static override flags = {'dry-run': f.dryRun, mtu: f.mtu({summary: 'MTU of the bridge.'}), down: Flags.boolean({summary: 'Leave it down.'})}

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(BridgeAdd)
    const runner = this.makeRunner(flags)
    const changed = await addLink(runner, {name: args.name, kind: 'bridge', mtu: flags.mtu, up: !flags.down})
    return this.outcome(changed, {verb: 'add', object: `bridge ${args.name}`, noop: `bridge ${args.name} already exists`}, runner)
  }
}
