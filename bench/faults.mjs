#!/usr/bin/env node
// Fault injection figures: for each scenario, how many runs failed at an
// injected fault and how many of those did not leave the host as before.
// Runs the integration test that asserts them (test/integration/faults.test.ts,
// as root) and prints its "faults:" lines. Build first: npm run build.
import {spawnSync} from 'node:child_process'

const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', 'dist/test/integration/faults.test.js'], {encoding: 'utf8', maxBuffer: 64 * 1024 * 1024})
const lines = (r.stdout ?? '').split('\n').filter((l) => l.includes('faults: ')).map((l) => l.replace(/^\s*#\s*faults: /, ''))
for (const l of lines) console.log(l)
if (r.status !== 0) {
  console.error(`the fault test failed (exit ${r.status}); see: node --test dist/test/integration/faults.test.js`)
  process.exit(1)
}
