import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../../lib/base-command.js'
import * as f from '../../../lib/flags.js'
import {delState} from '../../../lib/iproute2/xfrm.js'
import type {ChangeOutcome} from '../../../lib/output.js'
import * as v from '../../../lib/validate.js'

export default class XfrmStateDel extends NetkitCommand {
  static override summary = 'Delete an SA that netkit added.'
  static override examples = ['<%= config.bin %> xfrm state del --src 192.0.2.1 --dst 192.0.2.2 --spi 0x1000']
  static override flags = {
    'dry-run': f.dryRun,
    src: f.ip({summary: 'Outer source address.', required: true}),
    dst: f.ip({summary: 'Outer destination address.', required: true}),
    spi: Flags.custom<number>({summary: 'SPI.', required: true, parse: async (s) => v.spi(s)})(),
    force: Flags.boolean({summary: 'Delete it even if netkit did not add it.'}),
  }

  async run(): Promise<ChangeOutcome> {
    const {flags} = await this.parse(XfrmStateDel)
    const runner = this.makeRunner(flags)
    const changed = await delState(runner, {src: flags.src.ip, dst: flags.dst.ip, spi: flags.spi}, {force: flags.force})
    const what = `SA spi 0x${flags.spi.toString(16)}`
    return this.outcome(changed, {verb: 'delete', object: what, noop: `${what} is already absent`}, runner)
  }
}
