import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {switchProxyArp} from '../../lib/iproute2/neigh.js'
import type {ChangeOutcome} from '../../lib/output.js'

export default class ProxyarpDisable extends NetkitCommand {
  static override summary = 'Turn proxy ARP off for an interface (the proxy_arp sysctl).'
  static override examples = ['<%= config.bin %> proxyarp disable br0']
  static override args = {ifname: f.ifnameArg('interface')}
  static override flags = {'dry-run': f.dryRun}

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(ProxyarpDisable)
    const runner = this.makeRunner(flags)
    const changed = await switchProxyArp(runner, args.ifname, false)
    return this.outcome(changed, {verb: 'disable', object: `proxy ARP on ${args.ifname}`, noop: `proxy ARP is already off for ${args.ifname}`}, runner)
  }
}
