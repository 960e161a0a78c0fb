import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../../lib/base-command.js'
import * as f from '../../../lib/flags.js'
import {delPolicy} from '../../../lib/iproute2/xfrm.js'
import type {ChangeOutcome} from '../../../lib/output.js'

export default class XfrmPolicyDel extends NetkitCommand {
  static override summary = 'Delete an IPsec policy that netkit added.'
  static override examples = ['<%= config.bin %> xfrm policy del --src 10.1.0.0/24 --dst 10.2.0.0/24 --dir out']
  static override flags = {
    'dry-run': f.dryRun,
    src: f.network({summary: 'Source selector.', required: true}),
    dst: f.network({summary: 'Destination selector.', required: true}),
    dir: Flags.string({summary: 'Direction.', options: ['in', 'out', 'fwd'], required: true}),
    mark: f.mark({summary: 'Mark, as given at add.'}),
    force: Flags.boolean({summary: 'Delete it even if netkit did not add it.'}),
  }

  async run(): Promise<ChangeOutcome> {
    const {flags} = await this.parse(XfrmPolicyDel)
    const runner = this.makeRunner(flags)
    const changed = await delPolicy(runner, {src: flags.src.cidr, dst: flags.dst.cidr, dir: flags.dir, mark: flags.mark}, {force: flags.force})
    const what = `xfrm policy ${flags.src.cidr} -> ${flags.dst.cidr} dir ${flags.dir}`
    return this.outcome(changed, {verb: 'delete', object: what, noop: `${what} is already absent`}, runner)
  }
}
