/**
 * A WireGuard interface's peers as apply sees them: one object per peer,
 * added, changed and removed one at a time (its tunnel's device is not made
 * again).
 */
import type {z} from 'zod/v4'

import type {WgPeer} from '../tunnel/types.js'
import * as v from '../validate.js'
import {type Attrs, Obj} from './object.js'
import type {SchemaParts} from './schema-parts.js'

/** A WireGuard interface's peer, as `netkit tunnel peer add` takes it (the name is its key). */
export const peerSchema = ({z, kindOf, list, net}: SchemaParts) =>
  z.strictObject({
    publicKey: z.string().min(1).describe("the peer's public key (netkit tunnel pubkey NAME there)"),
    endpoint: z.string().min(1).optional().describe('host:port where the peer listens (none: the peer connects here)'),
    allowedIps: kindOf(
      {type: 'list', item: net},
      list(net).refine((xs) => xs.length > 0, 'a peer needs at least one allowed-ip'),
    ).describe('what the peer may send and is routed to it (netkit routes each one outside the tunnel address prefix)'),
    keepalive: z.number().int().min(1).max(65535).optional().describe('persistent keepalive in seconds'),
    pskFile: z.string().min(1).optional().describe('a pre-shared key file (mode 0600)'),
  })

export type PeerEntry = z.output<ReturnType<typeof peerSchema>>

/** A peer's name: its key in a tunnel's `peers`. */
export const PEER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/
export const peerNameSchema = ({z}: SchemaParts) =>
  z.string().regex(PEER_NAME, "a peer name: 1 to 63 letters, digits, '.', '-' or '_', starting with a letter or digit (a host name)")

const isText = (x: unknown): x is string => typeof x === 'string' && x.length > 0

/**
 * A peer checked without zod (a fleet's host file lists one per host of the mesh): exactly what
 * peerSchema gives, its fields in the schema's order, or undefined to let the schema decide (and say what is wrong).
 */
export function peerEntryFast(x: unknown): PeerEntry | undefined {
  if (!v.isMap(x)) return undefined
  const e = x
  for (const k in e) if (k !== 'publicKey' && k !== 'endpoint' && k !== 'allowedIps' && k !== 'keepalive' && k !== 'pskFile') return undefined
  const {publicKey, endpoint, allowedIps, keepalive, pskFile} = e
  if (!isText(publicKey) || !Array.isArray(allowedIps) || allowedIps.length === 0) return undefined
  if ((endpoint !== undefined && !isText(endpoint)) || (pskFile !== undefined && !isText(pskFile))) return undefined
  if (keepalive !== undefined && !v.isIntIn(keepalive, 1, 65535)) return undefined
  const ips: v.Cidr[] = new Array(allowedIps.length)
  try {
    for (let i = 0; i < allowedIps.length; i++) {
      const a = allowedIps[i]
      if (typeof a !== 'string') return undefined
      ips[i] = v.network(a)
    }
  } catch {
    return undefined
  }
  const out: Record<string, unknown> = {publicKey}
  if (endpoint !== undefined) out.endpoint = endpoint
  out.allowedIps = ips
  if (keepalive !== undefined) out.keepalive = keepalive
  if (pskFile !== undefined) out.pskFile = pskFile
  return out as PeerEntry
}

/**
 * A peer of a WireGuard interface (a tunnel without `remote`): added, changed
 * and removed one at a time (its tunnel's device is not made again), compared
 * by its definition and whether the device has it.
 */
export class PeerObj extends Obj {
  get kind() {
    return 'wg-peer' as const
  }

  constructor(
    readonly tunnel: string,
    readonly name: string,
    readonly peer: WgPeer,
    /** The peer as text (peers.ts peerFingerprint). */
    readonly fingerprint: string,
    owned = true,
    /** Live: whether the device has it. Desired: true. */
    readonly running = true,
  ) {
    super(`${tunnel} ${name}`, owned)
  }

  get attrs(): Attrs {
    return {definition: this.fingerprint, runtime: this.running ? 'running' : 'down'}
  }

  get desc(): string {
    return `peer ${this.name} of WireGuard tunnel ${this.tunnel}`
  }
}
