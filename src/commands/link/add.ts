import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {addLink, LINK_KINDS, type LinkKind, MACVLAN_MODES} from '../../lib/iproute2/link.js'
import type {ChangeOutcome} from '../../lib/output.js'
import * as v from '../../lib/validate.js'

export default class LinkAdd extends NetkitCommand {
  static override summary = 'Create a link: a veth pair, a bridge, a VXLAN or a macvlan (marked as netkit\'s).'
  static override examples = [
    '<%= config.bin %> link add veth0 --type veth --peer veth1 --peer-netns hostA',
    '<%= config.bin %> link add br0 --type bridge --up',
    '<%= config.bin %> link add vx42 --type vxlan --vni 42 --remote 192.0.2.2 --dev eth0',
    '<%= config.bin %> link add mv0 --type macvlan --parent eth0 --mode bridge',
  ]
  static override args = {name: f.ifnameArg('link name (up to 15 characters)')}
  static override flags = {
    'dry-run': f.dryRun,
    type: Flags.string({summary: 'Link type.', options: [...LINK_KINDS], required: true}),
    peer: f.ifname({summary: 'veth: the name of the other end.'}),
    'peer-netns': f.netnsOpt({summary: 'veth: put the other end in this namespace.'}),
    vni: Flags.custom<number>({summary: 'vxlan: the VNI (1-16777215).', parse: async (s) => v.integer(s, '--vni', 1, 16_777_215)})(),
    remote: f.ip({summary: 'vxlan: the peer\'s address (unicast).'}),
    group: Flags.custom<v.Address>({summary: 'vxlan: a multicast group.', parse: async (s) => v.multicast(s, '--group')})(),
    dev: f.ifname({summary: 'vxlan: the underlay device.'}),
    port: f.port({summary: 'vxlan: the UDP port (default 4789).'}),
    parent: f.ifname({summary: 'macvlan: the parent device.'}),
    mode: Flags.string({summary: 'macvlan: the mode (default bridge).', options: [...MACVLAN_MODES]}),
    mtu: f.mtu({summary: 'MTU of the new link.'}),
    up: Flags.boolean({summary: 'Bring the link (and a veth\'s peer) up.'}),
  }

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(LinkAdd)
    const runner = this.makeRunner(flags)
    const changed = await addLink(runner, {
      name: args.name,
      kind: flags.type as LinkKind,
      peer: flags.peer,
      peerNetns: flags['peer-netns'],
      vni: flags.vni,
      remote: flags.remote?.ip,
      group: flags.group?.ip,
      dev: flags.dev,
      port: flags.port,
      parent: flags.parent,
      mode: flags.mode as (typeof MACVLAN_MODES)[number] | undefined,
      mtu: flags.mtu,
      up: flags.up,
    })
    return this.outcome(changed, {verb: 'add', object: `${flags.type} link ${args.name}`, noop: `${flags.type} link ${args.name} already exists`}, runner)
  }
}
