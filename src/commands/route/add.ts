import {Args, Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {routeFlags} from '../../lib/iproute2/route-cli-flags.js'
import {routeSpec} from '../../lib/iproute2/route-flags.js'
import {addRoute} from '../../lib/iproute2/route.js'
import type {ChangeOutcome} from '../../lib/output.js'

export default class RouteAdd extends NetkitCommand {
  static override summary = "Add a route (marked with netkit's protocol, 178)."
  static override examples = [
    '<%= config.bin %> route add 10.2.0.0/24 --via 10.1.0.254',
    '<%= config.bin %> route add default --dev wg0 --table vpn',
    '<%= config.bin %> route add 10.2.0.0/24 --dev veth0 --table 100 --netns hostA',
  ]
  static override args = {dest: Args.string({description: 'destination network (or "default")', required: true})}
  static override flags = {
    'dry-run': f.dryRun,
    ...routeFlags,
    onlink: Flags.boolean({summary: 'The next hop is on the link even if no subnet says so.'}),
    replace: Flags.boolean({summary: "Replace a different route to the same destination (one netkit made: another tool's is refused)."}),
  }

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(RouteAdd)
    const spec = routeSpec(args.dest, flags)
    const runner = this.makeRunner(flags)
    const changed = await addRoute(runner, spec, {replace: flags.replace})
    const what = `route ${spec.dst}${spec.table === 254 ? '' : ` (table ${flags.table})`}`
    return this.outcome(changed, {verb: 'add', object: what, noop: `${what} already exists`}, runner)
  }
}
