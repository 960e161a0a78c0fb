import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {type LinkRow, listLinks} from '../../lib/iproute2/link.js'

export default class LinkList extends NetkitCommand {
  static override summary = 'List links.'
  static override description = '--json: [{name, type, state, mtu, mac, master, owned, peer, vni}] (peer: a veth\'s other end or the lower device; null when none).'
  static override examples = ['<%= config.bin %> link list', '<%= config.bin %> link list --owned --type veth --json']
  static override flags = {owned: f.owned, type: Flags.string({summary: 'Only links of this type (veth, bridge, vxlan, macvlan, tun, ...).'})}

  async run(): Promise<LinkRow[]> {
    const {flags} = await this.parse(LinkList)
    const runner = this.makeRunner(flags)
    const rows = await listLinks(runner, {owned: flags.owned, kind: flags.type})
    await this.printTable(rows, [
      {header: 'NAME', get: (r) => r.name},
      {header: 'TYPE', get: (r) => r.type},
      {header: 'STATE', get: (r) => r.state},
      {header: 'MTU', get: (r) => r.mtu},
      {header: 'MAC', get: (r) => r.mac},
      {header: 'MASTER', get: (r) => r.master},
      {header: 'PEER', get: (r) => r.peer},
      {header: 'OWNER', get: (r) => (r.owned ? 'netkit' : '')},
    ], 'no links')
    return rows
  }
}
