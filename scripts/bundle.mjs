#!/usr/bin/env node
/**
 * Bundles netkit into one CommonJS file, dist/bundle/netkit.cjs: every
 * command (found under dist/src/commands after tsc) exported as COMMANDS for
 * oclif's "explicit" command strategy, and oclif's entry points. Then it
 * writes V8's code cache for it (netkit.cjs.cache), which bin/run.js hands
 * to V8 so the bundle is not compiled again at every start. One file and no
 * compile step make `netkit` start several times faster; the same bundle is
 * what the single binary carries.
 */
import {build} from 'esbuild'
import {readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {join, relative} from 'node:path'

import {loadBundle} from '../bin/load.js'

const root = new URL('..', import.meta.url).pathname
const commandsDir = join(root, 'dist/src/commands')
const outfile = join(root, 'dist/bundle/netkit.cjs')

function walk(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.js') ? [p] : []
  })
}

const files = walk(commandsDir).sort()
// Each command is a lazy getter: only the command that runs (and what it imports) is evaluated
// at start-up; esbuild keeps a required ESM module uninitialised until the require runs.
const entries = []
files.forEach((file) => {
  const id = relative(commandsDir, file)
    .replace(/\.js$/, '')
    .split('/')
    .filter((s) => s !== 'index')
    .join(':')
  entries.push(
    `Object.defineProperty(COMMANDS, ${JSON.stringify(id)}, {enumerable: true, configurable: true, get: () => require(${JSON.stringify(file)}).default})`,
  )
})
const entry = `export {execute, run, flush, handle, settings} from '@oclif/core'
export const COMMANDS = {}
${entries.join('\n')}
`

const result = await build({
  stdin: {contents: entry, resolveDir: root, sourcefile: 'netkit-entry.js', loader: 'js'},
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outfile,
  // import.meta.url in ESM dependencies becomes the bundle's own URL.
  define: {'import.meta.url': '__netkitUrl'},
  banner: {js: "const __netkitUrl = require('node:url').pathToFileURL(__filename).href;"},
  // node-pty is native and only used by tests; typescript/ts-node only by oclif's dev mode.
  external: ['node-pty', 'typescript', 'ts-node'],
  logLevel: 'warning',
  legalComments: 'none',
  minifyWhitespace: true,
  minifySyntax: true,
  metafile: true,
})
writeFileSync(join(root, 'dist/meta.json'), JSON.stringify(result.metafile))

// Load it once (defining the commands, nothing more) and save V8's code cache.
const {script} = loadBundle(outfile, {createCache: true})
writeFileSync(`${outfile}.cache`, script.createCachedData())
console.log(`bundled ${files.length} commands into ${relative(root, outfile)} (${(readFileSync(outfile).length / 1024) | 0} KiB, code cache written)`)
void createRequire
