import {Args} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import type {ChangeOutcome} from '../../lib/output.js'
import {checkValue, resolveKey, setSysctl} from '../../lib/sysctl.js'

export default class SysctlSet extends NetkitCommand {
  static override summary = 'Change a kernel setting (the original value is kept for "sysctl restore").'
  static override examples = ['<%= config.bin %> sysctl set ip_forward 1', '<%= config.bin %> sysctl set rp_filter.eth0 2 --netns hostA']
  static override args = {key: Args.string({description: 'setting', required: true}), value: Args.string({description: 'value', required: true})}
  static override flags = {'dry-run': f.dryRun}

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(SysctlSet)
    const key = resolveKey(args.key)
    const value = checkValue(key, args.value)
    const runner = this.makeRunner(flags)
    const changed = await setSysctl(runner, key, value)
    return this.outcome(changed, {verb: 'set', object: `${key.name} to ${value}`, noop: `${key.name} is already ${value}`}, runner)
  }
}
