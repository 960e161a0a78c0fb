import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {linkType, type LinkRow, listLinks} from '../../lib/iproute2/link.js'

export default class LinkList extends NetkitCommand {
  static override summary = 'List links.'
  static override description = `Table: NAME, TYPE, STATE, MTU, MAC, MASTER, OWNER.
--json: an array of objects, every key always present (null when it does not apply):
  {name, type, state, up, mtu, mac, master, owned, peer, peerNetns, lower, vni, remote, group, port, mode}
  type: veth, bridge, vxlan, macvlan, ... ("loopback" or "device" when the kernel gives no kind); state: the operational state (UP, DOWN, ...); up: administratively up;
  owned: carries the "netkit" alias; peer: a veth's other end when in the same namespace; peerNetns: the namespace of a veth's other end when elsewhere;
  lower: a vxlan's underlay device or a macvlan's parent; vni, remote, group, port: vxlan; mode: macvlan.`
  static override examples = ['<%= config.bin %> link list', '<%= config.bin %> link list --owned --type veth --json']
  static override flags = {
    owned: f.owned,
    type: Flags.string({summary: 'Only links of this type (veth, bridge, vxlan, macvlan, tun, ...).', parse: async (s) => linkType(s)}),
  }

  async run(): Promise<LinkRow[]> {
    const {flags} = await this.parse(LinkList)
    const runner = this.makeRunner(flags)
    const rows = await listLinks(runner, {owned: flags.owned, kind: flags.type})
    await this.printTable(
      rows,
      [
        {header: 'NAME', get: (r) => r.name},
        {header: 'TYPE', get: (r) => r.type},
        {header: 'STATE', get: (r) => r.state},
        {header: 'MTU', get: (r) => r.mtu},
        {header: 'MAC', get: (r) => r.mac},
        {header: 'MASTER', get: (r) => r.master},
        {header: 'OWNER', get: (r) => (r.owned ? 'netkit' : '')},
      ],
      flags.owned || flags.type ? 'no links match' : 'no links',
    )
    return rows
  }
}
