import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {listLinks} from '../../lib/iproute2/link.js'
import {listProxies, proxyArpInterfaces, type ProxyRow} from '../../lib/iproute2/neigh.js'

export default class ProxyarpList extends NetkitCommand {
  static override summary = 'List proxy entries, and the interfaces with proxy ARP on.'
  static override description = '--json: {interfaces: [ifname...], entries: [{address, dev, owned}]}.'
  static override examples = ['<%= config.bin %> proxyarp list', '<%= config.bin %> proxyarp list --json']
  static override flags = {owned: f.owned}

  async run(): Promise<{interfaces: string[]; entries: ProxyRow[]}> {
    const {flags} = await this.parse(ProxyarpList)
    const runner = this.makeRunner(flags)
    const entries = await listProxies(runner, {owned: flags.owned})
    const interfaces = await proxyArpInterfaces(
      runner,
      (await listLinks(runner)).map((l) => l.name).filter((n) => n !== 'lo' && !n.includes('.')),
    )
    if (!this.jsonEnabled()) this.log(`proxy ARP on: ${interfaces.length ? interfaces.join(' ') : 'no interface'}`)
    await this.printTable(
      entries,
      [
        {header: 'ADDRESS', get: (r) => r.address},
        {header: 'DEV', get: (r) => r.dev},
        {header: 'OWNER', get: (r) => (r.owned ? 'netkit' : '')},
      ],
      'no proxy entries',
    )
    return {interfaces, entries}
  }
}
