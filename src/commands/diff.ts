import {Flags} from '@oclif/core'

import {NetkitCommand} from '../lib/base-command.js'
import {inNamespace} from '../lib/wording.js'

const FOREIGN_SHOWN = 20

export default class Diff extends NetkitCommand {
  static override summary = 'Show what "netkit apply -f FILE" would add, change and remove, in order.'
  static override description =
    "Also lists what is here and neither netkit's nor in the file (links, addresses, routes, rules, proxy entries; not what the kernel makes by itself, like connected routes): apply leaves those alone. --json: {changed (whether apply would change anything), changes: [{action, kind, object, netns?, why?}], unchanged, foreign: [{kind, object, netns?}]}. Exit status 0 either way."
  static override examples = ['<%= config.bin %> diff -f host.yaml', '<%= config.bin %> diff -f host.yaml --netns hostA --json']
  static override flags = {file: Flags.string({char: 'f', summary: 'The host file (YAML or JSON), or - for standard input.', required: true})}

  async run(): Promise<unknown> {
    const {flags} = await this.parse(Diff)
    const {hostFileName, readHostText} = await import('../lib/apply/input.js')
    const {describePlan, planHost} = await import('../lib/apply/plan.js')
    const file = {...readHostText(flags.file), version: this.config.version}
    const runner = this.makeRunner(flags)
    const plan = await planHost(runner, file)
    const changes = describePlan(plan)
    if (!this.jsonEnabled()) {
      if (changes.length === 0) this.log(`the host matches ${hostFileName(flags.file)} (${plan.unchanged} objects)`)
      for (const c of changes)
        this.log(`${c.action === 'add' ? '+' : c.action === 'remove' ? '-' : '~'} ${c.object}${inNamespace(c.netns)}${c.why ? ` (${c.why})` : ''}`)
      const shown = plan.foreign.slice(0, FOREIGN_SHOWN)
      if (shown.length) this.log(`left alone, not netkit's and not in the file: ${plan.foreign.length} object${plan.foreign.length === 1 ? '' : 's'}`)
      for (const f of shown) this.log(`  ${f.object}${inNamespace(f.netns)}`)
      if (plan.foreign.length > shown.length) this.log(`  ... and ${plan.foreign.length - shown.length} more (--json lists them all)`)
    }
    return {changed: changes.length > 0, changes, unchanged: plan.unchanged, foreign: plan.foreign}
  }
}
