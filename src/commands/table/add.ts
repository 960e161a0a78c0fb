import {Args} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {addTable, netkitTablesFile} from '../../lib/iproute2/tables.js'
import type {ChangeOutcome} from '../../lib/output.js'
import * as v from '../../lib/validate.js'

export default class TableAdd extends NetkitCommand {
  static override summary = "Name a routing table (kept in netkit's own file under rt_tables.d)."
  static override description = 'The name then works in "route" and "rule" (--table NAME). Names are machine-wide, like iproute2\'s.'
  static override examples = ['<%= config.bin %> table add vpn 100']
  static override args = {name: Args.string({description: 'table name', required: true}), id: Args.string({description: 'table number', required: true})}
  static override flags = {'dry-run': f.dryRun}

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(TableAdd)
    const id = v.integer(args.id, 'table id', 1, 0x7fff_ffff)
    const runner = this.makeRunner(flags, {global: true})
    const changed = addTable(args.name, id, runner)
    if (changed && runner.dryRun && !this.jsonEnabled()) this.log(`write ${netkitTablesFile()} (+ ${id} ${args.name})`)
    return this.outcome(changed, {verb: 'add', object: `table ${args.name} (${id})`, noop: `table ${args.name} is already ${id}`}, runner)
  }
}
