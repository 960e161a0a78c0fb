import {Args, Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {routeFlags} from '../../lib/iproute2/route-cli-flags.js'
import {routeSpec} from '../../lib/iproute2/route-flags.js'
import {delRoute} from '../../lib/iproute2/route.js'
import type {ChangeOutcome} from '../../lib/output.js'

export default class RouteDel extends NetkitCommand {
  static override summary = 'Delete a route that netkit made.'
  static override examples = ['<%= config.bin %> route del 10.2.0.0/24', '<%= config.bin %> route del default --table vpn']
  static override args = {dest: Args.string({description: 'destination network (or "default")', required: true})}
  static override flags = {'dry-run': f.dryRun, ...routeFlags, force: Flags.boolean({summary: 'Delete it even if netkit did not make it.'})}

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(RouteDel)
    const spec = routeSpec(args.dest, flags)
    const runner = this.makeRunner(flags)
    const changed = await delRoute(runner, spec, {force: flags.force})
    const what = `route ${spec.dst}${spec.table === 254 ? '' : ` (table ${flags.table})`}`
    return this.outcome(changed, {verb: 'delete', object: what, noop: `${what} is already absent`}, runner)
  }
}
