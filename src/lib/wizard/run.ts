/**
 * The wizard, start to end: the doctor's host checks first, then the answers
 * (asked on a terminal, or read from --answers), a review of the exact files
 * and commands (secrets redacted), then writing and applying through the same
 * `tunnel add` as everyone else, the doctor on the result, and the answers
 * file for the other side. Nothing is written before the review is accepted,
 * so Ctrl-C at a prompt leaves the host as it was.
 */
import {join} from 'node:path'

import {remedies, runDoctor} from '../doctor/run.js'
import type {Finding} from '../doctor/types.js'
import {ExitCode, NetkitError, UsageError} from '../errors.js'
import {ask} from '../prompt.js'
import {Runner} from '../runner.js'
import {type Defined, defineTunnel} from '../tunnel/define.js'
import {connectionFile, ipsecDriver, renderConnection, swanctlSecret} from '../tunnel/ipsec/driver.js'
import {addTunnel, tidyScope} from '../tunnel/service.js'
import {diffDefs, loadDef, pskPath, sameDef, scopeDir} from '../tunnel/store.js'
import {type Answers, answersToYaml, peerAnswers, readAnswersFile, validateAnswers} from './answers.js'
import {askAnswers} from './flow.js'
import {type Issued, issueCertificates, removeIssued} from './pki.js'
import {tunnelInputs} from './plan.js'
import {hostToHostRefusal, inWizardTerms} from './terms.js'
import {inNamespace} from '../wording.js'

export type Prompt = (q: Record<string, unknown>) => Promise<unknown>

export interface WizardOptions {
  runner: Runner
  configDir: string
  answersFile?: string
  saveAnswers?: string
  peerAnswersFile?: string
  /** A person is at a terminal (and --json is off): prompts may appear. */
  interactive: boolean
  /** Accept the review without asking. */
  yes: boolean
  /** Wait for the SA after applying (the second host). */
  wait: boolean
  replace: boolean
  timeoutMs: number
  prompt?: Prompt
  log: (line: string) => void
}

export interface ReviewItem {
  tunnel: string
  file: string
  content: string
  replaces: string[] | null
}

export interface WizardResult {
  answers: Answers
  checks: {fail: number; warn: number; problems: {id: string; result: string; reason?: string; fix?: string}[]}
  review: {files: ReviewItem[]; commands: string[]}
  decision: 'apply' | 'save' | 'cancel'
  /** changed: false when the tunnel was already set up as the answers say (a re-run). */
  applied: {tunnel: string; state: string | null; datapath: string; changed: boolean}[]
  doctor: {fail: number; warn: number} | null
  peerAnswers: string | null
  pskFiles: string[]
  /** x509-generate: the CA certificate and each peer's certificate and key, to copy there. */
  certificates?: {ca: string; peers: {name: string; cert: string; key: string}[]}
}

const HOST_GROUPS = new Set(['host', 'kernel', 'tools'])

/** What this host can set up: host to host needs ESP in the kernel (on kernel-libipsec the route to the peer would carry IKE itself). */
export interface HostAbility {
  /** true, or why not (what the host has instead). */
  hostToHost: true | string
}

async function hostAbility(runner: Runner): Promise<HostAbility> {
  const {datapath} = await ipsecDriver.datapath({runner}, 'auto')
  return {hostToHost: datapath === 'kernel' ? true : "strongSwan's kernel-libipsec (no ESP in the kernel)"}
}

type Defs = Defined[]

/** What "tunnel add" would run, and where a dry run stopped (a peer not reachable yet). */
type Planned = {commands: string[]; stopped?: string}

/** The tunnels the answers make, defined and checked as "tunnel add" checks them; a refusal in the wizard's words. */
async function defineAll(answers: Answers, runner: Runner, ability: HostAbility): Promise<Defs> {
  const inputs = tunnelInputs(answers, runner.netns)
  if (ability.hostToHost !== true) {
    for (const input of inputs) {
      if (!input.localSubnet?.length && !input.remoteSubnet?.length)
        throw hostToHostRefusal(ability.hostToHost, answers.role === 'mesh' ? input.name : undefined)
    }
  }
  const defs: Defs = []
  for (const input of inputs) defs.push(await defineTunnel(input, runner))
  return defs
}

/**
 * What "tunnel add" would run for these tunnels, from a dry run. A refusal
 * (bad input: exit 2) is thrown; any other failure (a peer not reachable yet)
 * ends the list and is said in the review, where the real run will stop too.
 */
async function dryRunAll(defs: Defs, runner: Runner, opts: WizardOptions): Promise<Planned> {
  const dry = new Runner({netns: runner.netns, dryRun: true, sink: () => {}})
  const commands: string[] = []
  for (const {def, psk} of defs) {
    const d = dry.in(runner.netns ?? null)
    try {
      await addTunnel(def, {runner: d, configDir: opts.configDir, progress: 'none', psk: psk as never, wait: opts.wait, replace: true})
    } catch (error) {
      if (!(error instanceof NetkitError) || error.exit === ExitCode.usage) throw error
      return {commands: [...new Set([...commands, ...d.journal])], stopped: (inWizardTerms(error) as NetkitError).line}
    }
    commands.push(...d.journal)
  }
  return {commands: [...new Set(commands)]}
}

/**
 * Everything the answers ask for, checked before anything runs or is made:
 * the tunnels defined (files read, addresses and subnets checked) and a dry
 * run of "tunnel add" (what this host can do, what is in the way). For
 * x509-generate the certificates are not made yet: the check uses a
 * generated key in their place (the auth method changes nothing it checks).
 */
async function checkAnswers(
  answers: Answers,
  runner: Runner,
  ability: HostAbility,
  opts: WizardOptions,
): Promise<{defs?: Defs; commands: string[]; stopped?: string}> {
  const generate = answers.auth.method === 'x509-generate'
  const defs = await defineAll(generate ? {...answers, auth: {method: 'psk-generate'}} : answers, runner, ability)
  const run = await dryRunAll(defs, runner, opts)
  return {...run, defs: generate ? undefined : defs}
}

export async function runWizard(opts: WizardOptions): Promise<WizardResult> {
  try {
    return await wizard(opts)
  } catch (error) {
    throw inWizardTerms(error)
  }
}

/** The wizard's steps in order: the host, the answers, the review, the decision, the apply, what the peer needs. */
async function wizard(opts: WizardOptions): Promise<WizardResult> {
  const {runner} = opts
  const prompt: Prompt = opts.prompt ?? ((q: Record<string, unknown>) => ask({...q, name: String(q.name)}))
  requireAnswerSource(opts)
  // An answers file is checked whole before anything is printed, run or made: bad input is one error line.
  const fromFile = opts.answersFile ? readAnswersFile(opts.answersFile) : undefined
  const ability = await hostAbility(runner)
  let checked = fromFile ? await checkAnswers(fromFile, runner, ability, opts) : undefined

  // 1. The host first: what is missing, and the safe fixes.
  const problems = await checkHost(opts, prompt)

  // 2. The answers (checked as they are typed, then as a whole).
  const answers = fromFile ?? validateAnswers(await askAnswers(runner, prompt, opts.log, ability), 'your answers')
  checked ??= await checkAnswers(answers, runner, ability, opts)
  if (opts.saveAnswers) runner.writeFile(opts.saveAnswers, answersToYaml(answers))

  // 3. The review: the exact files (secrets redacted) and commands.
  const scope = scopeDir(opts.configDir, runner.netns)
  const pkiDir = join(scope, 'pki')
  let issued: Issued | undefined
  try {
    let defs = checked.defs
    let planned: Planned = checked
    if (!defs) {
      issued = await issueForAnswers(answers, runner, pkiDir)
      ;({defs, planned} = await planWithCertificates(answers, issued, checked, ability, opts))
    }
    const files = await reviewFiles(defs, runner, scope)
    printReview(files, planned, opts)
    const decision = await askDecision(answers, opts, prompt)
    const replacing = await confirmReplacing(files, decision, opts, prompt)
    const result: WizardResult = {
      answers,
      checks: checksSummary(problems),
      review: {files, commands: planned.commands},
      decision,
      applied: [],
      doctor: null,
      peerAnswers: null,
      pskFiles: [],
    }
    if (decision !== 'apply') {
      discardMade(opts, issued, pkiDir)
      if (decision === 'save') saveAnswersOnly(answers, opts)
      return result
    }

    // 4. Apply, with the same tunnel add as everyone else.
    await applyTunnels(defs, result, scope, opts, replacing.length > 0)
    if (!runner.dryRun) result.doctor = await doctorSummary(opts)

    // 5. What the other side needs.
    handOver(result, answers, issued, opts)
    return result
  } catch (error) {
    discardMade(opts, issued, pkiDir)
    throw error
  }
}

/** Without a terminal the answers must come from a file. */
function requireAnswerSource(opts: WizardOptions): void {
  if (!opts.answersFile && !opts.interactive) {
    throw new UsageError('the wizard needs a terminal to ask its questions', 'pass --answers FILE (YAML or JSON) to run it without prompts', 'E_NO_TTY')
  }
}

/** Runs the doctor's host checks, says what fails or warns, and offers the safe fixes (each once, naming where it acts). */
async function checkHost(opts: WizardOptions, prompt: Prompt): Promise<Finding[]> {
  const {runner, log} = opts
  const report = await runDoctor({runner, configDir: opts.configDir})
  const problems = report.findings.filter((f) => HOST_GROUPS.has(f.group) && (f.result === 'fail' || f.result === 'warn'))
  for (const f of problems)
    log(`${f.result === 'fail' ? 'problem' : 'note'}: ${f.title}${f.subject ? ` [${f.subject}]` : ''}: ${f.reason ?? ''}${f.fix ? ` (fix: ${f.fix})` : ''}`)
  // Each fix once (two findings may share one), each naming where it acts.
  const fixable = remedies({...report, findings: problems}) as (Finding & {remedy: NonNullable<Finding['remedy']>})[]
  if (fixable.length && opts.interactive && !opts.yes) {
    const where = inNamespace(runner.netns)
    if (
      await prompt({
        name: 'value',
        type: 'confirm',
        message: `Apply the safe fixes${where} (${fixable.map((f) => f.remedy.describe).join('; ')})?`,
        default: true,
      })
    ) {
      for (const f of fixable) await f.remedy.apply(runner)
    }
  }
  return problems
}

/** x509-generate: makes the CA and the certificates now, after every check, as files of their own (mode 0600 keys); in a dry run only shown. */
async function issueForAnswers(answers: Answers, runner: Runner, pkiDir: string): Promise<Issued> {
  const peers = answers.role === 'mesh' ? answers.peers.map((p) => ({name: p.name, ip: p.address})) : [{name: answers.name!, ip: answers.remote!}]
  return issueCertificates(runner, pkiDir, {name: 'host', ip: answers.local}, peers)
}

/** The tunnels and their dry run again, with the certificates just issued in place of the checking key (a dry run keeps the checked plan). */
async function planWithCertificates(
  answers: Answers,
  issued: Issued,
  checked: Planned,
  ability: HostAbility,
  opts: WizardOptions,
): Promise<{defs: Defs; planned: Planned}> {
  const {runner} = opts
  if (runner.dryRun) return {defs: [], planned: checked}
  const effective: Answers = {...answers, auth: {method: 'x509', cert: issued.cert, key: issued.key, ca: issued.ca}}
  const defs = await defineAll(effective, runner, ability)
  return {defs, planned: await dryRunAll(defs, runner, opts)}
}

/** Each tunnel's strongSwan file as it will be written (the PSK redacted), and what it replaces. */
async function reviewFiles(defs: Defs, runner: Runner, scope: string): Promise<ReviewItem[]> {
  const files: ReviewItem[] = []
  for (const {def, psk} of defs) {
    // As the tunnel will load it: on kernel-libipsec a "trap" tunnel is started and kept up instead.
    const {datapath} = await ipsecDriver.datapath({runner}, def.datapath)
    const shown = await renderConnection(def, psk ? 'PLACEHOLDER-PSK' : undefined, false, datapath === 'userspace')
    const existing = loadDef(scope, def.name)
    files.push({
      tunnel: def.name,
      file: connectionFile(def, scope),
      content: shown.replace(swanctlSecret('PLACEHOLDER-PSK'), '<redacted>'),
      replaces: existing && !sameDef(existing, def) ? diffDefs(existing, def) : null,
    })
  }
  return files
}

/** Prints the review: the files netkit will write and the commands it will run. */
function printReview(files: ReviewItem[], planned: Planned, opts: WizardOptions): void {
  const {log} = opts
  log('')
  log('review: netkit will write')
  for (const f of files) {
    const how = opts.replace ? '' : opts.interactive && !opts.yes ? ', if you confirm' : '; that needs --replace'
    log(`  ${f.file} (mode 0600)${f.replaces ? `, replacing tunnel ${f.tunnel} (changed: ${f.replaces.join(', ')}${how})` : ''}`)
    for (const line of f.content.trimEnd().split('\n')) log(`    | ${line}`)
  }
  log('and run')
  for (const c of planned.commands) log(`  ${c}`)
  if (planned.stopped) log(`  (the run would stop here: ${planned.stopped})`)
  log('')
}

/** Apply, save the answers only, or cancel: asked at a terminal, else what the answers say. */
async function askDecision(answers: Answers, opts: WizardOptions, prompt: Prompt): Promise<WizardResult['decision']> {
  if (!opts.interactive || opts.yes) return answers.apply ? 'apply' : 'save'
  return (await prompt({
    name: 'value',
    type: 'select',
    message: 'Go ahead?',
    choices: [
      {name: 'write the files and apply them', value: 'apply'},
      {name: 'save the answers only (nothing else is written)', value: 'save'},
      {name: 'cancel', value: 'cancel'},
    ],
  })) as WizardResult['decision']
}

/** The files that replace a different tunnel of the same name; applying them needs --replace or a yes at the terminal. */
async function confirmReplacing(files: ReviewItem[], decision: WizardResult['decision'], opts: WizardOptions, prompt: Prompt): Promise<ReviewItem[]> {
  const replacing = files.filter((f) => f.replaces)
  if (decision === 'apply' && replacing.length && !opts.replace) {
    const ok =
      opts.interactive &&
      !opts.yes &&
      (await prompt({
        name: 'value',
        type: 'confirm',
        message: `Replace the existing tunnel(s) ${replacing.map((f) => f.tunnel).join(', ')}?`,
        default: false,
      }))
    if (!ok)
      throw new NetkitError('E_CONFLICT', `tunnel ${replacing[0].tunnel} already exists with a different definition (${replacing[0].replaces!.join(', ')})`, {
        fix: 'pass --replace to replace it',
      })
  }
  return replacing
}

/** The host checks' problems as the result reports them. */
function checksSummary(problems: Finding[]): WizardResult['checks'] {
  return {
    fail: problems.filter((p) => p.result === 'fail').length,
    warn: problems.filter((p) => p.result === 'warn').length,
    problems: problems.map((p) => ({id: p.id, result: p.result, reason: p.reason, fix: p.fix})),
  }
}

/** Removes what the wizard made before applying (issued certificates, an empty scope folder). */
function discardMade(opts: WizardOptions, issued: Issued | undefined, pkiDir: string): void {
  removeIssued(opts.runner, issued, pkiDir)
  tidyScope(opts.configDir, opts.runner.netns ?? undefined)
}

/** "save the answers only" at a terminal without --save-answers: the answers go to netkit-wizard-NAME.yaml here. */
function saveAnswersOnly(answers: Answers, opts: WizardOptions): void {
  const {runner} = opts
  if (!opts.saveAnswers && opts.answersFile === undefined && !runner.dryRun) {
    const path = join(process.cwd(), `netkit-wizard-${answers.name ?? 'mesh'}.yaml`)
    runner.writeFile(path, answersToYaml(answers))
    opts.log(`saved the answers to ${path}`)
  }
}

/** Adds each tunnel with "tunnel add" and records it (and a generated PSK's file) in the result. */
async function applyTunnels(defs: Defs, result: WizardResult, scope: string, opts: WizardOptions, replacing: boolean): Promise<void> {
  for (const {def, psk, pskGenerated} of defs) {
    const r = await addTunnel(def, {
      runner: opts.runner,
      configDir: opts.configDir,
      progress: 'none',
      psk: psk as never,
      wait: opts.wait,
      replace: opts.replace || replacing,
      timeoutMs: opts.timeoutMs,
    })
    result.applied.push({tunnel: def.name, state: r.state ?? null, datapath: r.datapath, changed: r.changed})
    if (pskGenerated) result.pskFiles.push(pskPath(scope, def.name))
  }
}

/** The doctor on the result: how many checks fail and warn. */
async function doctorSummary(opts: WizardOptions): Promise<WizardResult['doctor']> {
  const after = await runDoctor({runner: opts.runner, configDir: opts.configDir})
  return {fail: after.summary.fail, warn: after.summary.warn}
}

/** What the other side needs: the certificates to copy there, and its answers (written to --peer-answers). */
function handOver(result: WizardResult, answers: Answers, issued: Issued | undefined, opts: WizardOptions): void {
  if (issued) {
    result.certificates = {ca: issued.ca, peers: issued.peers}
  }
  if (answers.role !== 'mesh') {
    const peer = answersToYaml(peerAnswers(answers))
    result.peerAnswers = peer
    if (opts.peerAnswersFile) opts.runner.writeFile(opts.peerAnswersFile, peer)
  }
}
