import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {setLink} from '../../lib/iproute2/link.js'
import type {ChangeOutcome} from '../../lib/output.js'

export default class LinkSet extends NetkitCommand {
  static override summary = 'Change a link: up or down, MTU, bridge (master), or move it to another namespace.'
  static override description = `Only what differs is changed; when nothing does, it says so ("already as asked; nothing to do"). A link netkit did not create (no "netkit" alias) is refused (exit 2) unless --force, as by "link del".
--to-netns NS moves the link to namespace NS (the global --netns says where the command runs and where the link is now). A moved link arrives down: --up and --mtu given with --to-netns apply in NS. Run again after the move, the same command finds the link in NS and changes only what still differs there. --master/--nomaster cannot be combined with --to-netns.`
  static override examples = [
    '<%= config.bin %> link set veth0 --up --mtu 1400',
    '<%= config.bin %> link set veth0 --master br0',
    '<%= config.bin %> link set veth1 --to-netns hostB --up',
  ]
  static override args = {name: f.ifnameArg('link name')}
  static override flags = {
    'dry-run': f.dryRun,
    up: Flags.boolean({summary: 'Bring it up.', exclusive: ['down']}),
    down: Flags.boolean({summary: 'Bring it down.'}),
    mtu: f.mtu({summary: 'Set the MTU.'}),
    master: f.ifname({summary: 'Make it a port of this bridge.', exclusive: ['nomaster']}),
    nomaster: Flags.boolean({summary: 'Take it out of its bridge.'}),
    'to-netns': f.netnsOpt({summary: 'Move it to this network namespace (not the global --netns, which says where to run).'}),
    force: Flags.boolean({summary: 'Change it even if netkit did not create it.'}),
  }

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(LinkSet)
    const runner = this.makeRunner(flags)
    const r = await setLink(runner, args.name, {
      up: flags.up,
      down: flags.down,
      mtu: flags.mtu,
      master: flags.master,
      nomaster: flags.nomaster,
      toNetns: flags['to-netns'],
      force: flags.force,
    })
    const where = r.netns && r.netns !== runner.netns ? ` (in namespace ${r.netns})` : ''
    return this.outcome(r.changed, {verb: 'change', object: `link ${args.name}${where}`, noop: `link ${args.name}${where} is already as asked`}, runner)
  }
}
