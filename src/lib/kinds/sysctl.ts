/** Network sysctls as apply sees them: by path, with their value (set with `sysctl -w`, not iproute2). */
import {UsageError} from '../errors.js'
import {checkValue, resolveKey} from '../sysctl.js'
import {type Attrs, Obj} from './object.js'
import type {AddIssue, Path, SchemaParts} from './schema-parts.js'

/** The sysctls map's schema: NAME: VALUE, by the names "netkit sysctl set" takes. */
export const sysctlsSchema = ({z, map}: SchemaParts) => map(z.string(), z.union([z.string(), z.number()]).transform(String))

/** The same names and values as "netkit sysctl set" takes. */
export function checkSysctls(sysctls: Record<string, string>, prefix: Path, add: AddIssue): void {
  for (const [k, value] of Object.entries(sysctls)) {
    try {
      checkValue(resolveKey(k), value)
    } catch (error) {
      add({path: [...prefix, 'sysctls', k], message: error instanceof UsageError ? error.what : String(error)})
    }
  }
}

export class SysctlObj extends Obj {
  get kind() {
    return 'sysctl' as const
  }

  constructor(
    readonly path: string,
    readonly value: string,
    owned = true,
  ) {
    super(path, owned)
  }

  get attrs(): Attrs {
    return {value: this.value}
  }

  get desc(): string {
    return `sysctl ${this.path.replaceAll('/', '.')} = ${this.value}`
  }
}

/** A host file's sysctls as objects (names resolved to paths, values checked). */
export function sysctlsFromEntries(sysctls: Record<string, string>): SysctlObj[] {
  return Object.entries(sysctls).map(([k, value]) => {
    const key = resolveKey(k)
    return new SysctlObj(key.path, checkValue(key, value))
  })
}

/** The live sysctls read at `paths` (undefined: no such key). */
export function liveSysctls(paths: string[], values: (string | undefined)[]): SysctlObj[] {
  const out: SysctlObj[] = []
  for (const [i, value] of values.entries()) if (value !== undefined) out.push(new SysctlObj(paths[i], value))
  return out
}
