import {Flags} from '@oclif/core'

import {NetkitCommand} from '../lib/base-command.js'
import {UsageError} from '../lib/errors.js'
import {checkHost, doctorResult, renderReport} from '../lib/doctor/report.js'
import {remedies} from '../lib/doctor/run.js'
import {confirm, interactive} from '../lib/prompt.js'

export default class Doctor extends NetkitCommand {
  static override summary = 'Check forwarding, redirects, rp_filter, kernel support, tools and tunnel state, and say how to fix what is wrong.'
  static override description = 'Exit status: 0 when nothing failed, 1 when a check failed (with --strict, a warning too), 2 for bad usage.'
  static override examples = [
    '<%= config.bin %> doctor',
    '<%= config.bin %> doctor --netns router1 --tunnel site-b',
    '<%= config.bin %> doctor --fix --yes',
    '<%= config.bin %> doctor --json',
  ]
  static override flags = {
    tunnel: Flags.string({summary: 'Only the checks about this tunnel (and the host).'}),
    check: Flags.string({summary: 'Run one check, by id (e.g. host.rp_filter).'}),
    strict: Flags.boolean({summary: 'Warnings fail too.'}),
    probe: Flags.boolean({
      summary: 'Prove the data path: ping through each tunnel and capture on the underlay (fails if anything crosses in clear, or nothing at all).',
    }),
    fix: Flags.boolean({summary: 'Apply the safe fixes (sysctls, file modes, netkit leftovers), then check again.'}),
    yes: Flags.boolean({summary: 'With --fix: do not ask.'}),
    'dry-run': Flags.boolean({summary: 'With --fix: print the fix commands and change nothing.'}),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(Doctor)
    const runner = this.makeRunner(flags)
    // The tools' versions are kept between runs (not by a dry run, nor by the build's warm-up).
    const check = () => checkHost(runner, {keepVersions: this.hostTools, only: {tunnel: flags.tunnel, check: flags.check, probe: flags.probe}})
    let report = await check()
    const fixed: string[] = []
    if (flags.fix) {
      const todo = remedies(report)
      if (todo.length > 0) {
        if (!flags.yes && !flags['dry-run']) {
          if (!interactive(this.jsonEnabled())) throw new UsageError('--fix needs confirmation', 'pass --yes to apply the fixes without asking')
          process.stderr.write(`netkit will:\n${todo.map((f) => `  ${f.remedy!.describe}`).join('\n')}\n`)
          if (!(await confirm('Apply these fixes?'))) throw new UsageError('nothing was changed', 'run again with --fix when ready')
        }
        for (const f of todo) {
          await f.remedy!.apply(runner)
          fixed.push(f.remedy!.describe)
        }
        if (!runner.dryRun) report = await check()
      }
    }
    const result = doctorResult(report, {strict: flags.strict, fixed})
    if (!this.jsonEnabled()) this.log(renderReport(report, fixed, runner.dryRun))
    if (!result.passed) process.exitCode = 1
    return result
  }
}
