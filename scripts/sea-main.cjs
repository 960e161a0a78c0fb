// The entry point of the single binary (a Node single executable application).
// The binary carries netkit's bundle, its V8 code cache, package.json, the
// oclif manifest and the templates as assets. `--version` is answered at once;
// otherwise the payload is unpacked once per version into a private cache
// directory (mode 0700, owned by the caller) and loaded from there with the
// real CommonJS loader, so oclif finds its package and manifest as usual.
'use strict'
const sea = require('node:sea')
const fs = require('node:fs')
const path = require('node:path')
const os = require('node:os')
const Module = require('node:module')
const vm = require('node:vm')
const {pathToFileURL} = require('node:url')

const pjson = JSON.parse(sea.getAsset('package.json', 'utf8'))
const argv = process.argv.slice(2)
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
  process.stdout.write(`netkit/${pjson.version} ${process.platform}-${process.arch} node-${process.version}\n`)
  return
}

const files = JSON.parse(sea.getAsset('files.json', 'utf8'))
const digest = sea.getAsset('digest', 'utf8').trim()
const base = process.env.NETKIT_CACHE_DIR || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'netkit')
const dir = path.join(base, `${pjson.version}-${digest.slice(0, 16)}`)

function unpack() {
  fs.mkdirSync(base, {recursive: true, mode: 0o700})
  const st = fs.lstatSync(base)
  if (!st.isDirectory() || (typeof process.getuid === 'function' && st.uid !== process.getuid())) {
    throw new Error(`netkit: ${base} is not a directory owned by you; set NETKIT_CACHE_DIR to a private directory`)
  }
  const tmp = fs.mkdtempSync(path.join(base, '.unpack-'))
  for (const f of files) {
    const target = path.join(tmp, f)
    fs.mkdirSync(path.dirname(target), {recursive: true, mode: 0o700})
    fs.writeFileSync(target, Buffer.from(sea.getRawAsset(f)), {mode: 0o600})
  }
  try {
    fs.renameSync(tmp, dir)
  } catch (error) {
    fs.rmSync(tmp, {recursive: true, force: true})
    if (!fs.existsSync(dir)) throw error
  }
}

if (!fs.existsSync(path.join(dir, 'package.json'))) unpack()

const bundle = path.join(dir, 'dist/bundle/netkit.cjs')
const source = fs.readFileSync(bundle, 'utf8')
let cachedData
try {
  cachedData = fs.readFileSync(`${bundle}.cache`)
} catch {
  cachedData = undefined
}
const script = new vm.Script(Module.wrap(source), {filename: bundle, cachedData})
const mod = new Module(bundle, null)
mod.filename = bundle
mod.paths = Module._nodeModulePaths(path.dirname(bundle))
Module._cache[bundle] = mod
script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(bundle), mod, bundle, path.dirname(bundle))
mod.loaded = true
mod.exports.execute({dir: pathToFileURL(path.join(dir, 'bin', 'run.js')).href}).catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`)
  process.exitCode = 1
})
