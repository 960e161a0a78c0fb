import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {listNetns, type NetnsInfo} from '../../lib/iproute2/netns.js'

export default class NsList extends NetkitCommand {
  static override summary = 'List network namespaces.'
  static override examples = ['<%= config.bin %> ns list', '<%= config.bin %> ns list --owned --json']
  static override flags = {owned: f.owned}

  async run(): Promise<NetnsInfo[]> {
    const {flags} = await this.parse(NsList)
    const runner = this.makeRunner(flags, {global: true})
    const rows = (await listNetns(runner)).filter((r) => !flags.owned || r.owned)
    await this.printTable(
      rows,
      [
        {header: 'NAME', get: (r) => r.name},
        {header: 'ID', get: (r) => r.id},
        {header: 'OWNER', get: (r) => (r.owned ? 'netkit' : '')},
      ],
      'no network namespaces',
    )
    return rows
  }
}
