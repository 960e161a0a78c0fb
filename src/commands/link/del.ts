import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {delLink} from '../../lib/iproute2/link.js'
import type {ChangeOutcome} from '../../lib/output.js'

export default class LinkDel extends NetkitCommand {
  static override summary = 'Delete a link that netkit created.'
  static override description =
    'A link without the "netkit" alias is refused (exit 2) unless --force. An absent link is a no-op. Deleting one end of a veth pair deletes the other; deleting a bridge detaches its ports.'
  static override examples = ['<%= config.bin %> link del veth0', '<%= config.bin %> link del eth9 --force']
  static override args = {name: f.ifnameArg('link name')}
  static override flags = {'dry-run': f.dryRun, force: Flags.boolean({summary: 'Delete it even if netkit did not create it.'})}

  async run(): Promise<ChangeOutcome> {
    const {args, flags} = await this.parse(LinkDel)
    const runner = this.makeRunner(flags)
    const changed = await delLink(runner, args.name, {force: flags.force})
    return this.outcome(changed, {verb: 'delete', object: `link ${args.name}`, noop: `link ${args.name} is already absent`}, runner)
  }
}
