import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {delProxy} from '../../lib/iproute2/neigh.js'
import type {ChangeOutcome} from '../../lib/output.js'
import * as v from '../../lib/validate.js'

export default class ProxyarpDel extends NetkitCommand {
  static override summary = 'Remove a proxy entry that netkit added.'
  static override examples = ['<%= config.bin %> proxyarp del 10.1.0.50 --dev br0']
  static override args = {ip: f.ipArg('the address')}
  static override flags = {
    'dry-run': f.dryRun,
    dev: Flags.custom<string>({summary: 'The interface.', required: true, parse: async (s) => v.ifname(s)})(),
    force: Flags.boolean({summary: 'Remove it even if netkit did not add it.'}),
  }

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(ProxyarpDel)
    const runner = this.makeRunner(flags)
    const changed = await delProxy(runner, args.ip, flags.dev, {force: flags.force})
    return this.outcome(
      changed,
      {verb: 'remove', object: `proxy entry ${args.ip.ip} on ${flags.dev}`, noop: `there is no proxy entry ${args.ip.ip} on ${flags.dev}`},
      runner,
    )
  }
}
