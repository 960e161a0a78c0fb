/**
 * The netkit the fleet benches' hosts run: what the netkit_mesh role installs for real users, the
 * single binary (dist/netkit), built here when it is missing or older than the bundle. The
 * checkout through node (`node bin/run.js`, what the tests run) starts slower; it also hid what
 * the role paid on real hosts (the read task hashed the 100 MB binary at every run).
 * NETKIT_BIN set: that one. `--node` on the bench's command line: the checkout through node.
 */
import {spawnSync} from 'node:child_process'
import {existsSync, statSync} from 'node:fs'
import {join} from 'node:path'

const root = new URL('..', import.meta.url).pathname

/** Sets NETKIT_BIN (read by test/helpers/ansible.ts) and says which netkit the hosts run. */
export function useSingleBinary(argv = process.argv) {
  if (process.env.NETKIT_BIN) return `netkit: ${process.env.NETKIT_BIN} (NETKIT_BIN)`
  if (argv.includes('--node')) return `netkit: this checkout through node (${join(root, 'bin/run.js')})`
  process.env.NETKIT_BIN = singleBinary(root)
  return `netkit: the single binary ${process.env.NETKIT_BIN}`
}

/** DIR/dist/netkit, built first when missing or older than DIR's bundle (DIR built: npm run build). */
export function singleBinary(dir) {
  const bin = join(dir, 'dist/netkit')
  const bundle = join(dir, 'dist/bundle/netkit.cjs')
  if (!existsSync(bundle)) throw new Error(`${dir}: not built (npm run build there)`)
  if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(bundle).mtimeMs) {
    const r = spawnSync(process.execPath, [join(dir, 'scripts/build-binary.mjs')], {cwd: dir, stdio: ['ignore', 'ignore', 'inherit']})
    if (r.status !== 0) throw new Error(`${dir}: building the single binary failed (node scripts/build-binary.mjs)`)
  }
  return bin
}
