import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {ruleFlags} from '../../lib/iproute2/route-cli-flags.js'
import {ruleSpec} from '../../lib/iproute2/route-flags.js'
import {delRule} from '../../lib/iproute2/rule.js'
import type {ChangeOutcome} from '../../lib/output.js'

export default class RuleDel extends NetkitCommand {
  static override summary = 'Delete a policy rule that netkit made (same selectors as at add).'
  static override examples = ['<%= config.bin %> rule del --from 10.1.0.0/24 --table vpn']
  static override flags = {'dry-run': f.dryRun, ...ruleFlags, force: Flags.boolean({summary: 'Delete it even if netkit did not make it.'})}

  async run(): Promise<ChangeOutcome> {
    const {flags} = await this.parse(RuleDel)
    const spec = ruleSpec(flags)
    const runner = this.makeRunner(flags)
    const changed = await delRule(runner, spec, {force: flags.force})
    return this.outcome(changed, {verb: 'delete', object: `rule to table ${flags.table}`, noop: 'there is no such rule'}, runner)
  }
}
