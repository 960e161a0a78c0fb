import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../../lib/base-command.js'
import * as f from '../../../lib/flags.js'
import {listPolicies, type PolicyRow} from '../../../lib/iproute2/xfrm.js'

export default class XfrmPolicyList extends NetkitCommand {
  static override summary = 'List IPsec policies (the SPD).'
  static override description = '--json: [{src, dst, dir, priority, action, ptype, mark?, tmpls: [{src, dst, proto, reqid, mode}], owned}].'
  static override examples = ['<%= config.bin %> xfrm policy list', '<%= config.bin %> xfrm policy list --dir out --json']
  static override flags = {owned: f.owned, dir: Flags.string({summary: 'Only this direction.', options: ['in', 'out', 'fwd']})}

  async run(): Promise<PolicyRow[]> {
    const {flags} = await this.parse(XfrmPolicyList)
    const runner = this.makeRunner(flags)
    const rows = await listPolicies(runner, {owned: flags.owned, dir: flags.dir})
    await this.printTable(
      rows,
      [
        {header: 'SRC', get: (r) => r.src},
        {header: 'DST', get: (r) => r.dst},
        {header: 'DIR', get: (r) => r.dir},
        {header: 'PRIO', get: (r) => r.priority},
        {header: 'ACTION', get: (r) => r.action},
        {header: 'TMPL', get: (r) => r.tmpls.map((t) => `${t.src}->${t.dst} ${t.proto} ${t.mode} reqid ${t.reqid}`).join('; ')},
        {header: 'MARK', get: (r) => r.mark},
        {header: 'OWNER', get: (r) => (r.owned ? 'netkit' : '')},
      ],
      'no xfrm policies',
    )
    return rows
  }
}
