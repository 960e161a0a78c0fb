import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {configDir} from '../../lib/files.js'
import {tunnelNameArg} from '../../lib/tunnel/flags.js'
import {delTunnel} from '../../lib/tunnel/service.js'
import {loadDef, scopeDir} from '../../lib/tunnel/store.js'

export default class TunnelDel extends NetkitCommand {
  static override summary = 'Remove a tunnel: every object it made, its secrets and its definition, and nothing else.'
  static override examples = ['<%= config.bin %> tunnel del site-b', '<%= config.bin %> tunnel del site-b --netns router1 --dry-run']
  static override args = {name: tunnelNameArg('tunnel name')}
  static override flags = {'dry-run': f.dryRun}

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(TunnelDel)
    const runner = this.makeRunner(flags)
    const def = loadDef(scopeDir(configDir(), flags.netns), args.name)
    if (def) await delTunnel(def, {runner, configDir: configDir()})
    return this.outcome(Boolean(def), {verb: 'remove', object: `tunnel ${args.name}`, noop: `there is no tunnel ${args.name}`}, runner)
  }
}
