import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {detach} from '../../lib/iproute2/bridge.js'
import type {ChangeOutcome} from '../../lib/output.js'

export default class BridgeDetach extends NetkitCommand {
  static override summary = 'Take an interface out of its bridge.'
  static override description =
    'ip link set IF nomaster. Not in a bridge: nothing to do. An interface netkit did not create (no "netkit" alias) is refused (exit 2) unless --force.'
  static override examples = ['<%= config.bin %> bridge detach veth0']
  static override args = {ifname: f.ifnameArg('interface')}
  static override flags = {'dry-run': f.dryRun, force: Flags.boolean({summary: 'Detach it even if netkit did not create it.'})}

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(BridgeDetach)
    const runner = this.makeRunner(flags)
    const r = await detach(runner, args.ifname, {force: flags.force})
    return this.outcome(
      r.changed,
      {verb: 'detach', object: `${args.ifname} from bridge ${r.bridge ?? ''}`.trimEnd(), noop: `${args.ifname} is not in a bridge`},
      runner,
    )
  }
}
