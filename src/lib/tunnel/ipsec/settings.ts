/**
 * strongSwan's settings syntax, as strongswan.conf and swanctl.conf use it:
 * `name { ... }` sections (merged when a name repeats, as strongSwan does),
 * `key = value` (the last one wins), `#` comments, and `include GLOB`
 * (relative to the including file). Enough to read where a system charon
 * serves VICI, and netkit's own connection files.
 */
import {readdirSync, readFileSync, statSync} from 'node:fs'
import {basename, dirname, isAbsolute, join} from 'node:path'

export type SettingsValue = string | Settings
export interface Settings {
  [key: string]: SettingsValue
}

const isSection = (v: SettingsValue | undefined): v is Settings => typeof v === 'object'

/** The files a glob names (a `*` or `?` in its last part only, as strongswan.conf's includes use it), sorted. */
function globFiles(pattern: string): string[] {
  const dir = dirname(pattern)
  const base = basename(pattern)
  if (!/[*?[]/.test(base)) return [pattern]
  const re = new RegExp(
    `^${base
      .replace(/[.+^${}()|\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  )
  try {
    return readdirSync(dir)
      .filter((f) => re.test(f))
      .sort()
      .map((f) => join(dir, f))
      .filter((f) => {
        try {
          return statSync(f).isFile()
        } catch {
          return false
        }
      })
  } catch {
    return []
  }
}

function stripComment(line: string): string {
  let quoted = false
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '"' && line[i - 1] !== '\\') quoted = !quoted
    else if (line[i] === '#' && !quoted) return line.slice(0, i)
  }
  return line
}

function unquote(v: string): string {
  const t = v.trim()
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1).replace(/\\(["\\])/g, '$1') : t
}

/**
 * Parses settings text. `file`: where it was read from (for relative
 * includes); without it, includes are ignored. `depth` bounds include loops.
 */
export function parseSettings(text: string, file?: string, into: Settings = {}, depth = 0): Settings {
  const stack: Settings[] = [into]
  for (const raw of text.split('\n')) {
    let line = stripComment(raw).trim()
    while (line) {
      const top = stack.at(-1)!
      if (line.startsWith('}')) {
        if (stack.length > 1) stack.pop()
        line = line.slice(1).trim()
        continue
      }
      const inc = /^include\s+(\S+)\s*$/.exec(line)
      if (inc) {
        if (file && depth < 10) {
          const pattern = isAbsolute(inc[1]) ? inc[1] : join(dirname(file), inc[1])
          for (const f of globFiles(pattern)) {
            try {
              parseSettings(readFileSync(f, 'utf8'), f, top, depth + 1)
            } catch {
              // unreadable: strongSwan skips it too
            }
          }
        }
        break
      }
      const sec = /^([^\s={}:]+)\s*(?::[^{]*)?\{/.exec(line)
      if (sec) {
        const existing = top[sec[1]]
        const child = isSection(existing) ? existing : {}
        top[sec[1]] = child
        stack.push(child)
        line = line.slice(sec[0].length).trim()
        continue
      }
      const kv = /^([^\s={}]+)\s*=\s*(.*)$/.exec(line)
      if (kv) {
        // A closing brace at the end of an unquoted value ("key = v }") closes the section.
        const m = /^([^"]*?)\s*(\}.*)$/.exec(kv[2])
        top[kv[1]] = unquote(m ? m[1] : kv[2])
        line = m ? m[2] : ''
        continue
      }
      break
    }
  }
  return into
}

/** Reads a settings file with its includes; an empty tree if it cannot be read. */
export function readSettings(file: string): Settings {
  try {
    return parseSettings(readFileSync(file, 'utf8'), file)
  } catch {
    return {}
  }
}

/** A value by its dotted path ("charon.plugins.vici.socket"). */
export function setting(tree: Settings, path: string): string | undefined {
  let cur: SettingsValue | undefined = tree
  for (const part of path.split('.')) {
    if (!isSection(cur)) return undefined
    cur = cur[part]
  }
  return typeof cur === 'string' ? cur : undefined
}

/** A section by its dotted path. */
export function section(tree: Settings, path: string): Settings | undefined {
  let cur: SettingsValue | undefined = tree
  for (const part of path.split('.')) {
    if (!isSection(cur)) return undefined
    cur = cur[part]
  }
  return isSection(cur) ? cur : undefined
}

/** Merges `from` into `into` (sections merged, values replaced), as a later file does. */
export function mergeSettings(into: Settings, from: Settings): Settings {
  for (const [k, v] of Object.entries(from)) {
    const cur = into[k]
    if (isSection(v) && isSection(cur)) mergeSettings(cur, v)
    else into[k] = isSection(v) ? mergeSettings({}, v) : v
  }
  return into
}
