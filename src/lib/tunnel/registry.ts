/** The tunnel drivers, one per type. */
import type {TunnelDriver, TunnelType} from './types.js'
import {ipsecDriver} from './ipsec/driver.js'
import {vxlanDriver} from './vxlan/driver.js'
import {wireguardDriver} from './wireguard/driver.js'

const DRIVERS: Partial<Record<TunnelType, TunnelDriver>> = {
  ipsec: ipsecDriver,
  vxlan: vxlanDriver,
  wireguard: wireguardDriver,
}

export function driverFor(type: TunnelType): TunnelDriver {
  const d = DRIVERS[type]
  if (!d) throw new Error(`internal error: no driver for tunnel type ${type}`)
  return d
}
