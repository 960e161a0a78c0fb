/**
 * The child of cliBatch (batch.ts): runs many netkit command lines in one Node
 * process, each as bin/run.js would run it (the same bundle, oclif's `run`),
 * and prints what each wrote and its exit status, as JSON. Reads the command
 * lines (a JSON array of argv arrays) from standard input.
 */
import {readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

interface Out {
  /** How long it took, in milliseconds. */
  ms: number
  code: number
  stdout: string
  stderr: string
}

type Write = typeof process.stdout.write

const input = JSON.parse(readFileSync(0, 'utf8')) as string[][]
const runJs = new URL('../../../bin/run.js', import.meta.url).href
const {loadBundle} = (await import(new URL('../../../bin/load.js', import.meta.url).href)) as {loadBundle: (f: string) => {exports: any}}
const {exports: nk} = loadBundle(fileURLToPath(new URL('../../bundle/netkit.cjs', import.meta.url)))

// Each command adds its listeners to the same streams and process (a CLI runs one command): not a leak here,
// and the warning would land in a case's stderr.
process.stdout.setMaxListeners(0)
process.stderr.setMaxListeners(0)
process.setMaxListeners(0)
const realOut = process.stdout.write.bind(process.stdout)
const realErr = process.stderr.write.bind(process.stderr)
const capture = (sink: (s: string) => void): Write =>
  ((chunk: unknown, ...rest: unknown[]) => {
    sink(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'))
    const cb = rest.find((x) => typeof x === 'function') as (() => void) | undefined
    cb?.()
    return true
  }) as Write

const results: Out[] = []
for (const argv of input) {
  const out: Out = {ms: 0, code: 0, stdout: '', stderr: ''}
  const start = performance.now()
  process.stdout.write = capture((s) => (out.stdout += s))
  process.stderr.write = capture((s) => (out.stderr += s))
  process.exitCode = undefined
  try {
    await nk.run(argv, runJs)
    out.code = Number(process.exitCode ?? 0)
  } catch (error) {
    // What oclif's handle() would print and exit with (errors thrown outside a command's own catch).
    const e = error as {message?: string; oclif?: {exit?: number}}
    out.stderr += `${e.message ?? String(error)}\n`
    out.code = e.oclif?.exit ?? 1
  } finally {
    process.stdout.write = realOut
    process.stderr.write = realErr
    out.ms = Math.round(performance.now() - start)
  }
  results.push(out)
}
process.exitCode = 0
realOut(JSON.stringify(results))
