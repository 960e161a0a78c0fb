import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {ruleFlags} from '../../lib/iproute2/route-cli-flags.js'
import {ruleSpec} from '../../lib/iproute2/route-flags.js'
import {addRule} from '../../lib/iproute2/rule.js'
import type {ChangeOutcome} from '../../lib/output.js'

export default class RuleAdd extends NetkitCommand {
  static override summary = "Add a policy rule (marked with netkit's protocol, 178)."
  static override examples = [
    '<%= config.bin %> rule add --from 10.1.0.0/24 --table vpn',
    '<%= config.bin %> rule add --fwmark 0x100/0xff00 --table 100 --priority 900',
  ]
  static override flags = {'dry-run': f.dryRun, ...ruleFlags}

  async run(): Promise<ChangeOutcome> {
    const {flags} = await this.parse(RuleAdd)
    const spec = ruleSpec(flags)
    const runner = this.makeRunner(flags)
    const changed = await addRule(runner, spec)
    return this.outcome(
      changed,
      {verb: 'add', object: `rule to table ${flags.table} (priority ${spec.priority})`, noop: `the rule to table ${flags.table} already exists`},
      runner,
    )
  }
}
