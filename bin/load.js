// Loads netkit's bundle (dist/bundle/netkit.cjs) with V8's code cache when one
// matches this Node, as a CommonJS module registered in require's cache (so
// oclif, told the same file, finds it there and does not load it again).
import {readFileSync} from 'node:fs'
import Module, {createRequire} from 'node:module'
import {dirname} from 'node:path'
import vm from 'node:vm'

export function loadBundle(filename, {createCache = false} = {}) {
  const cached = Module._cache[filename]
  if (cached?.loaded) return {exports: cached.exports}
  const source = readFileSync(filename, 'utf8')
  let cachedData
  if (!createCache) {
    try {
      cachedData = readFileSync(`${filename}.cache`)
    } catch {
      cachedData = undefined
    }
  }
  const script = new vm.Script(Module.wrap(source), {filename, cachedData, importModuleDynamically: vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER})
  const mod = new Module(filename, null)
  mod.filename = filename
  mod.paths = Module._nodeModulePaths(dirname(filename))
  Module._cache[filename] = mod
  const fn = script.runInThisContext()
  fn.call(mod.exports, mod.exports, createRequire(filename), mod, filename, dirname(filename))
  mod.loaded = true
  return {exports: mod.exports, script}
}
