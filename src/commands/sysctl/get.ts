import {Args} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import {getSysctls, resolveKey, SHORT_NAMES} from '../../lib/sysctl.js'

export default class SysctlGet extends NetkitCommand {
  static override summary = 'Read kernel settings (short names, dotted names or slash paths).'
  static override description = `Short names: ${SHORT_NAMES.join(', ')}; the per-interface ones take the interface (or all, default) after a dot: rp_filter.eth0. Full names work too: net.ipv4.conf.eth0.rp_filter, or net/ipv4/conf/eth0.100/rp_filter for interface names with dots. --json: [{key, value}].`
  static override examples = [
    '<%= config.bin %> sysctl get ip_forward rp_filter.all rp_filter.eth0',
    '<%= config.bin %> sysctl get net/ipv4/conf/eth0.100/rp_filter --netns hostA',
  ]
  static override strict = false
  static override args = {key: Args.string({description: 'setting(s)', required: true})}

  async run(): Promise<{key: string; value: string}[]> {
    const {argv, flags} = await this.parse(SysctlGet)
    const runner = this.makeRunner(flags)
    const keys = (argv as string[]).map(resolveKey)
    const values = await getSysctls(runner, keys)
    const rows = keys.map((k, i) => ({key: k.name, value: values[i]}))
    await this.printTable(
      rows,
      [
        {header: 'KEY', get: (r) => r.key},
        {header: 'VALUE', get: (r) => r.value},
      ],
      'nothing',
    )
    return rows
  }
}
