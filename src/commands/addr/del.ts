import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {delAddr} from '../../lib/iproute2/addr.js'
import type {ChangeOutcome} from '../../lib/output.js'

export default class AddrDel extends NetkitCommand {
  static override summary = 'Remove an address that netkit added.'
  static override description =
    'Refused (exit 2) when the kernel would delete secondary addresses of the same subnet with it (unless the link has promote_secondaries, or --force).'
  static override examples = ['<%= config.bin %> addr del eth0 10.1.0.1/24']
  static override args = {
    ifname: f.ifnameArg('interface'),
    cidr: f.interfaceAddressArg('address with prefix'),
  }
  static override flags = {
    'dry-run': f.dryRun,
    force: Flags.boolean({summary: 'Remove it even if netkit did not add it, or if secondary addresses go with it.'}),
  }

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(AddrDel)
    const runner = this.makeRunner(flags)
    const changed = await delAddr(runner, args.ifname, args.cidr, {force: flags.force})
    return this.outcome(
      changed,
      {verb: 'remove', object: `address ${args.cidr.cidr} from ${args.ifname}`, noop: `${args.ifname} does not have ${args.cidr.cidr}`},
      runner,
    )
  }
}
