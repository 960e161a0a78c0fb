/** Network namespaces as apply sees them (netkit's are known from the ledger). */
import {type Attrs, Obj} from './object.js'

export class NetnsObj extends Obj {
  get kind() {
    return 'netns' as const
  }

  constructor(name: string, owned = true) {
    super(name, owned)
  }

  get attrs(): Attrs {
    return {}
  }

  get desc(): string {
    return `namespace ${this.key}`
  }
}

/** The named namespaces; `mine`: the ledger's namespaces. */
export const liveNamespaces = (names: string[], mine: Record<string, unknown>): NetnsObj[] => names.map((n) => new NetnsObj(n, Object.hasOwn(mine, n)))
