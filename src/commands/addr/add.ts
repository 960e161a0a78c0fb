import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {addAddr} from '../../lib/iproute2/addr.js'
import type {ChangeOutcome} from '../../lib/output.js'

export default class AddrAdd extends NetkitCommand {
  static override summary = "Add an address to an interface (recorded as netkit's)."
  static override examples = ['<%= config.bin %> addr add eth0 10.1.0.1/24', '<%= config.bin %> addr add br0 10.1.0.1/24 --netns hostA']
  static override args = {
    ifname: f.ifnameArg('interface'),
    cidr: f.interfaceAddressArg('address with prefix, e.g. 10.1.0.1/24'),
  }
  static override flags = {'dry-run': f.dryRun}

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(AddrAdd)
    const runner = this.makeRunner(flags)
    const changed = await addAddr(runner, args.ifname, args.cidr)
    return this.outcome(
      changed,
      {verb: 'add', object: `address ${args.cidr.cidr} on ${args.ifname}`, noop: `${args.ifname} already has ${args.cidr.cidr}`},
      runner,
    )
  }
}
