import {NetkitCommand} from '../../lib/base-command.js'
import {configDir} from '../../lib/files.js'
import {listTunnels, type TunnelRow} from '../../lib/tunnel/service.js'

export default class TunnelList extends NetkitCommand {
  static override summary = 'List tunnels with their state and data path.'
  static override examples = ['<%= config.bin %> tunnel list', '<%= config.bin %> tunnel list --json']

  async run(): Promise<TunnelRow[]> {
    const {flags} = await this.parse(TunnelList)
    const runner = this.makeRunner(flags)
    const rows = await listTunnels({runner, configDir: configDir(), netns: flags.netns})
    await this.printTable(
      rows,
      [
        {header: 'NAME', get: (r) => r.name},
        {header: 'NETNS', get: (r) => r.netns},
        {header: 'TYPE', get: (r) => r.type},
        {header: 'LOCAL', get: (r) => r.local},
        {header: 'REMOTE', get: (r) => r.remote ?? (r.peers === null ? null : `${r.peers} peer${r.peers === 1 ? '' : 's'}`)},
        {header: 'STATE', get: (r) => r.state},
        {header: 'DATAPATH', get: (r) => r.datapath},
        {header: 'SINCE', get: (r) => r.since},
      ],
      'no tunnels',
    )
    return rows
  }
}
