import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {configDir} from '../../lib/files.js'
import {labDown} from '../../lib/lab/lab.js'

export default class LabDown extends NetkitCommand {
  static override summary = 'Remove the demo built by "lab up": its tunnels, namespaces and processes.'
  static override examples = ['<%= config.bin %> lab down']
  static override flags = {'dry-run': f.dryRun}

  async run(): Promise<unknown> {
    const {flags} = await this.parse(LabDown)
    const runner = this.makeRunner(flags, {global: true})
    const removed = await labDown(runner, configDir())
    const out = this.outcome(removed.length > 0, {verb: 'remove', object: `the lab (${removed.length} namespaces)`, noop: 'there is no lab'}, runner)
    return {...out, removed}
  }
}
