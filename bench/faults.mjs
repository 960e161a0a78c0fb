#!/usr/bin/env node
// Fault injection figures (issue 15), as root after `npm run build`: for each
// scenario, how many runs failed (an injected fault: the Nth changing call of
// ip, wg, wireguard-go, sysctl, swanctl or charon failing, a charon that never
// opens VICI; or a signal during a wait) and how many of those did not leave
// the host as before (or, for a run that went through, as a clean run leaves
// it). Runs every scenario of test/helpers/fault-scenarios.ts (the suite runs
// a subset) and every signal during every wait of test/integration/wait-signals.test.ts,
// prints their "faults:" lines and the totals; exits 1 unless 0 runs were not restored.
import {spawnSync} from 'node:child_process'

const runs = [
  ['dist/test/integration/faults.test.js', {FAULTS_ALL: '1'}],
  ['dist/test/integration/wait-signals.test.js', {SIGNALS_ALL: '1'}],
]
let failing = 0
let notRestored = 0
let broken = false
for (const [file, env] of runs) {
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=tap', file], {
    encoding: 'utf8',
    env: {...process.env, ...env},
    maxBuffer: 64 * 1024 * 1024,
  })
  const lines = (r.stdout ?? '')
    .split('\n')
    .filter((l) => l.includes('# faults: '))
    .map((l) => l.replace(/^\s*#\s*faults: /, ''))
  for (const l of lines) {
    console.log(l)
    const f = /failing runs (\d+)/.exec(l)
    const n = /runs not restored (\d+)/.exec(l)
    if (f) failing += Number(f[1])
    if (n) notRestored += Number(n[1])
  }
  if (r.status !== 0) {
    broken = true
    const why = (r.stdout ?? '')
      .split('\n')
      .filter((l) => /^\s*not ok|error: /.test(l))
      .slice(0, 12)
      .join('\n')
    console.error(`${file} failed (exit ${r.status}):\n${why}\nsee: node --test ${file}`)
  }
}
console.log(`total: failing runs ${failing}, runs not restored ${notRestored}`)
if (broken || notRestored > 0) process.exit(1)
