/**
 * The host file's reference (docs/host-file.md), written from the schema
 * itself so that it cannot drift: every field, its type, its default and its
 * description. `scripts/gen-docs.mjs` writes it; a unit test fails when the
 * committed page differs.
 */
import type {z} from 'zod/v4'

import {HostFileSchema} from './schema.js'
import {schemaKind} from '../kinds/schema-kinds.js'

type Def = {
  type: string
  innerType?: z.ZodType
  defaultValue?: unknown
  shape?: Record<string, z.ZodType>
  entries?: Record<string, string>
  options?: z.ZodType[]
  values?: unknown[]
  in?: z.ZodType
}
type Field = {name: string; type: string; required: boolean; default?: string; description: string; child?: {title: string; schema: z.ZodType}}

const def = (s: z.ZodType) => s._zod.def as unknown as Def

/** The type in words, and the object schema under it (a list or map of objects), if any. */
function describeType(s: z.ZodType): {type: string; object?: z.ZodType; container?: 'list' | 'map'} {
  const kind = schemaKind(s)
  if (kind?.type === 'list' && kind.item) {
    const inner = describeType(kind.item)
    return {type: `list of ${inner.object ? 'entries' : inner.type}`, object: inner.object, container: 'list'}
  }
  if (kind?.type === 'map' && kind.value) {
    const inner = describeType(kind.value)
    return {type: `map of NAME: ${inner.object ? 'entry' : inner.type}`, object: inner.object, container: 'map'}
  }
  if (kind) return {type: kind.type}
  const d = def(s)
  switch (d.type) {
    case 'optional':
    case 'nullable':
    case 'default':
      return describeType(d.innerType!)
    case 'pipe':
      return describeType(d.in!)
    case 'object':
      return {type: 'entry', object: s}
    case 'enum':
      return {
        type: Object.values(d.entries!)
          .map((x) => `\`${x}\``)
          .join(', '),
      }
    case 'literal':
      return {type: d.values!.map((x) => `\`${String(x)}\``).join(', ')}
    case 'union':
      return {type: d.options!.map((o) => describeType(o).type).join(' or ')}
    case 'number': {
      const n = s as unknown as {isInt: boolean; minValue: number | null; maxValue: number | null}
      const range =
        n.minValue !== null && n.maxValue !== null && Number.isFinite(n.minValue) && Number.isFinite(n.maxValue) ? ` ${n.minValue}-${n.maxValue}` : ''
      return {type: `${n.isInt ? 'integer' : 'number'}${range}`}
    }
    default:
      return {type: d.type}
  }
}

function fields(object: z.ZodType, path: string): Field[] {
  return Object.entries(def(object).shape!).map(([name, s]) => {
    let required = true
    let dflt: string | undefined
    for (let cur: z.ZodType = s; ;) {
      const d = def(cur)
      if (d.type === 'optional' || d.type === 'nullable') required = false
      else if (d.type === 'default') {
        required = false
        const v = typeof d.defaultValue === 'function' ? (d.defaultValue as () => unknown)() : d.defaultValue
        dflt = Array.isArray(v) ? (v.length ? JSON.stringify(v) : '[]') : typeof v === 'object' && v !== null ? '{}' : JSON.stringify(v)
      } else break
      cur = d.innerType!
    }
    const t = describeType(s)
    const title = `${path}${name}${t.container === 'list' ? '[]' : t.container === 'map' ? '.NAME' : ''}`
    return {
      name,
      type: t.type,
      required,
      default: dflt,
      description: (s as {description?: string}).description ?? '',
      child: t.object ? {title, schema: t.object} : undefined,
    }
  })
}

function section(title: string, object: z.ZodType, out: string[], seen: Set<object>): void {
  const list = fields(object, title === 'Top level' ? '' : `${title}.`)
  out.push(`## ${title}`, '', '| field | type | required | default | what it is |', '| --- | --- | --- | --- | --- |')
  for (const f of list)
    out.push(
      `| \`${f.name}\` | ${f.type} | ${f.required ? 'yes' : ''} | ${f.default === undefined ? '' : `\`${f.default}\``} | ${f.description.replaceAll('|', '\\|').replaceAll('\n', ' ')} |`,
    )
  out.push('')
  for (const f of list) {
    if (!f.child) continue
    // namespaces.NAME holds what the top level holds: said once.
    const keys = Object.keys(def(f.child.schema).shape!)
    if (keys.every((k) => seen.has(def(f.child!.schema)) || TOP_KEYS().includes(k))) {
      out.push(`## ${f.child.title}`, '', 'The same fields as the top level, except `version`, `tables` and `namespaces`.', '')
      continue
    }
    seen.add(def(f.child.schema))
    section(f.child.title, f.child.schema, out, seen)
  }
}

const TOP_KEYS = () => Object.keys(def(HostFileSchema as unknown as z.ZodType).shape!)

export function hostFileReference(): string {
  const out = [
    '# Host file reference',
    '',
    '<!-- Generated from src/lib/apply/schema.ts by scripts/gen-docs.mjs: do not edit by hand. -->',
    '',
    'The file `netkit apply`, `netkit diff` and `netkit export` read and write, in YAML or JSON (a `.json` name). See [apply](apply.md) for what apply does with it.',
    '',
  ]
  section('Top level', HostFileSchema as unknown as z.ZodType, out, new Set([def(HostFileSchema as unknown as z.ZodType)]))
  return out.join('\n')
}
