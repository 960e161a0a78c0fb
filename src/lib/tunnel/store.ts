/**
 * Tunnel definitions on disk, so `show`, `up`, `down` and `del` work from a
 * new shell and after a reboot. A tunnel is known by its namespace and name:
 * everything about it lives under its scope directory, `${configDir}` for the
 * root namespace and `${configDir}/netns/<ns>` for a namespace:
 *   tunnels/<name>.json   the definition (no secrets)
 *   secrets/<name>.psk    secrets, mode 0600 (key pairs: secrets/<name>.key)
 * Drivers get the scope directory as their configDir, so what they write
 * (charon, wireguard confs) is scoped too.
 */
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {NetkitError} from '../errors.js'
import type {Runner} from '../runner.js'
import type {TunnelDef} from './types.js'

/** The directory of one namespace's tunnels (the root namespace: configDir itself). */
export function scopeDir(configDir: string, netns?: string): string {
  return netns ? join(configDir, 'netns', netns) : configDir
}

/** Every scope that has tunnel definitions: [netns or undefined, dir]. */
export function listScopes(configDir: string): {netns?: string; dir: string}[] {
  const out: {netns?: string; dir: string}[] = [{dir: configDir}]
  try {
    for (const ns of readdirSync(join(configDir, 'netns')).sort()) out.push({netns: ns, dir: join(configDir, 'netns', ns)})
  } catch {
    // no namespaced tunnels
  }
  return out
}

export function tunnelsDir(configDir: string): string {
  return join(configDir, 'tunnels')
}

export function secretsDir(configDir: string): string {
  return join(configDir, 'secrets')
}

export function defPath(configDir: string, name: string): string {
  return join(tunnelsDir(configDir), `${name}.json`)
}

export function pskPath(configDir: string, name: string): string {
  return join(secretsDir(configDir), `${name}.psk`)
}

export function loadDef(configDir: string, name: string): TunnelDef | undefined {
  const p = defPath(configDir, name)
  if (!existsSync(p)) return undefined
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as TunnelDef
  } catch (error) {
    throw new NetkitError('E_BAD_DEFINITION', `the definition of tunnel ${name} (${p}) cannot be read`, {
      fix: `fix or remove ${p}`,
      detail: String(error),
    })
  }
}

/** Stores a tunnel's definition (through the runner: echoed, only shown in a dry run). */
export function saveDef(runner: Runner, configDir: string, def: TunnelDef): void {
  runner.writeFile(defPath(configDir, def.name), JSON.stringify(def, null, 2) + '\n', {mode: 0o640, dirMode: 0o750})
}

export function removeDef(runner: Runner, configDir: string, name: string): void {
  runner.removeFiles([defPath(configDir, name)])
}

export function listDefs(configDir: string): TunnelDef[] {
  let files: string[] = []
  try {
    files = readdirSync(tunnelsDir(configDir)).filter((f) => f.endsWith('.json'))
  } catch {
    return []
  }
  return files
    .sort()
    .map((f) => loadDef(configDir, f.slice(0, -5)))
    .filter((d): d is TunnelDef => Boolean(d))
}

/** Definitions compared as data (key order does not matter). */
export function sameDef(a: TunnelDef, b: TunnelDef): boolean {
  return canonical(a) === canonical(b)
}

/** A value as text with object keys sorted and undefined fields left out (for comparing definitions). */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (v && typeof v === 'object') {
    return `{${Object.keys(v as object)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(v)
}

/** The fields in which two definitions differ, for a conflict message. */
export function diffDefs(a: TunnelDef, b: TunnelDef, prefix = ''): string[] {
  const out: string[] = []
  const keys = new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})])
  for (const k of keys) {
    const va = (a as unknown as Record<string, unknown>)?.[k]
    const vb = (b as unknown as Record<string, unknown>)?.[k]
    if (va && vb && typeof va === 'object' && typeof vb === 'object' && !Array.isArray(va)) {
      out.push(...diffDefs(va as TunnelDef, vb as TunnelDef, `${prefix}${k}.`))
    } else if (canonical(va) !== canonical(vb)) out.push(`${prefix}${k}`)
  }
  return out
}
