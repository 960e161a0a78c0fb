/**
 * Interface addresses as apply sees them: made from a host file's entry or
 * from `ip -j addr show`; netkit's are known from the ledger (iproute2 cannot
 * mark an address).
 */
import type {z} from 'zod/v4'

import {addrsOf, type IpAddrLink} from '../iproute2/addr.js'
import type {OwnedEntry} from '../ownership.js'
import type {BatchLine} from '../runner.js'
import {type Attrs, line, Obj, TUNNEL_DEV} from './object.js'
import type {SchemaParts} from './schema-parts.js'

/** An address entry's schema. */
export const addrSchema = ({z, ifname, cidrAddr}: SchemaParts) =>
  z.strictObject({dev: ifname.describe('the interface'), address: cidrAddr.describe('the address with its prefix')})

export type AddrEntry = z.output<ReturnType<typeof addrSchema>>

export class AddrObj extends Obj {
  /** Live: an IPv4 secondary address, which the kernel deletes with the primary of its subnet. */
  secondary = false

  get kind() {
    return 'addr' as const
  }

  constructor(
    readonly dev: string,
    readonly cidr: string,
    owned = true,
  ) {
    super(`${dev} ${cidr}`, owned)
  }

  get attrs(): Attrs {
    return {}
  }

  get desc(): string {
    return `address ${this.cidr} on ${this.dev}`
  }

  override get add(): BatchLine[] {
    return [line(['addr', 'add', this.cidr, 'dev', this.dev], this.desc)]
  }

  override get del(): BatchLine[] {
    return [line(['addr', 'del', this.cidr, 'dev', this.dev], this.desc)]
  }

  override get entry(): Record<string, unknown> {
    return {dev: this.dev, address: this.cidr}
  }
}

export const addrFromEntry = (a: AddrEntry) => new AddrObj(a.dev, a.address.cidr)

/** The live addresses, from `ip -j addr show`; `ledger`: the ledger's addresses of the namespace (netkit's). */
export function liveAddrs(rows: IpAddrLink[], ledger: Record<string, OwnedEntry>): AddrObj[] {
  return addrsOf(rows, (ifname, cidr) => Boolean(ledger[`${ifname} ${cidr}`])).map(({ifname, cidr, secondary, owned}) => {
    const o = new AddrObj(ifname, cidr, owned)
    o.secondary = secondary
    o.auto = cidr.startsWith('127.') || cidr === '::1/128' || cidr.startsWith('fe80:') || TUNNEL_DEV.test(ifname)
    return o
  })
}
