/**
 * The doctor's checks as a page (docs/doctor-checks.md), written from the
 * registry so that the list cannot drift: `scripts/gen-docs.mjs` writes it and
 * a unit test fails when the committed page differs.
 */
import {CHECKS} from './registry.js'

export function doctorChecksReference(): string {
  const out = [
    '# Doctor checks',
    '',
    '<!-- Generated from src/lib/doctor/registry.ts by scripts/gen-docs.mjs: do not edit by hand. -->',
    '',
    'Every check `netkit doctor` runs, in the order it shows them. `--check ID` runs one. See [doctor](doctor.md).',
    '',
    '| id | group | what it checks |',
    '| --- | --- | --- |',
  ]
  for (const c of CHECKS) out.push(`| \`${c.id}\` | ${c.group} | ${c.title.replaceAll('|', '\\|')} |`)
  out.push('')
  return out.join('\n')
}
