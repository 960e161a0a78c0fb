/**
 * The doctor's report as people read it (a table of findings by group) and as
 * scripts read it (--json: summary, passed, fixed, checks): one shape for
 * `netkit doctor` and for `netkit apply --confirm --doctor`.
 */
import {configDir} from '../files.js'
import type {Runner} from '../runner.js'
import {runDoctor, versionCachePath, type DoctorOptions, type DoctorReport} from './run.js'
import type {Finding} from './types.js'

export interface DoctorResult {
  summary: DoctorReport['summary']
  /** No check failed (with strict, no warning either). */
  passed: boolean
  /** The fixes applied (doctor --fix). */
  fixed: string[]
  checks: (Omit<Finding, 'remedy'> & {fixable: boolean})[]
}

export function doctorResult(report: DoctorReport, opts: {strict?: boolean; fixed?: string[]} = {}): DoctorResult {
  return {
    summary: report.summary,
    passed: !(report.summary.fail > 0 || (opts.strict && report.summary.warn > 0)),
    fixed: opts.fixed ?? [],
    checks: report.findings.map(({remedy, ...f}) => ({...f, fixable: Boolean(remedy)})),
  }
}

/**
 * The checks, as `netkit doctor` runs them (all of them, or those `only` picks). The tools' versions are
 * kept between runs unless `keepVersions` is false (the build's warm-up) or the runner is a dry run.
 */
export async function checkHost(
  runner: Runner,
  opts: {keepVersions: boolean; only?: Pick<DoctorOptions, 'tunnel' | 'check' | 'probe'>},
): Promise<DoctorReport> {
  return runDoctor({
    runner,
    configDir: configDir(),
    ...opts.only,
    versionCache: opts.keepVersions && !runner.dryRun ? versionCachePath() : undefined,
  })
}

const MARK: Record<Finding['result'], string> = {ok: 'ok  ', warn: 'WARN', fail: 'FAIL', skip: 'skip'}

/** The table of a report as --json gives it (a waiter's, read back from its file: pending.ts readDoctor). */
export function renderResult(result: DoctorResult): string {
  return renderReport({summary: result.summary, findings: result.checks}, result.fixed)
}

export function renderReport(
  report: {summary: DoctorReport['summary']; findings: Pick<Finding, 'group' | 'title' | 'subject' | 'result' | 'reason' | 'fix'>[]},
  fixed: string[] = [],
  dryRun = false,
): string {
  const lines: string[] = []
  let group = ''
  for (const f of report.findings) {
    if (f.group !== group) {
      group = f.group
      lines.push('', group.toUpperCase())
    }
    const subject = f.subject ? ` [${f.subject}]` : ''
    const note = (f.result === 'skip' || f.result === 'ok') && f.reason ? ` (${f.reason})` : ''
    lines.push(`  ${MARK[f.result]}  ${f.title}${subject}${note}`)
    if (f.result === 'warn' || f.result === 'fail') {
      if (f.reason) lines.push(`        why: ${f.reason}`)
      if (f.fix) lines.push(`        fix: ${f.fix}`)
    }
  }
  if (fixed.length) lines.push('', `${dryRun ? 'would fix (dry run, nothing was changed)' : 'fixed'}: ${fixed.join('; ')}`)
  const s = report.summary
  lines.push('', `${s.fail} failed, ${s.warn} warnings, ${s.ok} ok, ${s.skip} skipped`)
  return lines.join('\n').trimStart()
}
