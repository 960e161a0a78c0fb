import {resolve} from 'node:path'

import {Flags} from '@oclif/core'

import {NetkitCommand} from '../lib/base-command.js'
import type {Answered, OutcomeKind, WaiterDoctor} from '../lib/apply/pending.js'
import {type HostInput, hostFileName, readHostText} from '../lib/apply/input.js'
import {NetkitError, UsageError} from '../lib/errors.js'
import * as f from '../lib/flags.js'
import {confirmWithin} from '../lib/prompt.js'
import * as v from '../lib/validate.js'

export default class Apply extends NetkitCommand {
  static override summary =
    'Make the host match a file: namespaces, tables, links, addresses, sysctls, routes, rules, proxy ARP, xfrm policies and SAs, tunnels.'
  static override description = `Compares the file with the live state and changes only the difference (each namespace's iproute2 changes in one "ip -batch -", namespaces and tunnels through netkit's own services, with progress), then reads the state back and verifies it. Any failure, or a failed verification, undoes everything (the host is as before). Objects a previous apply made and the file no longer lists are removed; objects netkit did not make are never touched (one in the way is an error). --dry-run prints the plan's commands. --try SECONDS keeps the change only if you confirm in time (type "y" and Enter; not confirmed, it is undone and apply exits 1), so a change made over SSH cannot lock you out; until the change is kept, Ctrl-C, a kill or a hangup (the SSH session closing) undoes it. One apply runs at a time on a host: another is refused while one plans, changes or waits for --try (diff and --dry-run take no lock).

For automation (commit-confirm, like "netplan try" and Junos "commit confirmed"): --try SECONDS --detach applies and verifies, then leaves the change to a waiter of its own (its own session: it survives the SSH session closing; it holds the host lock) and exits 0 at once, saying the change is pending. "netkit apply --confirm" (any later session) keeps it ("--confirm --doctor" then checks the host as "netkit doctor" does, its report added: exit 1 when a check fails, the change kept; the waiter runs those checks, with nothing pending this process does); "netkit apply --rollback" undoes it now; no confirmation within SECONDS, and it is undone. --confirm with nothing pending says so and exits 0 (a re-run is harmless), but exits 1 when the last detached change was undone for want of a confirmation. A file that needs no change leaves no waiter. --json of each: {pending: bool, ...}. The waiter's log: /run/netkit/apply-detached.log. See docs/apply-confirm.md.

File (YAML or JSON): version: 1; tables: {NAME: ID}; links: [{name, type: veth|bridge|vxlan|macvlan, peer, peerNetns, vni, remote, group, dev, port, parent, mode, mtu, master, up}]; addresses: [{dev, address}]; sysctls: {KEY: VALUE}; routes: [{to, via, dev, table, metric, src}]; rules: [{from, to, fwmark, iif, oif, table, priority, family: 4|6 (for a rule without from/to)}]; proxyArp: [{address, dev}]; xfrmPolicies: [{src, dst, dir, tmplSrc, tmplDst, mode, reqid, priority, mark, action}]; xfrmStates: [{src, dst, spi, mode, reqid, mark, aead: {alg, keyFile, icv} | enc: {alg, keyFile} with auth: {alg, keyFile}}] (keys only from files, hex, mode 0600; on stdin to ip, never shown; a kernel without ESP refuses before anything changes); tunnels: {NAME: {type: ipsec|wireguard|vxlan, remote, local, localSubnets, remoteSubnets, ... the options of "netkit tunnel add" in camelCase; ipsec needs pskFile or cert/key/ca}}; namespaces: {NAME: {links, addresses, routes, rules, sysctls, proxyArp, xfrmPolicies, xfrmStates, tunnels}} (namespaces apply creates, and removes with their contents when they leave the file). A tunnel without "local" takes the file's own address towards its peer; one that is down (daemon or device gone) is brought up again. Tunnels are set up without waiting for the peer: check them with "netkit tunnel list" or "netkit doctor".

Re-applying an unchanged file to a host exactly as the last verified apply left it is known from digests of the file and of the state read (nothing parsed or compared); any difference and everything is compared. NETKIT_TIMING=1 prints the time of each phase.`
  static override examples = [
    '<%= config.bin %> apply -f host.yaml',
    '<%= config.bin %> apply -f host.yaml --netns hostA --dry-run',
    '<%= config.bin %> apply -f host.yaml --try 60',
    '<%= config.bin %> apply -f host.yaml --try 120 --detach',
    '<%= config.bin %> apply --confirm',
    '<%= config.bin %> apply --confirm --doctor --json',
    '<%= config.bin %> apply --rollback',
  ]
  static override flags = {
    file: Flags.string({char: 'f', summary: 'The host file (YAML or JSON), or - for standard input.'}),
    'dry-run': f.dryRun,
    try: Flags.custom<number>({
      summary: 'Roll back by itself unless confirmed within this many seconds.',
      parse: async (s) => v.integer(s, '--try', 1, 3600),
    })(),
    detach: Flags.boolean({
      summary: 'With --try: leave the change to a waiter of its own (it survives the SSH session) and exit at once; confirm with --confirm.',
      dependsOn: ['try'],
    }),
    confirm: Flags.boolean({summary: 'Keep the change a "--try --detach" left pending.', exclusive: ['rollback', 'file', 'try', 'detach', 'dry-run']}),
    rollback: Flags.boolean({summary: 'Undo the change a "--try --detach" left pending, now.', exclusive: ['confirm', 'file', 'try', 'detach', 'dry-run']}),
    doctor: Flags.boolean({
      summary: 'With --confirm: then check the host as "netkit doctor" does, its report added (exit 1 when a check fails; the change stays kept).',
      dependsOn: ['confirm'],
    }),
    waiter: Flags.boolean({hidden: true, summary: 'Internal: the detached waiter of --try --detach.'}),
  }

  private waiting = false
  /** The warnings given (the waiter tells them to the starter with its report). */
  private said: string[] = []
  private waiterFile = ''
  private waiterChanges = 0

  /** The waiter's errors (a busy lock, a bad file, a failed apply) go to the process that started it, which reports them. */
  override async catch(err: Error & {oclif?: {exit?: number}; code?: string}): Promise<void> {
    if (this.argv.includes('--waiter')) {
      const {asNetkitError} = await import('../lib/base-command.js')
      const {finish, relayWarnings, tellStarter} = await import('../lib/apply/pending.js')
      relayWarnings(this.said)
      const e = asNetkitError(err)
      if (this.waiting) finish({file: this.waiterFile, outcome: 'failed', changes: this.waiterChanges, detail: e.line})
      tellStarter({error: e.toJSON()})
    }
    return super.catch(err)
  }

  protected override warning(message: string): void {
    this.said.push(message)
    super.warning(message)
  }

  async run(): Promise<unknown> {
    const {phase} = await import('../lib/timing.js')
    phase('command')
    const {flags} = await this.parse(Apply)
    if (flags.confirm || flags.rollback) {
      const {result, doctor} = await this.answer(flags.confirm ? 'confirm' : 'rollback', flags.doctor)
      return flags.doctor ? this.checkAfter(result, doctor, flags) : result
    }
    if (flags.file === undefined)
      throw new UsageError('missing the host file', 'give it with -f FILE (or run "netkit apply --confirm" / "--rollback" for a pending change)')
    const {applyHost} = await import('../lib/apply/run.js')
    if (flags.try !== undefined && flags['dry-run']) throw new UsageError('--try and --dry-run together', 'choose one')
    if (flags.try !== undefined && flags.file === '-')
      throw new UsageError(
        '--try with the file on standard input',
        flags.detach ? 'the detached waiter reads the file itself: give it by its path' : '--try reads your confirmation there: give the file by its path',
      )
    const file = {...readHostText(flags.file), version: this.config.version}
    if (flags.detach && !flags.waiter) return this.detach(flags.file, flags.try!, file, flags)
    if (flags.waiter) return this.wait(file, flags)
    const runner = this.makeRunner(flags)
    const json = this.jsonEnabled()
    const {progressMode} = await import('../lib/plan.js')
    const result = await applyHost(runner, file, {
      progress: progressMode(json),
      trySeconds: flags.try,
      confirm: (seconds, interrupted) => confirmWithin(seconds, json, interrupted),
      log: (l) => (json ? undefined : process.stderr.write(`${l}\n`)),
    })
    // Not confirmed in time: the change did not stick, and a script (apply --try && ...) must know.
    if (!result.kept) process.exitCode = 1
    // The host has moved on: what became of an earlier detached change is no longer news for --confirm.
    else if (result.changed && !runner.dryRun) (await import('../lib/apply/pending.js')).clearOutcome()
    if (!json) {
      if (!result.changed)
        this.log(
          `the host already matches ${hostFileName(flags.file)} (${result.unchanged} objects${result.memo ? ', exactly as the last verified apply left them' : ''}); nothing to do`,
        )
      else if (runner.dryRun) process.stderr.write(`dry run: ${countChanges(result.changes.length)}; nothing was changed\n`)
      else if (!result.kept) this.log(`not confirmed in time: rolled back ${countChanges(result.changes.length)}; the host is as before`)
      else this.log(`applied ${countChanges(result.changes.length)} (${summary(result.changes)}), verified`)
      const n = result.foreign.length
      if (n && !runner.dryRun)
        this.log(
          `left alone: ${n} object${n === 1 ? '' : 's'} here that ${n === 1 ? 'is' : 'are'} neither netkit's nor in the file ("netkit diff" of the same file lists them)`,
        )
    }
    return {...result, dryRun: runner.dryRun, commands: [...runner.journal]}
  }

  /**
   * --try --detach: starts the waiter (this command again, in a session of its own) and reports what it said.
   * When the file is the one last applied here (pending.ts plansFirst), a no-change run is likely: it is
   * compared here first (with the host lock held, as the waiter would), and a file that needs no change
   * starts no waiter, which saves a second netkit process on every no-change run. Any other file starts
   * the waiter at once: it plans under the lock anyway (one plan, not two), and when it finds nothing to
   * do it tells the same report as the comparison here would have given, and leaves nothing pending.
   */
  private async detach(file: string, seconds: number, input: HostInput, flags: {netns?: string; verbose?: boolean; 'dry-run'?: boolean}): Promise<unknown> {
    const {startWaiter, unchangedReport} = await import('../lib/apply/pending.js')
    const unchanged = await unchangedReport(this.makeRunner(flags), input, file)
    if (unchanged) {
      if (!this.jsonEnabled()) this.log(`the host already matches ${hostFileName(file)} (${unchanged.unchanged} objects); nothing to do, nothing to confirm`)
      return unchanged
    }
    const {warnings, ...report} = await startWaiter(['apply', ...this.argv.filter((a) => a !== '--waiter')])
    // What the waiter warned of (its plan's warnings, which a starter that planned first has given already) is this command's to say.
    if (Array.isArray(warnings)) for (const w of warnings) if (typeof w === 'string' && !this.said.includes(w)) this.warning(w)
    if (report.error) {
      const e = report.error as {code: string; message: string; fix?: string; exitCode?: number; detail?: string; command?: string}
      throw new NetkitError(e.code, e.message, {fix: e.fix, detail: e.detail, command: e.command, exit: e.exitCode === 2 ? 2 : 1})
    }
    const r = report as {pending: boolean; changes: {action: string}[]; unchanged: number; memo?: boolean; deadline?: string; pid?: number; log?: string}
    if (!this.jsonEnabled()) {
      if (!r.pending) this.log(`the host already matches ${hostFileName(file)} (${r.unchanged} objects); nothing to do, nothing to confirm`)
      else {
        this.log(
          `applied ${countChanges(r.changes.length)} (${summary(r.changes)}), verified; PENDING: run "netkit apply --confirm" within ${seconds} s to keep it, or "netkit apply --rollback" to undo it now`,
        )
        process.stderr.write(`not confirmed by ${r.deadline?.slice(11, 19)} UTC, it is undone (waiter pid ${r.pid}, log ${r.log})\n`)
      }
    }
    return report
  }

  /** The detached waiter: applies with the host lock held (base-command), then waits for --confirm, --rollback or the deadline. */
  private async wait(file: HostInput, flags: {try?: number; file?: string; netns?: string; verbose?: boolean}): Promise<unknown> {
    const {applyHost} = await import('../lib/apply/run.js')
    const {clearOutcome, finish, relayWarnings, tellStarter, waitForAnswer} = await import('../lib/apply/pending.js')
    relayWarnings(this.said)
    let why: OutcomeKind = 'expired'
    let doctor = false
    const runner = this.makeRunner(flags)
    const path = resolve(flags.file!)
    this.waiterFile = path
    let changes = 0
    const result = await applyHost(runner, file, {
      progress: 'none',
      trySeconds: flags.try,
      // A new detached change starts (or the file needs none): what became of the last one is no longer news for --confirm.
      // Not before the plan: a file refused (bad, in conflict, the host busy) leaves that news as it was.
      planned: clearOutcome,
      confirm: (seconds, interrupted, r) => {
        this.waiting = true
        changes = r.changes.length
        this.waiterChanges = changes
        return waitForAnswer({file: path, changes, report: {...r, file: path}}, (w, d) => ((why = w), (doctor = d)))(seconds, interrupted)
      },
      log: (l) => process.stderr.write(`${l}\n`),
    })
    if (this.waiting) {
      // What became of the change is recorded at once (a kill during the doctor leaves it "confirmed").
      finish({file: path, outcome: result.kept ? 'confirmed' : why, changes})
      // "confirm doctor": the host checked here, its report written before this process lets go of the host lock,
      // which the confirming process waits for.
      if (result.kept && doctor) await this.doctorForConfirmer(runner)
    }
    // Nothing to do: no waiter stays.
    else tellStarter({pending: false, ...result, file: path})
    return result
  }

  /**
   * The waiter, asked "confirm doctor": checks the host as "netkit doctor" does, its change kept and its outcome
   * recorded, and leaves the report for the confirming process (pending.ts writeDoctor) before it lets go of the
   * host lock; that process then neither loads nor runs the doctor itself. A doctor that cannot run says why
   * there; the change stays kept either way.
   */
  private async doctorForConfirmer(runner: import('../lib/runner.js').Runner): Promise<void> {
    const {writeDoctor} = await import('../lib/apply/pending.js')
    try {
      const {checkHost, doctorResult} = await import('../lib/doctor/report.js')
      const result = doctorResult(await checkHost(runner, {keepVersions: this.hostTools}))
      writeDoctor({result})
      const s = result.summary
      process.stderr.write(`netkit doctor (asked with the confirmation): ${s.fail} failed, ${s.warn} warnings, ${s.ok} ok, ${s.skip} skipped\n`)
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error)
      writeDoctor({error: message})
      process.stderr.write(`netkit doctor (asked with the confirmation) could not run: ${message}\n`)
    }
  }

  /**
   * --confirm --doctor: the host checked as "netkit doctor" checks it. The waiter that kept the change
   * checked it already (it has the doctor's code loaded: automation confirms and checks every host of a
   * fleet, one netkit process each instead of two); with no report from it (nothing was pending, or it
   * could not run the doctor) this process checks the host. Its report is added as "doctor" (the shape
   * of "netkit doctor --json"); a failed check exits 1, the change stays kept.
   */
  private async checkAfter(answered: unknown, fromWaiter: WaiterDoctor | undefined, flags: {netns?: string; verbose?: boolean}): Promise<unknown> {
    const {checkHost, doctorResult, renderResult} = await import('../lib/doctor/report.js')
    const doctor = fromWaiter?.result ?? doctorResult(await checkHost(this.makeRunner(flags), {keepVersions: this.hostTools}))
    if (!this.jsonEnabled()) this.log(`\n${renderResult(doctor)}`)
    if (!doctor.passed) {
      process.exitCode = 1
      if (!this.jsonEnabled()) process.stderr.write('the change is kept; fix what netkit doctor found above\n')
    }
    return {...(answered as Record<string, unknown>), doctor}
  }

  /** --confirm / --rollback: the pending change's answer, and what became of it (with `doctor`, the waiter's report). */
  private async answer(asked: 'confirm' | 'rollback', doctor = false): Promise<Answered> {
    const {answerPending} = await import('../lib/apply/pending.js')
    const answered = await answerPending(asked, {doctor})
    const r = answered.result
    const json = this.jsonEnabled()
    const when = (iso?: string) => (iso ? `${iso.slice(11, 19)} UTC` : '')
    if (r.outcome === 'none') {
      const last = r.last
      // A change that was undone because nobody confirmed it in time must not read as confirmed.
      if (asked === 'confirm' && last && last.outcome !== 'confirmed' && last.outcome !== 'rolled back') {
        throw new NetkitError(
          'E_NOT_PENDING',
          `nothing to confirm: the change from ${last.file} was undone at ${when(last.at)} (${describeOutcome(last.outcome, last.detail)})`,
          {fix: `apply it again (netkit apply -f ${last.file} --try SECONDS --detach) and confirm in time`},
        )
      }
      if (!json)
        this.log(
          `nothing to ${asked === 'confirm' ? 'confirm' : 'roll back'}: no change is pending${last ? ` (the last, from ${last.file}, was ${last.outcome} at ${when(last.at)})` : ''}`,
        )
      return answered
    }
    if (asked === 'confirm' && r.outcome !== 'confirmed') {
      throw new NetkitError(
        'E_NOT_PENDING',
        `too late to confirm: the change from ${r.file} was undone at ${when(r.at)} (${describeOutcome(r.outcome, r.detail)})`,
        {fix: `apply it again (netkit apply -f ${r.file} --try SECONDS --detach) and confirm in time`},
      )
    }
    if (asked === 'rollback' && r.outcome === 'confirmed')
      throw new NetkitError('E_NOT_PENDING', `too late to roll back: the change from ${r.file} was confirmed at ${when(r.at)}`, {
        fix: 'apply the earlier file to go back',
      })
    if (asked === 'rollback' && r.outcome === 'failed')
      throw new NetkitError('E_UNDO_INCOMPLETE', `undoing the change from ${r.file}: ${r.detail}`, {
        fix: 'see the log in the state directory (apply-detached.log)',
      })
    if (!json)
      this.log(
        r.outcome === 'confirmed'
          ? `confirmed: keeping ${countChanges(r.changes ?? 0)} from ${r.file}`
          : `${asked === 'rollback' ? 'rolled back' : 'undone'}: ${countChanges(r.changes ?? 0)} from ${r.file}; the host is as before`,
      )
    return answered
  }
}

function describeOutcome(o: string, detail?: string): string {
  if (o === 'expired') return 'not confirmed in time'
  if (o === 'interrupted') return 'its waiter was stopped by a signal'
  if (o === 'failed') return `it failed: ${detail ?? 'see the log'}`
  return o
}

const countChanges = (n: number) => `${n} change${n === 1 ? '' : 's'}`

function summary(changes: {action: string}[]): string {
  const n = (a: string) => changes.filter((c) => c.action === a).length
  return `${n('add')} added, ${n('change')} changed, ${n('remove')} removed`
}
