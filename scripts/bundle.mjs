#!/usr/bin/env node
/**
 * Bundles netkit into one CommonJS file, dist/bundle/netkit.cjs: every
 * command (found under dist/src/commands after tsc) exported as COMMANDS for
 * oclif's "explicit" command strategy, and oclif's entry points. Then it
 * writes V8's code cache for it (netkit.cjs.cache), which bin/run.js hands
 * to V8 so the bundle is not compiled again at every start: first after
 * loading it, then (scripts/warm-cache.mjs) after a warm-up run of the hot
 * paths, so that the functions they call are in it too. One file and no
 * compile step make `netkit` start several times faster; the same bundle is
 * what the single binary carries.
 *
 * The large libraries only some commands use (LAZY below: zod, execa, js-yaml,
 * listr2, inquirer, eta, table) are not in that file: each is bundled on its own into
 * dist/bundle/lazy/<package>.cjs (with its code cache) and read from disk the
 * first time netkit's code needs it. A start reads, decodes and deserializes
 * every byte of the main bundle, so a list command no longer pays for the
 * prompt library's 500 KiB of character-set tables or the schema library.
 */
import {spawnSync} from 'node:child_process'

import {build} from 'esbuild'
import {mkdirSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join, relative} from 'node:path'

import {loadBundle} from '../bin/load.js'

const root = new URL('..', import.meta.url).pathname
const commandsDir = join(root, 'dist/src/commands')
const outfile = join(root, 'dist/bundle/netkit.cjs')
const lazyDir = join(root, 'dist/bundle/lazy')

/** Packages kept out of the main bundle, loaded from dist/bundle/lazy/ on first use. */
const LAZY = ['zod', 'execa', 'js-yaml', 'listr2', 'inquirer', 'eta', 'table']
const lazyName = (pkg) => pkg.replace(/\//g, '+')

// Loads dist/bundle/lazy/<package>.cjs (with its code cache) once and returns one of its entry
// points. It sits in the banner, so it runs where the bundle runs: from bin/run.js and in the
// single binary's vm.Script alike (through require, never import()). Each chunk's vm.Script is
// kept in __netkitLazy.scripts (by package) for the build's warm-up (scripts/warm-cache.mjs),
// which writes the code cache of the chunks it loaded.
const lazyLoader = `function __netkitLazy(pkg, spec) {
  const path = require('node:path'), fs = require('node:fs'), vm = require('node:vm'), Module = require('node:module');
  const filename = path.join(__dirname, 'lazy', pkg + '.cjs');
  let mod = Module._cache[filename];
  if (!mod || !mod.loaded) {
    let cachedData;
    try { cachedData = fs.readFileSync(filename + '.cache') } catch { cachedData = undefined }
    const script = new vm.Script(Module.wrap(fs.readFileSync(filename, 'utf8')), {filename, cachedData});
    __netkitLazy.scripts[pkg] = script;
    mod = new Module(filename, null);
    mod.filename = filename;
    mod.paths = Module._nodeModulePaths(path.dirname(filename));
    Module._cache[filename] = mod;
    script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(filename), mod, filename, path.dirname(filename));
    mod.loaded = true;
  }
  return mod.exports[spec];
}
__netkitLazy.scripts = {};`

// What the lazy packages are imported as by netkit's code (for example zod as 'zod/v4').
const lazySpecs = new Map(LAZY.map((pkg) => [pkg, new Set()]))
const lazyPlugin = {
  name: 'netkit-lazy',
  setup(b) {
    const filter = new RegExp(`^(${LAZY.map((p) => p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|')})(/.*)?$`)
    b.onResolve({filter}, (args) => {
      if (!args.importer.includes('/dist/src/')) return undefined
      // The stand-in is CommonJS: a default import of it would be the whole module, not its default.
      if (
        new RegExp(`import\\s+\\w+\\s+from\\s+'${args.path}'|\\{\\s*default\\b[^}]*\\}\\s*=\\s*await import\\('${args.path}'\\)`).test(
          readFileSync(args.importer, 'utf8'),
        )
      )
        throw new Error(`${args.importer}: import ${args.path} by its named exports (it is loaded lazily)`)
      const pkg = LAZY.find((p) => args.path === p || args.path.startsWith(`${p}/`))
      lazySpecs.get(pkg).add(args.path)
      return {path: args.path, namespace: 'netkit-lazy', pluginData: {pkg}}
    })
    b.onLoad({filter: /.*/, namespace: 'netkit-lazy'}, (args) => ({
      contents: `module.exports = __netkitLazy(${JSON.stringify(lazyName(args.pluginData.pkg))}, ${JSON.stringify(args.path)})`,
      loader: 'js',
    }))
  },
}

/**
 * Two changes to oclif's code at load, each checked (the build fails if oclif's line changes).
 * oclif sorts the commands of its manifest with localeCompare at every start: the first
 * localeCompare in a process loads ICU's collation, 20-40 ms here, for ids that are plain
 * lowercase ASCII (test/unit/startup.test.ts checks that the order is the same). The bundle
 * sorts them by code point instead; the build fails if oclif's line changes.
 */
const oclifSortPlugin = {
  name: 'netkit-oclif-sort',
  setup(b) {
    b.onLoad({filter: /@oclif[\\/]core[\\/]lib[\\/]config[\\/]plugin\.js$/}, (args) => {
      const source = readFileSync(args.path, 'utf8')
      const from = '.sort((a, b) => a.id.localeCompare(b.id));'
      if (!source.includes(from)) throw new Error(`${args.path}: oclif no longer sorts commands with "${from}": review scripts/bundle.mjs`)
      return {contents: source.replace(from, '.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));'), loader: 'js'}
    })
    // oclif checks at load that Node satisfies its own package.json's "engines", read from beside its
    // lib folder: in the bundle there is none (dist/package.json), so the check always failed
    // silently, after loading the semver library for it (about 5 ms of every start). Not called.
    b.onLoad({filter: /@oclif[\\/]core[\\/]lib[\\/]index\.js$/}, (args) => {
      const source = readFileSync(args.path, 'utf8')
      const from = '\ncheckNodeVersion();\n'
      if (!source.includes(from)) throw new Error(`${args.path}: oclif no longer calls "checkNodeVersion();" at load: review scripts/bundle.mjs`)
      return {contents: source.replace(from, '\n'), loader: 'js'}
    })
  },
}

/** esbuild's settings shared by the main bundle and the lazy ones. */
const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // import.meta.url in ESM dependencies becomes the bundle's own URL.
  define: {'import.meta.url': '__netkitUrl'},
  // node-pty is native and only used by tests; typescript/ts-node only by oclif's dev mode.
  external: ['node-pty', 'typescript', 'ts-node'],
  logLevel: 'warning',
  legalComments: 'none',
  minifyWhitespace: true,
  minifySyntax: true,
}
const urlBanner = "const __netkitUrl = require('node:url').pathToFileURL(__filename).href;"

/**
 * Writes V8's load-only code cache next to a bundle: loads it once (defining its modules, nothing more;
 * the warm-up below writes the caches of the bundles it runs again).
 * The source is made ASCII first (\\u escapes): a single other character makes V8 hold the
 * whole file as a two-byte string, twice the memory and slower to read and hash at each start.
 */
function finish(file) {
  const source = readFileSync(file, 'utf8')
  writeFileSync(
    file,
    source.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
  )
  const {script} = loadBundle(file, {createCache: true})
  writeFileSync(`${file}.cache`, script.createCachedData())
  return (readFileSync(file).length / 1024) | 0
}

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
// The build's warm-up (src/lib/warm-up.ts, run by scripts/warm-cache.mjs), evaluated only when called;
// the lazy chunks' scripts it loaded (__netkitLazy is the banner's loader).
const warmUpFile = join(root, 'dist/src/lib/warm-up.js')
const entry = `export {execute, run, flush, handle, settings} from '@oclif/core'
export const COMMANDS = {}
${entries.join('\n')}
export const warmUp = (opts) => require(${JSON.stringify(warmUpFile)}).warmUp({dir: __netkitUrl, ...opts})
export const lazyScripts = () => __netkitLazy.scripts
`

const result = await build({
  ...common,
  stdin: {contents: entry, resolveDir: root, sourcefile: 'netkit-entry.js', loader: 'js'},
  outfile,
  banner: {js: `${urlBanner}\n${lazyLoader}`},
  plugins: [lazyPlugin, oclifSortPlugin],
  metafile: true,
})
writeFileSync(join(root, 'dist/meta.json'), JSON.stringify(result.metafile))
const size = finish(outfile)

// One bundle per lazy package, exporting each way netkit's code imports it.
mkdirSync(lazyDir, {recursive: true})
const lazySizes = []
for (const [pkg, specs] of lazySpecs) {
  if (specs.size === 0) continue
  const file = join(lazyDir, `${lazyName(pkg)}.cjs`)
  const contents = [...specs]
    .map((s) => `Object.defineProperty(exports, ${JSON.stringify(s)}, {enumerable: true, get: () => require(${JSON.stringify(s)})})`)
    .join('\n')
  await build({...common, stdin: {contents, resolveDir: root, sourcefile: `lazy-${lazyName(pkg)}.js`, loader: 'js'}, outfile: file, banner: {js: urlBanner}})
  lazySizes.push(`${pkg} ${finish(file)}`)
}
console.log(`bundled ${files.length} commands into ${relative(root, outfile)} (${size} KiB); lazy: ${lazySizes.join(', ')} KiB`)

/**
 * The code caches from a warm-up run (scripts/warm-cache.mjs, src/lib/warm-up.ts): they hold what the
 * hot paths compile, not only the top-level code. It runs in a process of its own, with the state and
 * configuration folders pointed at one that does not exist: the warm-up reads an empty host and runs
 * nothing. Should it fail, the load-only caches written above stay (a slower start, said here).
 */
const none = join(root, 'dist/warm-up-none')
const warmEnv = {...process.env, NETKIT_STATE_DIR: `${none}/state`, NETKIT_CONFIG_DIR: `${none}/config`, NETKIT_IPROUTE2_DIR: `${none}/iproute2`}
delete warmEnv.NETKIT_TIMING
const warmScript = join(root, 'scripts/warm-cache.mjs')
const warmed = spawnSync(process.execPath, [warmScript, 'warm'], {env: warmEnv, encoding: 'utf8'})
let report
try {
  // The warm-up prints nothing: its report is the one line on stdout.
  if (warmed.status !== 0 || warmed.stdout.split('\n').length !== 2) throw new Error(warmed.stderr.trim() || warmed.stdout.trim() || `exit ${warmed.status}`)
  report = JSON.parse(warmed.stdout)
} catch (error) {
  console.log(`WARNING: the warm-up failed, the code caches are load-only (netkit starts slower): ${error.message}`)
}
if (report) {
  const kib = (f) => (report.written[f] / 1024) | 0
  const chunks = Object.keys(report.written).filter((f) => f.includes('/lazy/'))
  console.log(
    `code caches from a warm-up (${report.changes} changes planned, ${report.calls} reads answered by an empty host): netkit.cjs ${kib('dist/bundle/netkit.cjs')} KiB, ${chunks.map((f) => `${f.replace(/.*\/(.*)\.cjs$/, '$1')} ${kib(f)}`).join(', ')} KiB; the other chunks load-only`,
  )
}
// V8 takes each cache (a rejected one would only make netkit slower, silently): checked in a fresh process.
const checked = spawnSync(process.execPath, [warmScript, 'check'], {encoding: 'utf8'})
if (checked.status !== 0) throw new Error(`checking the code caches: ${checked.stderr}`)
const rejected = Object.entries(JSON.parse(checked.stdout).rejected).filter(([, r]) => r)
if (rejected.length) throw new Error(`V8 rejects the code cache of ${rejected.map(([f]) => f).join(', ')}`)
