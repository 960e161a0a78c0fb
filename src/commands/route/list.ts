import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {listRoutes, type RouteRow} from '../../lib/iproute2/route.js'
import {resolveTable} from '../../lib/iproute2/tables.js'

export default class RouteList extends NetkitCommand {
  static override summary = 'List routes of a table (default main), or of all tables.'
  static override description = '--json: [{dst, family, via, dev, table, tableName, metric, protocol, src, owned}] (table as a number).'
  static override examples = ['<%= config.bin %> route list', '<%= config.bin %> route list --table all --owned --json']
  static override flags = {owned: f.owned, table: Flags.string({summary: 'A table by name or number, or "all".', default: 'main'})}

  async run(): Promise<RouteRow[]> {
    const {flags} = await this.parse(RouteList)
    const table = flags.table === 'all' ? 'all' : resolveTable(flags.table)
    const runner = this.makeRunner(flags)
    const rows = await listRoutes(runner, {table, owned: flags.owned})
    await this.printTable(
      rows,
      [
        {header: 'DEST', get: (r) => r.dst},
        {header: 'VIA', get: (r) => r.via},
        {header: 'DEV', get: (r) => r.dev},
        {header: 'TABLE', get: (r) => r.tableName ?? r.table},
        {header: 'METRIC', get: (r) => r.metric},
        {header: 'PROTO', get: (r) => (r.owned ? 'netkit' : r.protocol)},
        {header: 'SRC', get: (r) => r.src},
      ],
      'no routes',
    )
    return rows
  }
}
