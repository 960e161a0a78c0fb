/**
 * Where netkit's own files are: the package root (the directory with its
 * package.json), found by walking up from this module, which works from the
 * TypeScript build (dist/src/lib), the bundle (dist/bundle) and the unpacked
 * single binary alike.
 */
import {existsSync, readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

let root: string | undefined

export function packageRoot(): string {
  if (root) return root
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 8; i++) {
    const pj = join(dir, 'package.json')
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as {name?: string}).name === 'netkit') return (root = dir)
      } catch {
        // not ours
      }
    }
    dir = dirname(dir)
  }
  throw new Error("internal error: cannot find netkit's package root")
}

/** The templates netkit renders configs from (NETKIT_TEMPLATES_DIR overrides, for development). */
export function templatesDir(): string {
  return process.env.NETKIT_TEMPLATES_DIR ?? join(packageRoot(), 'templates')
}
