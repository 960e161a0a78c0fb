import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {listRules, type RuleRow} from '../../lib/iproute2/rule.js'

export default class RuleList extends NetkitCommand {
  static override summary = 'List policy rules (IPv4 and IPv6).'
  static override description = '--json: [{priority, family, from, to, fwmark, iif, oif, table, tableName, protocol, owned}].'
  static override examples = ['<%= config.bin %> rule list', '<%= config.bin %> rule list --owned --json']
  static override flags = {owned: f.owned}

  async run(): Promise<RuleRow[]> {
    const {flags} = await this.parse(RuleList)
    const runner = this.makeRunner(flags)
    const rows = await listRules(runner, {owned: flags.owned})
    await this.printTable(
      rows,
      [
        {header: 'PRIO', get: (r) => r.priority},
        {header: 'FAMILY', get: (r) => `ipv${r.family}`},
        {header: 'FROM', get: (r) => r.from},
        {header: 'TO', get: (r) => r.to},
        {header: 'FWMARK', get: (r) => r.fwmark},
        {header: 'IIF', get: (r) => r.iif},
        {header: 'OIF', get: (r) => r.oif},
        {header: 'TABLE', get: (r) => r.tableName ?? r.table},
        {header: 'PROTO', get: (r) => (r.owned ? 'netkit' : r.protocol)},
      ],
      'no rules',
    )
    return rows
  }
}
