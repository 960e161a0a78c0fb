/**
 * Proxy ARP entries (`ip neigh ... proxy`) as apply sees them, marked with
 * netkit's protocol.
 */
import type {z} from 'zod/v4'

import {type IpNeigh, proxiesOf} from '../iproute2/neigh.js'
import {NETKIT_PROTO} from '../ownership.js'
import type {BatchLine} from '../runner.js'
import {type Attrs, line, Obj} from './object.js'
import type {SchemaParts} from './schema-parts.js'

/** A proxy ARP entry's schema. */
export const proxySchema = ({z, ip, ifname}: SchemaParts) =>
  z.strictObject({address: ip.describe('the address to answer for'), dev: ifname.describe('the interface to answer on')})

export type ProxyEntry = z.output<ReturnType<typeof proxySchema>>

export class ProxyObj extends Obj {
  get kind() {
    return 'proxy' as const
  }

  constructor(
    readonly address: string,
    readonly dev: string,
    owned = true,
  ) {
    super(`${address} ${dev}`, owned)
  }

  get attrs(): Attrs {
    return {}
  }

  get desc(): string {
    return `proxy entry ${this.address} on ${this.dev}`
  }

  override get add(): BatchLine[] {
    return [line(['neigh', 'add', 'proxy', this.address, 'dev', this.dev, 'protocol', String(NETKIT_PROTO)], this.desc)]
  }

  override get del(): BatchLine[] {
    return [line(['neigh', 'del', 'proxy', this.address, 'dev', this.dev], this.desc)]
  }

  override get entry(): Record<string, unknown> {
    return {address: this.address, dev: this.dev}
  }
}

export const proxyFromEntry = (p: ProxyEntry) => new ProxyObj(p.address.ip, p.dev)

/** The live proxy entries, from `ip -j neigh show proxy`. */
export const liveProxies = (rows: IpNeigh[]): ProxyObj[] => proxiesOf(rows).map((n) => new ProxyObj(n.address, n.dev, n.owned))
