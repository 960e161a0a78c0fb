import {Flags} from '@oclif/core'

import {NetkitCommand} from '../lib/base-command.js'

export default class Diff extends NetkitCommand {
  static override summary = 'Show what "netkit apply -f FILE" would add, change and remove, in order.'
  static override description = '--json: {changes: [{action, kind, object, netns?, why?}], unchanged}. Exit status 0 either way.'
  static override examples = ['<%= config.bin %> diff -f host.yaml', '<%= config.bin %> diff -f host.yaml --netns hostA --json']
  static override flags = {file: Flags.string({char: 'f', summary: 'The host file (YAML or JSON).', required: true})}

  async run(): Promise<unknown> {
    const {flags} = await this.parse(Diff)
    const {describePlan, planHost, readHostText} = await import('../lib/apply/run.js')
    const file = {...readHostText(flags.file), version: this.config.version}
    const runner = this.makeRunner(flags)
    const plan = await planHost(runner, file)
    const changes = describePlan(plan)
    if (!this.jsonEnabled()) {
      if (changes.length === 0) this.log(`the host matches ${flags.file} (${plan.unchanged} objects)`)
      for (const c of changes) this.log(`${c.action === 'add' ? '+' : c.action === 'remove' ? '-' : '~'} ${c.object}${c.netns ? ` in namespace ${c.netns}` : ''}${c.why ? ` (${c.why})` : ''}`)
    }
    return {changes, unchanged: plan.unchanged}
  }
}
