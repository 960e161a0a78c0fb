#!/usr/bin/env node
// netkit's entry point. `--version` is answered without loading anything else;
// everything else runs from the bundle (dist/bundle/netkit.cjs, built by `npm run build`).
const argv = process.argv.slice(2)
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
  const {readFileSync} = await import('node:fs')
  const {version} = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  process.stdout.write(`netkit/${version} ${process.platform}-${process.arch} node-${process.version}\n`)
} else {
  const {fileURLToPath} = await import('node:url')
  const {loadBundle} = await import('./load.js')
  const {exports} = loadBundle(fileURLToPath(new URL('../dist/bundle/netkit.cjs', import.meta.url)))
  await exports.execute({dir: import.meta.url})
}
