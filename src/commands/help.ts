import {Args, Command, Help} from '@oclif/core'

export default class HelpCommand extends Command {
  static override summary = 'Show help for netkit or one of its commands.'
  static override examples = ['<%= config.bin %> help', '<%= config.bin %> help tunnel add']
  static override args = {command: Args.string({description: 'command (words separated by spaces)', required: false})}
  static override strict = false

  async run(): Promise<void> {
    const {argv} = await this.parse(HelpCommand)
    await new Help(this.config, {all: false}).showHelp(argv as string[])
  }
}
