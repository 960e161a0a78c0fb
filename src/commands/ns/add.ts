import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {addNetns} from '../../lib/iproute2/netns.js'
import type {ChangeOutcome} from '../../lib/output.js'

export default class NsAdd extends NetkitCommand {
  static override summary = 'Create a network namespace (with its loopback up).'
  static override examples = ['<%= config.bin %> ns add hostA', '<%= config.bin %> ns add hostA --dry-run']
  static override args = {name: f.netnsArg('namespace name')}
  static override flags = {'dry-run': f.dryRun}

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(NsAdd)
    const runner = this.makeRunner(flags, {global: true})
    const changed = await addNetns(runner, args.name)
    return this.outcome(changed, {verb: 'add', object: `network namespace ${args.name}`, noop: `network namespace ${args.name} already exists`}, runner)
  }
}
