#!/usr/bin/env node
/**
 * Cold start of netkit against `node -e 0` on this machine: the median of
 * several runs of each, printed as seconds and as a ratio.
 * Targets (issue 2): `netkit --version` <= 1.5x, `netkit route list` <= 2x.
 * Usage: node bench/startup.mjs [runs]   (after npm run build)
 */
import {spawnSync} from 'node:child_process'
import {fileURLToPath} from 'node:url'

const runs = Number(process.argv[2] ?? 15)
const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))

function median(cmd, args) {
  const times = []
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint()
    const r = spawnSync(cmd, args, {stdio: ['ignore', 'ignore', 'pipe']})
    const dt = Number(process.hrtime.bigint() - t0) / 1e9
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`)
    times.push(dt)
  }
  times.sort((a, b) => a - b)
  return times[Math.floor(times.length / 2)]
}

const base = median(process.execPath, ['-e', '0'])
const binary = fileURLToPath(new URL('../dist/netkit', import.meta.url))
const cases = [
  ['netkit --version', [bin, '--version'], 1.5],
  ['netkit route list', [bin, 'route', 'list'], 2],
  ['netkit tunnel list', [bin, 'tunnel', 'list'], 2],
  ['netkit ns list', [bin, 'ns', 'list'], 2],
]
console.log(`node -e 0: ${base.toFixed(3)} s (median of ${runs})`)
const {existsSync} = await import('node:fs')
const runs_ = cases.map(([name, args, target]) => [name, process.execPath, args, target])
if (existsSync(binary)) {
  runs_.push(
    ['binary --version', binary, ['--version'], 1.5],
    ['binary route list', binary, ['route', 'list'], 2],
    ['binary tunnel list', binary, ['tunnel', 'list'], 2],
  )
}
for (const [name, file, args, target] of runs_) {
  const t = median(file, args)
  const ratio = t / base
  console.log(`${name.padEnd(20)} ${t.toFixed(3)} s  ${ratio.toFixed(2)}x node  (target <= ${target}x: ${ratio <= target ? 'met' : 'NOT met'})`)
}
