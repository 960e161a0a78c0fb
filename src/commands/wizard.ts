import {Flags} from '@oclif/core'

import {NetkitCommand} from '../lib/base-command.js'
import {NetkitError} from '../lib/errors.js'
import * as f from '../lib/flags.js'
import {configDir} from '../lib/files.js'
import {interactive} from '../lib/prompt.js'
import {timeout} from '../lib/tunnel/flags.js'
import type {WizardResult} from '../lib/wizard/run.js'

export default class Wizard extends NetkitCommand {
  static override summary = 'Set up this host for IPsec by answering a few questions; writes and applies strongSwan configs.'
  static override description = `Checks the host first (forwarding, redirects, kernel, tools) and offers the safe fixes; asks for the role (host to host, site to site, or a host joining a mesh), addresses and subnets (defaults read from the host, every answer checked as it is typed), authentication and security profile; shows the exact files it will write (secrets redacted) and the commands it will run; then writes them (mode 0600) and applies them with "netkit tunnel add", runs the doctor, and prints the answers file for the other side.

Without a terminal (or with --json) it never prompts: give --answers FILE (YAML or JSON, the same fields; --save-answers writes one). Ctrl-C at a prompt leaves the host as it was: nothing is written before the review is accepted.`
  static override examples = [
    '<%= config.bin %> wizard',
    '<%= config.bin %> wizard --save-answers site-a.yaml --peer-answers site-b.yaml',
    '<%= config.bin %> wizard --answers site-b.yaml --wait --yes',
  ]
  static override flags = {
    'dry-run': f.dryRun,
    answers: Flags.string({summary: 'Run without prompts, from this answers file (YAML or JSON).'}),
    'save-answers': Flags.string({summary: 'Write the answers (never a secret) to this file.'}),
    'peer-answers': Flags.string({summary: 'Write the answers for the other side to this file.'}),
    yes: Flags.boolean({summary: 'Accept the review without asking.'}),
    wait: Flags.boolean({summary: 'After applying, wait until the SA is up (on the second host).'}),
    replace: Flags.boolean({summary: 'Replace existing tunnels of the same name.'}),
    timeout,
  }

  async run(): Promise<WizardResult> {
    const {flags} = await this.parse(Wizard)
    const runner = this.makeRunner(flags)
    const json = this.jsonEnabled()
    const log = (l: string) => (json ? undefined : process.stderr.write(`${l}\n`))
    // Loaded on use: the wizard's schema and YAML libraries stay out of every other command's start-up.
    const {runWizard} = await import('../lib/wizard/run.js')
    let result: WizardResult
    try {
      result = await runWizard({
        runner,
        configDir: configDir(),
        answersFile: flags.answers,
        saveAnswers: flags['save-answers'],
        peerAnswersFile: flags['peer-answers'],
        interactive: interactive(json) && !flags.answers,
        yes: flags.yes || Boolean(flags.answers),
        wait: Boolean(flags.wait),
        replace: Boolean(flags.replace),
        timeoutMs: flags.timeout * 1000,
        log,
      })
    } catch (error) {
      if (error instanceof Error && error.name === 'ExitPromptError') {
        throw new NetkitError('E_INTERRUPTED', 'the wizard was interrupted', {fix: 'nothing was written; run it again when ready'})
      }
      throw error
    }
    if (!json) {
      if (result.decision === 'cancel') this.log('cancelled: nothing was written')
      else if (result.decision === 'save') this.log(`saved the answers${flags['save-answers'] ? ` to ${flags['save-answers']}` : ''}; nothing else was written`)
      else {
        for (const a of result.applied)
          this.log(
            `tunnel ${a.tunnel}: ${!a.changed ? 'already set up as the answers say; nothing to do' : (a.state ?? 'would be set up')} (${a.datapath} data path)`,
          )
        if (result.doctor) this.log(`doctor: ${result.doctor.fail} failed, ${result.doctor.warn} warnings`)
        if (result.certificates) {
          this.log(
            `certificates: a new CA (${result.certificates.ca}); copy it and each peer's certificate and key (mode 0600) to that peer over a secure channel:`,
          )
          for (const p of result.certificates.peers) this.log(`  ${p.name}: ${p.cert} ${p.key}`)
        }
        for (const p of result.pskFiles)
          this.log(`the generated pre-shared key is in ${p} (mode 0600): copy it to the peer over a secure channel (scp), as the file its answers name`)
        if (result.peerAnswers) {
          if (flags['peer-answers']) this.log(`the other side: netkit wizard --answers ${flags['peer-answers']} --wait`)
          else this.log(`the other side: save this as peer.yaml there and run "netkit wizard --answers peer.yaml --wait"\n${result.peerAnswers}`)
        }
      }
    }
    return result
  }
}
