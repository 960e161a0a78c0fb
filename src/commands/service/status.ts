import {NetkitCommand} from '../../lib/base-command.js'
import {configDir} from '../../lib/files.js'
import {bootHostFile} from '../../lib/service/boot.js'
import {refuseNetns, root} from '../../lib/service/flags.js'
import {serviceStatus} from '../../lib/service/install.js'
import {unitCommand} from '../../lib/service/unit.js'
import {listDefs, listScopes} from '../../lib/tunnel/store.js'
import {existsSync} from 'node:fs'

export default class ServiceStatus extends NetkitCommand {
  static override summary = "Say whether netkit's boot unit is installed and enabled, and what it would bring back."
  static override examples = ['<%= config.bin %> service status', '<%= config.bin %> service status --json']
  static override flags = {root}

  async run(): Promise<unknown> {
    const {flags} = await this.parse(ServiceStatus)
    refuseNetns(flags)
    const runner = this.makeRunner(flags)
    const s = await serviceStatus({runner, root: flags.root, command: await unitCommand()})
    const hostFile = bootHostFile(configDir())
    const tunnels = listScopes(configDir()).flatMap((sc) => listDefs(sc.dir)).length
    const result = {...s, hostFile: {path: hostFile, present: existsSync(hostFile)}, tunnels}
    if (!this.jsonEnabled()) {
      const unit = {
        installed: 'installed',
        outdated: 'installed, but not as this netkit would write it: run "netkit service install" again',
        absent: 'not installed: run "netkit service install"',
        foreign: "not netkit's (left alone)",
      }[s.unit]
      this.log(`unit:      ${s.path}: ${unit}`)
      this.log(`enabled:   ${s.enabled}`)
      this.log(`systemd:   ${s.systemd}`)
      this.log(`host file: ${hostFile}${result.hostFile.present ? ' (applied at boot)' : ': none'}`)
      this.log(`tunnels:   ${tunnels} defined (brought up at boot)`)
    }
    return result
  }
}
