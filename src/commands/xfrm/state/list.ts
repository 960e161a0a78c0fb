import {NetkitCommand} from '../../../lib/base-command.js'
import * as f from '../../../lib/flags.js'
import {listStates, type StateRow} from '../../../lib/iproute2/xfrm.js'

export default class XfrmStateList extends NetkitCommand {
  static override summary = 'List security associations (the SAD), without their keys.'
  static override description = '--json: [{src, dst, proto, spi, reqid, mode, mark?, algorithms: [name and bit lengths], encap?, selector?, owned}].'
  static override examples = ['<%= config.bin %> xfrm state list', '<%= config.bin %> xfrm state list --json']
  static override flags = {owned: f.owned}

  async run(): Promise<StateRow[]> {
    const {flags} = await this.parse(XfrmStateList)
    const runner = this.makeRunner(flags)
    const rows = await listStates(runner, {owned: flags.owned})
    await this.printTable(
      rows,
      [
        {header: 'SRC', get: (r) => r.src},
        {header: 'DST', get: (r) => r.dst},
        {header: 'SPI', get: (r) => r.spi},
        {header: 'MODE', get: (r) => r.mode},
        {header: 'REQID', get: (r) => r.reqid},
        {header: 'ALGORITHMS', get: (r) => r.algorithms.join('; ')},
        {header: 'OWNER', get: (r) => (r.owned ? 'netkit' : '')},
      ],
      'no SAs',
    )
    return rows
  }
}
