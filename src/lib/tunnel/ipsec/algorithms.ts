/**
 * Default IPsec proposals: secure (AEAD, SHA-2 PRF, Curve25519 with PFS) and
 * what this host's strongSwan can actually compute. charon does not skip an
 * algorithm it has no plugin for: it negotiates it and then fails ("AES_GCM_16
 * not supported"), so the list only names what is installed. In preference order:
 *  - AES-GCM-256 (the gcm or openssl plugin; AES-NI makes it the fastest),
 *  - ChaCha20-Poly1305 (the chapoly plugin; the fastest in plain software),
 *  - AES-256-CBC with HMAC-SHA-256, the fallback every strongSwan has.
 * Two netkit hosts with different plugins still agree on the best common one.
 */
import {existsSync} from 'node:fs'

const PLUGIN_DIR = process.env.NETKIT_STRONGSWAN_PLUGINS ?? '/usr/lib/ipsec/plugins'

function hasPlugin(name: string): boolean {
  return existsSync(`${PLUGIN_DIR}/libstrongswan-${name}.so`)
}

export function hasGcm(): boolean {
  return hasPlugin('gcm') || hasPlugin('openssl')
}

export function hasChapoly(): boolean {
  return hasPlugin('chapoly') || hasPlugin('openssl')
}

export function defaultIkeProposals(): string {
  return [...(hasGcm() ? ['aes256gcm16-prfsha384-x25519'] : []), ...(hasChapoly() ? ['chacha20poly1305-prfsha256-x25519'] : []), 'aes256-sha256-x25519'].join(
    ',',
  )
}

export function defaultEspProposals(): string {
  return [...(hasGcm() ? ['aes256gcm16-x25519'] : []), ...(hasChapoly() ? ['chacha20poly1305-x25519'] : []), 'aes256-sha256-x25519'].join(',')
}
