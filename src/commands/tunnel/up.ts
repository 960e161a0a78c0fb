import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import {UsageError} from '../../lib/errors.js'
import * as f from '../../lib/flags.js'
import {configDir} from '../../lib/files.js'
import {progressMode} from '../../lib/plan.js'
import {noWait, optionalTunnelNameArg, timeout} from '../../lib/tunnel/flags.js'
import {requireDef, upTunnel} from '../../lib/tunnel/service.js'
import {upAllTunnels, upLine} from '../../lib/tunnel/up-all.js'

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
    const json = this.jsonEnabled()
    const opts = {runner, configDir: configDir(), timeoutMs: flags.timeout * 1000, progress: progressMode(json)}
    if (flags.all) {
      // In a dry run stdout carries only the commands; what each tunnel would do goes to stderr.
      const {tunnels, failed} = await upAllTunnels({
        ...opts,
        netns: flags.netns,
        log: (l) => json || (runner.dryRun ? process.stderr.write(`${l}\n`) : this.log(l)),
        warn: (l) => json || process.stderr.write(`${l}\n`),
      })
      if (failed) process.exitCode = 1
      return {tunnels, dryRun: runner.dryRun, commands: [...runner.journal]}
    }
    const def = requireDef(configDir(), args.name!, flags.netns)
    const r = await upTunnel(def, {...opts, wait: !flags['no-wait']})
    if (!json) {
      if (runner.dryRun) process.stderr.write(`${upLine(r, true)}\n`)
      else this.log(upLine(r, false))
    }
    return {tunnels: [{name: def.name, netns: def.netns ?? null, changed: r.changed, summary: r.summary}], dryRun: runner.dryRun, commands: [...runner.journal]}
  }
}
