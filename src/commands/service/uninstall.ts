import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {refuseNetns, root} from '../../lib/service/flags.js'
import {report, uninstallService} from '../../lib/service/install.js'

export default class ServiceUninstall extends NetkitCommand {
  static override summary = "Disable and remove netkit's systemd unit (tunnels stay as they are)."
  static override examples = ['<%= config.bin %> service uninstall', '<%= config.bin %> service uninstall --dry-run']
  static override flags = {'dry-run': f.dryRun, root}

  async run(): Promise<unknown> {
    const {flags} = await this.parse(ServiceUninstall)
    refuseNetns(flags)
    const runner = this.makeRunner(flags)
    const r = await uninstallService({runner, root: flags.root})
    report(this.jsonEnabled(), r)
    return r
  }
}
