/** Every check the doctor knows, in the order they are shown. */
import {hostChecks} from './checks/host.js'
import {ipsecChecks} from './checks/ipsec.js'
import {wireguardChecks} from './checks/wireguard.js'
import {kernelChecks} from './checks/kernel.js'
import {leftoverChecks} from './checks/leftovers.js'
import {pathChecks} from './checks/paths.js'
import {toolChecks} from './checks/tools.js'
import type {Check} from './types.js'

export const CHECKS: Check[] = [...hostChecks, ...kernelChecks, ...toolChecks, ...ipsecChecks, ...wireguardChecks, ...pathChecks, ...leftoverChecks]

export function checkIds(): string[] {
  return CHECKS.map((c) => c.id)
}
