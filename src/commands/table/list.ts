import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {listTables, type TableRow} from '../../lib/iproute2/tables.js'

export default class TableList extends NetkitCommand {
  static override summary = "List routing table names: built in, the system's, and netkit's."
  static override description = '--json: [{name, id, owned, source}].'
  static override examples = ['<%= config.bin %> table list', '<%= config.bin %> table list --owned --json']
  static override flags = {owned: f.owned}

  async run(): Promise<TableRow[]> {
    const {flags} = await this.parse(TableList)
    this.makeRunner(flags, {global: true})
    const rows = listTables().filter((r) => !flags.owned || r.owned)
    await this.printTable(
      rows,
      [
        {header: 'NAME', get: (r) => r.name},
        {header: 'ID', get: (r) => r.id},
        {header: 'SOURCE', get: (r) => r.source},
        {header: 'OWNER', get: (r) => (r.owned ? 'netkit' : '')},
      ],
      'no tables',
    )
    return rows
  }
}
