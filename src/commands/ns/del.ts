import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {delNetns} from '../../lib/iproute2/netns.js'
import type {ChangeOutcome} from '../../lib/output.js'

export default class NsDel extends NetkitCommand {
  static override summary = 'Delete a network namespace that netkit created.'
  static override examples = ['<%= config.bin %> ns del hostA']
  static override args = {name: f.netnsArg('namespace name')}
  static override flags = {
    'dry-run': f.dryRun,
    force: Flags.boolean({summary: 'Delete it even if netkit did not create it.'}),
  }

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(NsDel)
    const runner = this.makeRunner(flags, {global: true})
    const changed = await delNetns(runner, args.name, {force: flags.force})
    return this.outcome(changed, {verb: 'delete', object: `network namespace ${args.name}`, noop: `network namespace ${args.name} is already absent`}, runner)
  }
}
