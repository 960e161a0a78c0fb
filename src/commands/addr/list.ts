import {Args} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {type AddrRow, listAddrs} from '../../lib/iproute2/addr.js'
import * as v from '../../lib/validate.js'

export default class AddrList extends NetkitCommand {
  static override summary = 'List addresses (of one interface, or all).'
  static override description =
    '--json: [{ifname, address, prefixlen, cidr, family, scope, secondary, owned}] (secondary: the kernel deletes it with the primary address of its subnet).'
  static override examples = ['<%= config.bin %> addr list', '<%= config.bin %> addr list eth0 --json']
  static override args = {ifname: Args.string({parse: async (s) => v.ifname(s), description: 'interface'})}
  static override flags = {owned: f.owned}

  async run(): Promise<AddrRow[]> {
    const {args, flags} = await this.parse(AddrList)
    const runner = this.makeRunner(flags)
    const rows = await listAddrs(runner, {ifname: args.ifname, owned: flags.owned})
    await this.printTable(
      rows,
      [
        {header: 'INTERFACE', get: (r) => r.ifname},
        {header: 'ADDRESS', get: (r) => r.cidr},
        {header: 'FAMILY', get: (r) => `ipv${r.family}`},
        {header: 'SCOPE', get: (r) => r.scope},
        {header: 'OWNER', get: (r) => (r.owned ? 'netkit' : '')},
      ],
      'no addresses',
    )
    return rows
  }
}
