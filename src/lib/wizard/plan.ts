/**
 * From answers to tunnel inputs: one tunnel for host-to-host and
 * site-to-site, one per peer for a mesh; the security profile picks the
 * proposals.
 */
import type {TunnelInput} from '../tunnel/define.js'
import {defaultEspProposals, defaultIkeProposals} from '../tunnel/ipsec/algorithms.js'
import type {Answers} from './answers.js'

export const PROFILES = {
  secure: {
    label: 'secure (AES-GCM, SHA-2, Curve25519/ECP, PFS)',
    proposals: defaultIkeProposals(),
    espProposals: defaultEspProposals(),
  },
  compat: {
    label: 'compatibility for old peers (AES-CBC with SHA-2 or SHA-1, MODP-2048)',
    proposals: 'aes256-sha256-modp2048,aes128-sha1-modp2048',
    espProposals: 'aes256-sha256-modp2048,aes128-sha1-modp2048',
    warning: 'the compatibility profile allows SHA-1 and finite-field Diffie-Hellman: use it only for peers that cannot do better, and move them to the secure profile',
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
