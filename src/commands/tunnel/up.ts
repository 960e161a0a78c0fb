import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import {UsageError} from '../../lib/errors.js'
import * as f from '../../lib/flags.js'
import {configDir} from '../../lib/files.js'
import {progressMode} from '../../lib/plan.js'
import {noWait, optionalTunnelNameArg, timeout} from '../../lib/tunnel/flags.js'
import {requireDef, upTunnel} from '../../lib/tunnel/service.js'
import {listDefs, listScopes} from '../../lib/tunnel/store.js'

export default class TunnelUp extends NetkitCommand {
  static override summary = 'Bring a defined tunnel up (or all of them, for boot: --all does not wait for peers).'
  static override examples = ['<%= config.bin %> tunnel up site-b', '<%= config.bin %> tunnel up --all']
  static override args = {name: optionalTunnelNameArg('tunnel name')}
  static override flags = {
    'dry-run': f.dryRun,
    all: Flags.boolean({summary: 'Every defined tunnel: in every namespace, or with --netns only in that one.'}),
    timeout,
    'no-wait': noWait,
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(TunnelUp)
    if (!args.name && !flags.all) throw new UsageError('name a tunnel or pass --all', 'see "netkit tunnel list"')
    if (args.name && flags.all) throw new UsageError('give a tunnel name or --all, not both', 'see "netkit tunnel up --help"')
    const runner = this.makeRunner(flags)
    const defs = flags.all
      ? listScopes(configDir())
          .filter((s) => flags.netns === undefined || s.netns === flags.netns)
          .flatMap((s) => listDefs(s.dir))
      : [requireDef(configDir(), args.name!, flags.netns)]
    const results = []
    let failed = 0
    for (const def of defs) {
      try {
        const r = await upTunnel(def, {runner, configDir: configDir(), timeoutMs: flags.timeout * 1000, progress: progressMode(this.jsonEnabled()), wait: !flags.all && !flags['no-wait']})
        results.push({name: def.name, netns: def.netns ?? null, changed: r.changed, summary: r.summary})
        if (!this.jsonEnabled()) this.log(r.changed ? r.summary : `${r.summary}; nothing to do`)
      } catch (error) {
        if (!flags.all) throw error
        failed++
        const message = error instanceof Error ? error.message : String(error)
        results.push({name: def.name, netns: def.netns ?? null, changed: false, error: message})
        if (!this.jsonEnabled()) process.stderr.write(`error: tunnel ${def.name}: ${message}\n`)
      }
    }
    if (failed) process.exitCode = 1
    return {tunnels: results, dryRun: runner.dryRun, commands: [...runner.journal]}
  }
}
