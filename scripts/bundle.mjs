#!/usr/bin/env node
/**
 * Bundles netkit into one ES module, dist/netkit.mjs: every command (found
 * under dist/src/commands after tsc) exported as COMMANDS for oclif's
 * "explicit" command strategy, and oclif's entry points. One file loads
 * several times faster than hundreds of modules, and it is what the single
 * binary (build:binary) carries.
 */
import {build} from 'esbuild'
import {readdirSync, statSync} from 'node:fs'
import {join, relative} from 'node:path'

const root = new URL('..', import.meta.url).pathname
const commandsDir = join(root, 'dist/src/commands')

function walk(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.js') ? [p] : []
  })
}

const files = walk(commandsDir).sort()
const lines = []
const entries = []
files.forEach((file, i) => {
  const id = relative(commandsDir, file).replace(/\.js$/, '').split('/').filter((s) => s !== 'index').join(':')
  lines.push(`import C${i} from ${JSON.stringify(file)}`)
  entries.push(`  ${JSON.stringify(id)}: C${i},`)
})
const entry = `${lines.join('\n')}
export {execute, run, flush, handle, settings} from '@oclif/core'
export const COMMANDS = {
${entries.join('\n')}
}
`

const result = await build({
  stdin: {contents: entry, resolveDir: root, sourcefile: 'netkit-entry.js', loader: 'js'},
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile: join(root, 'dist/netkit.mjs'),
  banner: {js: "import {createRequire as __nkRequire} from 'node:module'; const require = __nkRequire(import.meta.url);"},
  // node-pty is native and only used by tests; never bundle it.
  external: ['node-pty', 'typescript', 'ts-node'],
  logLevel: 'warning',
  legalComments: 'none',
  metafile: true,
})
console.log(`bundled ${files.length} commands into dist/netkit.mjs`)
import {writeFileSync} from 'node:fs'; writeFileSync(join(root, 'dist/meta.json'), JSON.stringify(result.metafile))
