import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {type BridgeRow, listBridges} from '../../lib/iproute2/bridge.js'

export default class BridgeList extends NetkitCommand {
  static override summary = 'List bridges and their ports.'
  static override description =
    'One row per bridge. --json: [{name, owned, state, ports: [ifname...]}] (ports sorted by name; owned: the bridge carries the "netkit" alias).'
  static override examples = ['<%= config.bin %> bridge list', '<%= config.bin %> bridge list --owned --json']
  static override flags = {owned: f.owned}

  async run(): Promise<BridgeRow[]> {
    const {flags} = await this.parse(BridgeList)
    const runner = this.makeRunner(flags)
    const rows = await listBridges(runner, {owned: flags.owned})
    await this.printTable(
      rows,
      [
        {header: 'NAME', get: (r) => r.name},
        {header: 'STATE', get: (r) => r.state},
        {header: 'OWNER', get: (r) => (r.owned ? 'netkit' : '')},
        {header: 'PORTS', get: (r) => r.ports.join(' ')},
      ],
      'no bridges',
    )
    return rows
  }
}
