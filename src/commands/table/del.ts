import {Args} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {delTable} from '../../lib/iproute2/tables.js'
import type {ChangeOutcome} from '../../lib/output.js'

export default class TableDel extends NetkitCommand {
  static override summary = 'Remove a table name netkit added (routes in the table stay, reachable by number).'
  static override examples = ['<%= config.bin %> table del vpn']
  static override args = {name: Args.string({description: 'table name', required: true})}
  static override flags = {'dry-run': f.dryRun}

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(TableDel)
    const runner = this.makeRunner(flags, {global: true})
    const changed = delTable(args.name, runner)
    return this.outcome(changed, {verb: 'remove', object: `table name ${args.name}`, noop: `there is no table named ${args.name}`}, runner)
  }
}
