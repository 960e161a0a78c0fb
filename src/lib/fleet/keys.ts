/**
 * The fleet's keys, and where each lives.
 *
 * WireGuard: each host's private key is made on the host (`netkit tunnel
 * pubkey TUNNEL`) and never leaves it. Only public keys travel: gathered once
 * into pubkeys.yaml (host name -> public key), a file to review and keep, and
 * the render uses that file alone. A host of the inventory missing from it is
 * an error naming the host, never a smaller mesh.
 *
 * IPsec: one pre-shared key per pair of hosts, made on the controller from
 * node:crypto's random bytes (256 bits), written 0600 into both ends' bundles
 * (OUTDIR/a/secrets/b.psk and OUTDIR/b/secrets/a.psk hold the same key). The
 * bundles are where the keys are kept: a re-render reads them back, so an
 * unchanged inventory renders byte-identical files; a pair that is no longer a
 * pair loses its key.
 */
import {randomBytes} from 'node:crypto'

import {NetkitError, UsageError} from '../errors.js'
import {parseYaml} from '../yaml.js'

const WG_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/

/** pubkeys.yaml: host -> key, for the inventory's hosts (others are ignored: a host that left). */
export function readPubkeys(text: string, source: string, hosts: string[], tunnel: string): Map<string, string> {
  let data: unknown
  try {
    data = parseYaml(text, source)
  } catch (error) {
    throw new UsageError(`${source} is not valid YAML: ${String(error instanceof Error ? error.message : error).split('\n')[0]}`, 'fix its syntax', 'E_FILE')
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw new UsageError(
      `${source} is not a map of host names to public keys`,
      `write it as "NAME: KEY" lines, each key from "netkit tunnel pubkey ${tunnel}" on that host`,
      'E_PUBKEYS',
    )
  const map = data as Record<string, unknown>
  const out = new Map<string, string>()
  const owner = new Map<string, string>()
  for (const host of hosts) {
    if (!Object.hasOwn(map, host) || map[host] === null || map[host] === undefined) {
      throw new UsageError(
        `${source}: host ${host} has no public key`,
        `run "netkit tunnel pubkey ${tunnel}" on ${host} and add "${host}: KEY" to ${source} (the mesh is never rendered without a host)`,
        'E_PUBKEYS',
      )
    }
    const key = String(map[host]).trim()
    if (!WG_KEY.test(key))
      throw new UsageError(
        `${source}: ${host}: not a WireGuard public key`,
        `it is 44 characters of base64, as "netkit tunnel pubkey ${tunnel}" prints on ${host}`,
        'E_PUBKEYS',
      )
    const other = owner.get(key)
    if (other)
      throw new UsageError(
        `${source}: ${host}: the same public key as host ${other}`,
        `each host makes its own key pair: run "netkit tunnel pubkey ${tunnel}" on ${host} and copy what it prints`,
        'E_PUBKEYS',
      )
    owner.set(key, host)
    out.set(host, key)
  }
  return out
}

/** A new pre-shared key: 256 random bits, in strongSwan's base64 form ("0s..."). */
export function newPsk(): string {
  return `0s${randomBytes(32).toString('base64')}`
}

const PSK = /^0s[A-Za-z0-9+/]{43}=$/

/**
 * The key of the pair a-b: the one both bundles hold, or the one that one
 * holds (the other end's bundle was removed), or a new one. Two different keys
 * are refused: which is in use cannot be known.
 */
export function pairPsk(a: {host: string; text?: string; path: string}, b: {host: string; text?: string; path: string}): {psk: string; made: boolean} {
  const clean = (t?: string) => {
    const s = t?.replace(/\r?\n$/, '')
    // netkit's own form, or a key someone put there (at least 16 characters, as "tunnel add" takes).
    return s && (PSK.test(s) || (s.length >= 16 && /^[\x21-\x7e]+$/.test(s))) ? s : undefined
  }
  const ka = clean(a.text)
  const kb = clean(b.text)
  if (ka && kb && ka !== kb) {
    throw new NetkitError('E_CONFLICT', `the keys of the pair ${a.host}-${b.host} differ (${a.path} and ${b.path})`, {
      fix: `remove the one not in use (both ends get the other), or both to make a new key`,
    })
  }
  const found = ka ?? kb
  return found ? {psk: found, made: false} : {psk: newPsk(), made: true}
}
