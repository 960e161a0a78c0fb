import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {attach} from '../../lib/iproute2/bridge.js'
import type {ChangeOutcome} from '../../lib/output.js'

export default class BridgeAttach extends NetkitCommand {
  static override summary = 'Make an interface a port of a bridge.'
  static override description =
    'ip link set IF master BRIDGE. Already a port of BRIDGE: nothing to do. A port of another bridge: a conflict (exit 1) unless --force, which moves it. An interface netkit did not create (no "netkit" alias) is refused (exit 2) unless --force.'
  static override examples = ['<%= config.bin %> bridge attach br0 veth0', '<%= config.bin %> bridge attach br1 veth0 --force']
  static override args = {bridge: f.ifnameArg('bridge'), ifname: f.ifnameArg('interface')}
  static override flags = {'dry-run': f.dryRun, force: Flags.boolean({summary: 'Attach it even if netkit did not create it, or move it from another bridge.'})}

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(BridgeAttach)
    const runner = this.makeRunner(flags)
    const changed = await attach(runner, args.bridge, args.ifname, {force: flags.force})
    return this.outcome(
      changed,
      {verb: 'attach', object: `${args.ifname} to bridge ${args.bridge}`, noop: `${args.ifname} is already a port of ${args.bridge}`},
      runner,
    )
  }
}
