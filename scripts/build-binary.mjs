#!/usr/bin/env node
/**
 * Builds dist/netkit: one executable for linux-x64 that carries its own Node
 * runtime and all of netkit (a Node single executable application). Run
 * `npm run build` first. Steps: collect the payload (bundle, the lazy packages' bundles, code caches,
 * package.json, manifest, templates) as SEA assets, let node write the
 * preparation blob, copy the node binary and inject the blob with postject.
 */
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join, relative} from 'node:path'

const root = new URL('..', import.meta.url).pathname
const out = join(root, 'dist/netkit')
const work = join(root, 'dist/sea')
mkdirSync(work, {recursive: true})

function walk(dir) {
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? walk(p) : [p]
  })
}

const payload = [
  'package.json',
  'oclif.manifest.json',
  'dist/bundle/netkit.cjs',
  'dist/bundle/netkit.cjs.cache',
  ...walk(join(root, 'dist/bundle/lazy')).map((p) => relative(root, p)),
  ...walk(join(root, 'templates')).map((p) => relative(root, p)),
]
for (const f of payload) if (!existsSync(join(root, f))) throw new Error(`${f} is missing: run "npm run build" first`)

// bin/run.js is never executed from the unpacked copy, but oclif looks for the
// package root from the directory it is given.
const hash = createHash('sha256')
for (const f of payload) hash.update(f).update(readFileSync(join(root, f)))
writeFileSync(join(work, 'digest'), hash.digest('hex'))
writeFileSync(join(work, 'files.json'), JSON.stringify(payload))

const assets = Object.fromEntries(payload.map((f) => [f, join(root, f)]))
assets['files.json'] = join(work, 'files.json')
assets.digest = join(work, 'digest')
const config = {
  main: join(root, 'scripts/sea-main.cjs'),
  output: join(work, 'netkit.blob'),
  disableExperimentalSEAWarning: true,
  useCodeCache: true,
  assets,
}
writeFileSync(join(work, 'sea-config.json'), JSON.stringify(config, null, 2))
execFileSync(process.execPath, ['--experimental-sea-config', join(work, 'sea-config.json')], {stdio: 'inherit'})

copyFileSync(process.execPath, out)
chmodSync(out, 0o755)
execFileSync(
  join(root, 'node_modules/.bin/postject'),
  [out, 'NODE_SEA_BLOB', join(work, 'netkit.blob'), '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'],
  {stdio: ['ignore', 'ignore', 'inherit']},
)
console.log(`built ${relative(process.cwd(), out)} (${(statSync(out).size / 1048576).toFixed(0)} MiB): copy this one file to a host and run it`)
