import {Args} from '@oclif/core'

import {NetkitCommand} from '../lib/base-command.js'
import {bashCompletion, type CommandSpec, zshCompletion} from '../lib/completion.js'

export default class Autocomplete extends NetkitCommand {
  static override summary = 'Print a shell completion script for bash or zsh.'
  static override description =
    'Install it with, for bash: netkit autocomplete bash > /etc/bash_completion.d/netkit; for zsh: netkit autocomplete zsh > "${fpath[1]}/_netkit".'
  static override examples = ['<%= config.bin %> autocomplete bash > /etc/bash_completion.d/netkit', '<%= config.bin %> autocomplete zsh']
  static override args = {shell: Args.string({description: 'bash or zsh', options: ['bash', 'zsh'], default: 'bash'})}
  static override enableJsonFlag = false

  async run(): Promise<void> {
    const {args} = await this.parse(Autocomplete)
    const commands: CommandSpec[] = this.config.commands
      .filter((c) => !c.hidden)
      .map((c) => ({
        id: c.id,
        summary: c.summary,
        flags: Object.values(c.flags ?? {}).map((f) => ({
          name: f.name,
          char: f.char,
          type: f.type,
          options: 'options' in f ? (f.options as string[] | undefined) : undefined,
        })),
      }))
    process.stdout.write(args.shell === 'zsh' ? zshCompletion(this.config.bin, commands) : bashCompletion(this.config.bin, commands))
  }
}
