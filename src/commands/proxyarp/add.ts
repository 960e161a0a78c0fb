import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {addProxy} from '../../lib/iproute2/neigh.js'
import type {ChangeOutcome} from '../../lib/output.js'
import * as v from '../../lib/validate.js'

export default class ProxyarpAdd extends NetkitCommand {
  static override summary = 'Answer ARP (or NDP) on an interface for an address that lives elsewhere.'
  static override description =
    'Adds an "ip neigh ... proxy" entry with netkit\'s protocol: the role of Rancher\'s ARP responder for addresses behind a tunnel.'
  static override examples = ['<%= config.bin %> proxyarp add 10.1.0.50 --dev br0']
  static override args = {ip: f.ipArg('the address to answer for')}
  static override flags = {
    'dry-run': f.dryRun,
    dev: Flags.custom<string>({summary: 'The interface that answers.', required: true, parse: async (s) => v.ifname(s)})(),
  }

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(ProxyarpAdd)
    const runner = this.makeRunner(flags)
    const changed = await addProxy(runner, args.ip, flags.dev)
    return this.outcome(
      changed,
      {verb: 'add', object: `proxy entry ${args.ip.ip} on ${flags.dev}`, noop: `${flags.dev} already answers for ${args.ip.ip}`},
      runner,
    )
  }
}
