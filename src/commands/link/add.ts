import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {addLink, LINK_KINDS, type LinkKind, MACVLAN_MODES, type MacvlanMode, VNI_MAX} from '../../lib/iproute2/link.js'
import type {ChangeOutcome} from '../../lib/output.js'
import * as v from '../../lib/validate.js'

export default class LinkAdd extends NetkitCommand {
  static override summary = "Create a link: a veth pair, a bridge, a VXLAN or a macvlan (marked as netkit's)."
  static override description = `Every link netkit creates gets the alias "netkit" (both ends of a veth), which is how "link del" knows its own.
An existing link with the same name and the same type and parameters is left alone ("already exists; nothing to do"; with --up it is brought up if down); a different one is a conflict (exit 1) naming what differs.
The link is created, marked and (with --up) brought up in one ip -batch; a veth end in another namespace (--peer-netns) is marked there.`
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
    peer: f.ifname({summary: 'veth: the name of the other end (required).'}),
    'peer-netns': f.netnsOpt({summary: 'veth: put the other end in this namespace.'}),
    vni: Flags.custom<number>({summary: `vxlan: the VNI (1-${VNI_MAX}, required).`, parse: async (s) => v.integer(s, 'VNI', 1, VNI_MAX)})(),
    remote: Flags.custom<v.Address>({summary: "vxlan: the peer's unicast address (or --group).", parse: async (s) => v.unicast(s, '--remote')})(),
    group: Flags.custom<v.Address>({summary: 'vxlan: a multicast group (or --remote).', parse: async (s) => v.multicast(s, '--group')})(),
    dev: f.ifname({summary: 'vxlan: the underlay device (required; must exist).'}),
    port: f.port({summary: 'vxlan: the UDP port (default 4789).'}),
    parent: f.ifname({summary: 'macvlan: the parent device (required; must exist).'}),
    mode: Flags.string({summary: 'macvlan: the mode (default bridge).', options: [...MACVLAN_MODES]}),
    mtu: f.mtu({summary: 'MTU of the new link (both ends of a veth).'}),
    up: Flags.boolean({summary: "Bring the link (and a veth's peer) up."}),
  }

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(LinkAdd)
    const runner = this.makeRunner(flags)
    const result = await addLink(runner, {
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
      mode: flags.mode as MacvlanMode | undefined,
      mtu: flags.mtu,
      up: flags.up,
    })
    const object = `${flags.type} link ${args.name}`
    const foreign = result.owned ? '' : ' (not created by netkit)'
    if (result.outcome === 'brought-up') return this.outcome(true, {verb: 'bring up', object: `existing ${object}${foreign}`, noop: ''}, runner)
    return this.outcome(result.outcome === 'created', {verb: 'add', object, noop: `${object}${foreign} already exists`}, runner)
  }
}
