import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {refuseNetns} from '../../lib/service/flags.js'
import {configDir} from '../../lib/files.js'
import {progressMode} from '../../lib/plan.js'
import {bootNetkit} from '../../lib/service/boot.js'

export default class ServiceBoot extends NetkitCommand {
  static override summary = 'What netkit does at boot: apply /etc/netkit/host.yaml if it is there, then bring every defined tunnel up.'
  static override description =
    'Run by netkit\'s systemd unit ("netkit service install"). The host file goes first (the namespaces it makes are where some tunnels live); then "tunnel up --all": every tunnel in every namespace, without waiting for the peers. One failure does not stop the rest; the exit status is 1 if anything failed.'
  static override examples = ['<%= config.bin %> service boot', '<%= config.bin %> service boot --dry-run']
  static override flags = {'dry-run': f.dryRun}

  async run(): Promise<unknown> {
    const {flags} = await this.parse(ServiceBoot)
    refuseNetns(flags)
    const runner = this.makeRunner(flags)
    const json = this.jsonEnabled()
    const r = await bootNetkit({
      runner,
      configDir: configDir(),
      version: this.config.version,
      progress: progressMode(json),
      // In a dry run stdout carries only the commands; what each part would do goes to stderr.
      log: (l) => json || (runner.dryRun ? process.stderr.write(`${l}\n`) : this.log(l)),
      warn: (l) => json || process.stderr.write(`${l}\n`),
    })
    if (r.failed) process.exitCode = 1
    return {...r, dryRun: runner.dryRun, commands: [...runner.journal]}
  }
}
