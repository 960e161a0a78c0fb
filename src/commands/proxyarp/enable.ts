import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {switchProxyArp} from '../../lib/iproute2/neigh.js'
import type {ChangeOutcome} from '../../lib/output.js'

export default class ProxyarpEnable extends NetkitCommand {
  static override summary = 'Turn proxy ARP on for an interface (the proxy_arp sysctl).'
  static override examples = ['<%= config.bin %> proxyarp enable br0']
  static override args = {ifname: f.ifnameArg('interface')}
  static override flags = {'dry-run': f.dryRun}

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(ProxyarpEnable)
    const runner = this.makeRunner(flags)
    const changed = await switchProxyArp(runner, args.ifname, true)
    return this.outcome(changed, {verb: 'enable', object: `proxy ARP on ${args.ifname}`, noop: `proxy ARP is already on for ${args.ifname}`}, runner)
  }
}
