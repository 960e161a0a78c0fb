import {Args, Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import {UsageError} from '../../lib/errors.js'
import * as f from '../../lib/flags.js'
import {ownedSysctlKeys, resolveKey, restoreSysctl} from '../../lib/sysctl.js'

export default class SysctlRestore extends NetkitCommand {
  static override summary = 'Put back the value a setting had before netkit changed it.'
  static override examples = ['<%= config.bin %> sysctl restore rp_filter.eth0', '<%= config.bin %> sysctl restore --all']
  static override args = {key: Args.string({description: 'setting'})}
  static override flags = {'dry-run': f.dryRun, all: Flags.boolean({summary: 'Every setting netkit changed here.'})}

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(SysctlRestore)
    if (!args.key && !flags.all) throw new UsageError('name a setting or pass --all', 'see "netkit sysctl list"')
    const runner = this.makeRunner(flags)
    const keys = flags.all ? ownedSysctlKeys(runner) : [resolveKey(args.key!)]
    let changed = false
    for (const k of keys) changed = (await restoreSysctl(runner, k)) || changed
    return this.outcome(changed, {verb: 'restore', object: keys.map((k) => k.name).join(', ') || 'nothing', noop: 'netkit had not changed it'}, runner)
  }
}
