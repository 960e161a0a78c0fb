import assert from 'node:assert/strict'
import childProcess, {spawnSync} from 'node:child_process'
import fs, {mkdtempSync, readdirSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

// dist/test/unit/ -> the package root
const root = new URL('../../../', import.meta.url).pathname
const bundle = join(root, 'dist/bundle/netkit.cjs')

interface Report {
  calls: string[]
  changes: number
  commands: number
  tunnelList?: string
  doctor?: string
}

describe("the build's warm-up (src/lib/warm-up.ts, scripts/warm-cache.mjs)", () => {
  const dir = mkdtempSync(join(tmpdir(), 'netkit-warm-'))
  after(() => rmSync(dir, {recursive: true, force: true}))

  it('runs the planner and a command through oclif in this process, touching nothing: no process, no file written, nothing printed', async () => {
    for (const d of ['state', 'config', 'iproute2']) fs.mkdirSync(join(dir, d))
    Object.assign(process.env, {NETKIT_STATE_DIR: join(dir, 'state'), NETKIT_CONFIG_DIR: join(dir, 'config'), NETKIT_IPROUTE2_DIR: join(dir, 'iproute2')})
    // Whatever the bundle would start or write goes through these modules' objects (its code is CommonJS): each is refused and noted.
    const touched: string[] = []
    const restore: (() => void)[] = []
    const refuse = (mod: Record<string, unknown>, names: string[]) => {
      for (const name of names) {
        const real = mod[name]
        mod[name] = (...args: unknown[]) => {
          touched.push(`${name} ${String(args[0])}`)
          throw new Error(`the warm-up called ${name}`)
        }
        restore.push(() => (mod[name] = real))
      }
    }
    refuse(childProcess as unknown as Record<string, unknown>, ['spawn', 'spawnSync', 'execFile', 'execFileSync', 'exec', 'execSync', 'fork'])
    refuse(fs as unknown as Record<string, unknown>, [
      'writeFileSync',
      'appendFileSync',
      'mkdirSync',
      'renameSync',
      'rmSync',
      'unlinkSync',
      'symlinkSync',
      'chmodSync',
      'copyFileSync',
      'mkdtempSync',
    ])
    const out: string[] = []
    const write = process.stdout.write
    // What netkit prints is text; the test runner's own messages on stdout are serialized (buffers), and go through.
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) =>
      typeof chunk === 'string' ? (out.push(chunk), true) : write.call(process.stdout, chunk, ...rest)) as typeof process.stdout.write
    let report: Report
    try {
      const {loadBundle} = (await import(new URL('../../../bin/load.js', import.meta.url).href)) as {
        loadBundle: (file: string) => {exports: {warmUp: () => Promise<Report>}}
      }
      const {exports} = loadBundle(bundle)
      report = await exports.warmUp()
    } finally {
      process.stdout.write = write
      for (const r of restore) r()
    }
    assert.deepEqual(touched, [])
    assert.deepEqual(out, [])
    for (const d of ['state', 'config', 'iproute2']) assert.deepEqual(readdirSync(join(dir, d)), [], d)
    // Reads only, each answered by the empty host: the live read, the SPD, the sysctls, the WireGuard device.
    assert.ok(report.calls.includes('ip -d -j -batch -'), report.calls.join('\n'))
    assert.ok(report.calls.includes('ip xfrm policy list'))
    assert.ok(report.calls.some((c) => c.startsWith('sysctl -n ')))
    // Against an empty host, every object of the sample file is to be made; the dry run shows the commands.
    assert.ok(report.changes >= 20, `${report.changes} changes`)
    assert.ok(report.commands >= report.changes, `${report.commands} commands`)
    assert.match(report.tunnelList ?? '', /^\{\n {2}"ok": true,\n {2}"result": \[\]/)
    assert.match(report.doctor ?? '', /^\{\n {2}"ok": true,\n {2}"result": \{\n {4}"summary"/)
  })

  it('wrote code caches V8 takes, warm for the chunks the warm-up loaded and load-only for the others', () => {
    const r = spawnSync(process.execPath, [join(root, 'scripts/warm-cache.mjs'), 'check'], {encoding: 'utf8'})
    assert.equal(r.status, 0, r.stderr)
    const {rejected} = JSON.parse(r.stdout) as {rejected: Record<string, boolean>}
    assert.ok(Object.keys(rejected).includes('dist/bundle/netkit.cjs'))
    assert.ok(Object.keys(rejected).includes('dist/bundle/lazy/zod.cjs'))
    for (const [file, no] of Object.entries(rejected)) assert.equal(no, false, `${file}: its cache is rejected`)
    const ratio = (f: string) => statSync(`${f}.cache`).size / statSync(f).size
    // A load-only cache holds the top-level code (zod: 6% of its size); one written after the warm-up, what ran too.
    assert.ok(ratio(join(root, 'dist/bundle/lazy/zod.cjs')) > 0.4, `zod's cache is ${ratio(join(root, 'dist/bundle/lazy/zod.cjs'))} of its size`)
    assert.ok(ratio(join(root, 'dist/bundle/lazy/js-yaml.cjs')) > 0.4)
    assert.ok(ratio(bundle) > 0.7, `the main cache is ${ratio(bundle)} of its size`)
    assert.ok(ratio(join(root, 'dist/bundle/lazy/inquirer.cjs')) < 0.2, 'the prompt library (not warmed) keeps its load-only cache')
  })
})
