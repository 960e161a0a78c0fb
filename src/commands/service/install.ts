import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {bin, refuseNetns, root} from '../../lib/service/flags.js'
import {installService, report} from '../../lib/service/install.js'
import {unitCommand} from '../../lib/service/unit.js'

export default class ServiceInstall extends NetkitCommand {
  static override summary = 'Install netkit\'s systemd unit, which runs "netkit service boot" at every boot, and enable it.'
  static override description =
    'Writes /etc/systemd/system/netkit.service (a oneshot after network-online.target and the host\'s strongSwan service), then "systemctl daemon-reload" and "systemctl enable" when systemd runs the host. Where it does not (a container), the file is installed and the command says so. Running it again is a no-op; after moving or upgrading netkit it rewrites the unit.'
  static override examples = [
    '<%= config.bin %> service install',
    '<%= config.bin %> service install --dry-run',
    '<%= config.bin %> service install --root /mnt/image --bin /usr/local/bin/netkit',
  ]
  static override flags = {'dry-run': f.dryRun, root, bin}

  async run(): Promise<unknown> {
    const {flags} = await this.parse(ServiceInstall)
    refuseNetns(flags)
    const runner = this.makeRunner(flags)
    const r = await installService({runner, root: flags.root, command: await unitCommand(flags.bin)})
    report(this.jsonEnabled(), r)
    return r
  }
}
