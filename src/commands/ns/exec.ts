import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {execInNetns} from '../../lib/iproute2/exec.js'

export default class NsExec extends NetkitCommand {
  static override summary = 'Run a command inside a network namespace.'
  static override description = 'The command gets this terminal; netkit exits with its exit status.'
  static override examples = ['<%= config.bin %> ns exec hostA -- ip -br addr', '<%= config.bin %> ns exec hostA -- ping -c1 192.0.2.2']
  static override args = {name: f.netnsArg('namespace name')}
  static override flags = {'dry-run': f.dryRun}
  static override strict = false
  static override enableJsonFlag = false

  async run(): Promise<void> {
    const {args, flags, argv} = await this.parse(NsExec)
    const runner = this.makeRunner(flags, {global: true})
    const rest = (argv as string[]).slice(1)
    const code = await execInNetns(runner, args.name, rest)
    process.exitCode = code
  }
}
