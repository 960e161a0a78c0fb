/**
 * From answers to tunnel inputs: one tunnel for host-to-host and
 * site-to-site, one per peer for a mesh; the security profile picks the
 * proposals.
 */
import type {TunnelInput} from '../tunnel/define.js'
import {defaultEspProposals, defaultIkeProposals} from '../tunnel/ipsec/algorithms.js'
import type {Answers} from './answers.js'

const CIPHERS: [RegExp, (m: RegExpExecArray) => string][] = [
  [/^aes(\d+)gcm(?:8|12|16)?$/, (m) => `AES-${m[1]}-GCM`],
  [/^aes(\d+)ccm(?:8|12|16)?$/, (m) => `AES-${m[1]}-CCM`],
  [/^chacha20poly1305$/, () => 'ChaCha20-Poly1305'],
  [/^aes(\d+)$/, (m) => `AES-${m[1]}-CBC`],
]
const INTEGRITY: [RegExp, (m: RegExpExecArray) => string][] = [[/^sha(1|256|384|512)$/, (m) => `HMAC-SHA-${m[1]}`]]
const GROUPS: [RegExp, (m: RegExpExecArray) => string][] = [
  [/^(?:x25519|curve25519)$/, () => 'Curve25519'],
  [/^(?:x448|curve448)$/, () => 'Curve448'],
  [/^ecp(\d+)$/, (m) => `ECP-${m[1]}`],
  [/^modp(\d+)$/, (m) => `MODP-${m[1]}`],
]
const named = (table: [RegExp, (m: RegExpExecArray) => string][], token: string): string | undefined => {
  for (const [re, name] of table) {
    const m = re.exec(token)
    if (m) return name(m)
  }
  return undefined
}

/**
 * What a profile writes, in words, from its proposal lists themselves (so the
 * label cannot promise an algorithm the file does not hold): the ciphers in
 * preference order and the key exchange groups, e.g. "ChaCha20-Poly1305, then
 * AES-256-CBC with HMAC-SHA-256; Curve25519".
 */
export function describeProposals(...lists: string[]): string {
  const ciphers: string[] = []
  const groups: string[] = []
  for (const proposal of lists.flatMap((l) => l.split(','))) {
    const tokens = proposal.split('-')
    const cipher = tokens.map((t) => named(CIPHERS, t)).find(Boolean) ?? tokens[0]
    const integrity = cipher.endsWith('-CBC') ? tokens.map((t) => named(INTEGRITY, t)).find(Boolean) : undefined
    const c = integrity ? `${cipher} with ${integrity}` : cipher
    if (!ciphers.includes(c)) ciphers.push(c)
    for (const g of tokens.map((t) => named(GROUPS, t)).filter((x): x is string => Boolean(x))) if (!groups.includes(g)) groups.push(g)
  }
  return `${ciphers.join(', then ')}; ${groups.join(' or ')}`
}

const secure = {proposals: defaultIkeProposals(), espProposals: defaultEspProposals()}
const compat = {proposals: 'aes256-sha256-modp2048,aes128-sha1-modp2048', espProposals: 'aes256-sha256-modp2048,aes128-sha1-modp2048'}

export const PROFILES = {
  secure: {
    label: `secure (${describeProposals(secure.espProposals, secure.proposals)}, with PFS)`,
    ...secure,
  },
  compat: {
    label: `compatibility for old peers (${describeProposals(compat.espProposals, compat.proposals)})`,
    ...compat,
    warning:
      'the compatibility profile allows SHA-1 and finite-field Diffie-Hellman: use it only for peers that cannot do better, and move them to the secure profile',
  },
} as const

export function tunnelInputs(a: Answers, netns?: string): TunnelInput[] {
  const profile = PROFILES[a.profile]
  const common = {
    type: 'ipsec' as const,
    netns,
    local: a.local,
    localSubnet: a.localSubnets,
    proposals: profile.proposals,
    espProposals: profile.espProposals,
    rekeyTime: a.rekeyTime,
    dpd: a.dpd,
    ...(a.auth.method === 'psk-file' ? {pskFile: a.auth.pskFile} : {}),
    ...(a.auth.method === 'x509' ? {cert: a.auth.cert, key: a.auth.key, ca: a.auth.ca} : {}),
  }
  if (a.role === 'mesh') {
    return a.peers.map((p) => ({...common, name: p.name, remote: p.address, remoteSubnet: p.subnets}))
  }
  return [{...common, name: a.name!, remote: a.remote!, remoteSubnet: a.remoteSubnets}]
}
