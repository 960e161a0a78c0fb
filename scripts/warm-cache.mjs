#!/usr/bin/env node
/**
 * Writes V8's code caches of netkit's bundles from a warm-up run (called by
 * scripts/bundle.mjs, in a process of its own, after the bundles and their
 * load-only caches are written).
 *
 *   node scripts/warm-cache.mjs warm    loads dist/bundle/netkit.cjs without a cache, runs its
 *                                       warmUp (src/lib/warm-up.ts: the planner, the schema, the YAML
 *                                       parser on a built-in host file, against an empty host that
 *                                       runs nothing), then writes the cache of the main bundle and
 *                                       of each lazy chunk the warm-up loaded. Prints a JSON report.
 *   node scripts/warm-cache.mjs check   loads the main bundle and every lazy chunk with their caches
 *                                       and prints whether V8 took them (cachedDataRejected).
 *
 * A cache written after a run holds the bytecode of every function that ran, not only the top-level
 * code: those are not compiled again at every start. The caches of chunks the warm-up did not load
 * stay as scripts/bundle.mjs wrote them.
 */
import {readdirSync, readFileSync, writeFileSync} from 'node:fs'
import Module from 'node:module'
import {join} from 'node:path'
import vm from 'node:vm'

import {loadBundle} from '../bin/load.js'

const root = new URL('..', import.meta.url).pathname
const main = join(root, 'dist/bundle/netkit.cjs')
const lazyDir = join(root, 'dist/bundle/lazy')

async function warm() {
  const {exports, script} = loadBundle(main, {createCache: true})
  const report = await exports.warmUp()
  const written = {}
  const out = (file, s) => {
    const data = s.createCachedData()
    writeFileSync(`${file}.cache`, data)
    written[file.slice(root.length)] = data.length
  }
  out(main, script)
  for (const [pkg, s] of Object.entries(exports.lazyScripts())) out(join(lazyDir, `${pkg}.cjs`), s)
  return {calls: report.calls.length, changes: report.changes, commands: report.commands, written}
}

/** Whether V8 takes each bundle's cache (in a fresh process: this one has compiled nothing yet). */
function check() {
  const rejected = {}
  const files = [
    main,
    ...readdirSync(lazyDir)
      .filter((f) => f.endsWith('.cjs'))
      .map((f) => join(lazyDir, f)),
  ]
  for (const file of files) {
    const script = new vm.Script(Module.wrap(readFileSync(file, 'utf8')), {filename: file, cachedData: readFileSync(`${file}.cache`)})
    rejected[file.slice(root.length)] = script.cachedDataRejected
  }
  return {rejected}
}

const mode = process.argv[2]
const result = mode === 'warm' ? await warm() : mode === 'check' ? check() : undefined
if (!result) throw new Error('usage: node scripts/warm-cache.mjs warm|check')
process.stdout.write(`${JSON.stringify(result)}\n`)
