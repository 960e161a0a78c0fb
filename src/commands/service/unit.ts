import {NetkitCommand} from '../../lib/base-command.js'
import {bin} from '../../lib/service/flags.js'
import {renderUnit, unitCommand} from '../../lib/service/unit.js'

export default class ServiceUnit extends NetkitCommand {
  static override summary = 'Print the systemd unit "netkit service install" writes (for packages and configuration management).'
  static override examples = ['<%= config.bin %> service unit', '<%= config.bin %> service unit --bin /usr/bin/netkit > netkit.service']
  static override flags = {bin}
  static override enableJsonFlag = false

  async run(): Promise<void> {
    const {flags} = await this.parse(ServiceUnit)
    process.stdout.write(await renderUnit(await unitCommand(flags.bin)))
  }
}
