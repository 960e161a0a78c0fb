import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {type BridgeRow, listBridges} from '../../lib/iproute2/link.js'

export default class BridgeList extends NetkitCommand {
  static override summary = 'List bridges and their ports.'
  static override description = '--json: [{name, state, owned, ports: [ifname...]}].'
  static override examples = ['<%= config.bin %> bridge list', '<%= config.bin %> bridge list --json']
  static override flags = {owned: f.owned}

  async run(): Promise<BridgeRow[]> {
    const {flags} = await this.parse(BridgeList)
    const runner = this.makeRunner(flags)
    const rows = await listBridges(runner, {owned: flags.owned})
    await this.printTable(rows, [
      {header: 'BRIDGE', get: (r) => r.name},
      {header: 'STATE', get: (r) => r.state},
      {header: 'PORTS', get: (r) => r.ports.join(' ')},
      {header: 'OWNER', get: (r) => (r.owned ? 'netkit' : '')},
    ], 'no bridges')
    return rows
  }
}
