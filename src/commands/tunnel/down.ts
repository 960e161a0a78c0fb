import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {configDir} from '../../lib/files.js'
import {tunnelNameArg} from '../../lib/tunnel/flags.js'
import {downTunnel, requireDef} from '../../lib/tunnel/service.js'

export default class TunnelDown extends NetkitCommand {
  static override summary = 'Take a tunnel down, keeping its definition (for "tunnel up").'
  static override examples = ['<%= config.bin %> tunnel down site-b']
  static override args = {name: tunnelNameArg('tunnel name')}
  static override flags = {'dry-run': f.dryRun}

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(TunnelDown)
    const runner = this.makeRunner(flags)
    const def = requireDef(configDir(), args.name, flags.netns)
    const changed = await downTunnel(def, {runner, configDir: configDir()})
    return this.outcome(changed, {verb: 'take down', object: `tunnel ${args.name}`, noop: `tunnel ${args.name} is already down`}, runner)
  }
}
