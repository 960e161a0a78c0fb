import {NetkitCommand} from '../../lib/base-command.js'
import {type OwnedSysctl, ownedSysctls} from '../../lib/sysctl.js'

export default class SysctlList extends NetkitCommand {
  static override summary = 'List the kernel settings netkit changed, with their values before.'
  static override description = '--json: [{key, value, original}].'
  static override examples = ['<%= config.bin %> sysctl list', '<%= config.bin %> sysctl list --netns hostA --json']

  async run(): Promise<OwnedSysctl[]> {
    const {flags} = await this.parse(SysctlList)
    const runner = this.makeRunner(flags)
    const rows = await ownedSysctls(runner)
    await this.printTable(
      rows,
      [
        {header: 'KEY', get: (r) => r.key},
        {header: 'VALUE', get: (r) => r.value},
        {header: 'BEFORE NETKIT', get: (r) => r.original},
      ],
      'netkit changed no setting here',
    )
    return rows
  }
}
