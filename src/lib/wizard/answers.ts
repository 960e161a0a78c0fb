/**
 * The wizard's answers: what the prompts collect, what `--answers FILE`
 * (YAML or JSON) provides, and what `--save-answers` writes (never a
 * secret). Validated with zod, every map strict (an unknown key, `__proto__`
 * and `constructor` included, is refused by name); an error names the field.
 * Everything that can be checked from the answers alone is checked here,
 * before the wizard runs anything.
 */
import {readFileSync} from 'node:fs'

import {z} from 'zod/v4'

import {UsageError} from '../errors.js'
import * as v from '../validate.js'
import {parseYaml, toYaml} from '../yaml.js'

const ip = z.string().superRefine((s, ctx) => {
  try {
    v.ipAddress(s)
  } catch {
    ctx.addIssue({code: 'custom', message: 'not an IP address'})
  }
})

const network = z.string().superRefine((s, ctx) => {
  try {
    v.network(s)
  } catch (error) {
    ctx.addIssue({code: 'custom', message: error instanceof UsageError ? error.line : 'not a network (CIDR)'})
  }
})

const name = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,11}$/i, 'use 1 to 12 letters, digits, - or _')

export const PeerSchema = z.strictObject({
  name,
  address: ip,
  subnets: z.array(network).default([]),
})

export const AnswersSchema = z
  .strictObject({
    version: z.literal(1).default(1),
    role: z.enum(['host-to-host', 'site-to-site', 'mesh']),
    /** Tunnel name (host-to-host, site-to-site). */
    name: name.optional(),
    local: ip,
    /** The peer's address (host-to-host, site-to-site). */
    remote: ip.optional(),
    localSubnets: z.array(network).default([]),
    remoteSubnets: z.array(network).default([]),
    /** Mesh: every other host. */
    peers: z.array(PeerSchema).default([]),
    auth: z.discriminatedUnion('method', [
      z.strictObject({method: z.literal('psk-generate')}),
      z.strictObject({method: z.literal('psk-file'), pskFile: z.string().min(1)}),
      z.strictObject({method: z.literal('x509'), cert: z.string().min(1), key: z.string().min(1), ca: z.string().min(1)}),
      /** A new CA and certificates for this host and its peers, made here with strongSwan's pki. */
      z.strictObject({method: z.literal('x509-generate')}),
    ]),
    profile: z.enum(['secure', 'compat']).default('secure'),
    /** CHILD_SA rekey time, seconds. */
    rekeyTime: z.number().int().min(60).max(604800).default(3600),
    /** Dead peer detection, seconds (0: off). */
    dpd: z.number().int().min(0).max(86400).default(30),
    apply: z.boolean().default(true),
  })
  .superRefine((a, ctx) => {
    if (a.role !== 'mesh') {
      if (!a.name) ctx.addIssue({code: 'custom', path: ['name'], message: 'required for this role'})
      if (!a.remote) ctx.addIssue({code: 'custom', path: ['remote'], message: 'required for this role'})
    } else if (a.peers.length === 0) {
      ctx.addIssue({code: 'custom', path: ['peers'], message: 'a mesh needs at least one peer'})
    }
    // The two ends of each tunnel: one family, two addresses (as "tunnel add" checks them, in the answers' words).
    const ends: [string, string | undefined][] = a.role === 'mesh' ? a.peers.map((p, i) => [`peers.${i}.address`, p.address]) : [['remote', a.remote]]
    for (const [path, remote] of ends) {
      if (!remote) continue
      try {
        const [l, r] = [v.ipAddress(a.local), v.ipAddress(remote)]
        if (l.family !== r.family)
          ctx.addIssue({
            code: 'custom',
            path: path.split('.'),
            message: `${r.ip} is IPv${r.family} and this host's address (local) ${l.ip} is IPv${l.family}: use addresses of one family`,
          })
        else if (l.ip === r.ip)
          ctx.addIssue({code: 'custom', path: path.split('.'), message: `${r.ip} is this host's own address (local): give the peer's address`})
      } catch {
        // already reported as invalid
      }
    }
    const seen = new Map<string, number>()
    a.peers.forEach((p, i) => {
      if (seen.has(p.name))
        ctx.addIssue({
          code: 'custom',
          path: ['peers', i, 'name'],
          message: `${p.name} is also the name of peer ${seen.get(p.name)! + 1}: give each peer its own name`,
        })
      seen.set(p.name, i)
    })
    if (a.role === 'site-to-site') {
      if (a.localSubnets.length === 0) ctx.addIssue({code: 'custom', path: ['localSubnets'], message: 'site to site needs the subnets behind this host'})
      if (a.remoteSubnets.length === 0) ctx.addIssue({code: 'custom', path: ['remoteSubnets'], message: 'site to site needs the subnets behind the peer'})
    }
    const remote = [...a.remoteSubnets, ...a.peers.flatMap((p) => p.subnets)]
    for (const l of a.localSubnets) {
      for (const r of remote) {
        try {
          if (v.overlaps(l, r)) ctx.addIssue({code: 'custom', path: ['localSubnets'], message: `${l} overlaps remote subnet ${r}`})
        } catch {
          // already reported as invalid
        }
      }
    }
  })

export type Answers = z.infer<typeof AnswersSchema>

/** Validates answers; the first problem becomes a UsageError naming the field (or the unknown key). */
export function validateAnswers(data: unknown, source = 'answers'): Answers {
  const r = AnswersSchema.safeParse(data)
  if (r.success) return r.data
  const issue = r.error.issues[0]
  if (issue.code === 'unrecognized_keys') {
    const at = issue.path.length ? ` in ${issue.path.join('.')}` : ''
    const keys = issue.keys.map((k) => `"${k}"`).join(', ')
    throw new UsageError(
      `${source}: unknown key${issue.keys.length > 1 ? 's' : ''} ${keys}${at}`,
      'remove it, or check its spelling (see "netkit wizard --help" for the answers file)',
      'E_ANSWERS',
    )
  }
  const field = issue.path.length ? issue.path.join('.') : '(top level)'
  throw new UsageError(`${source}: ${field}: ${issue.message}`, 'fix that field (see "netkit wizard --help" for the answers file)', 'E_ANSWERS')
}

export function readAnswersFile(path: string): Answers {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    throw new UsageError(`answers file ${path} cannot be read`, 'give the path of a YAML or JSON file', 'E_ANSWERS')
  }
  let data: unknown
  try {
    data = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text, path)
  } catch (error) {
    throw new UsageError(
      `answers file ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${String(error instanceof Error ? error.message : error).split('\n')[0]}`,
      'fix its syntax',
      'E_ANSWERS',
    )
  }
  return validateAnswers(data, path)
}

/** Answers as YAML, for --save-answers and for the other side. Never holds a secret. */
export function answersToYaml(a: Answers): string {
  return `# netkit wizard answers (no secrets: the PSK travels separately)\n${toYaml(a)}`
}

/** The answers the peer needs to set up the other end of a host-to-host or site-to-site tunnel. */
export function peerAnswers(a: Answers, pskFileOnPeer?: string): Answers {
  if (a.role === 'mesh') throw new Error('a mesh peer needs its own answers')
  return {
    ...a,
    local: a.remote!,
    remote: a.local,
    localSubnets: a.remoteSubnets,
    remoteSubnets: a.localSubnets,
    auth:
      a.auth.method === 'x509'
        ? a.auth
        : a.auth.method === 'x509-generate'
          ? {method: 'x509', cert: `/root/netkit-pki/${a.name}-peer.crt`, key: `/root/netkit-pki/${a.name}-peer.key`, ca: '/root/netkit-pki/ca.crt'}
          : {method: 'psk-file', pskFile: pskFileOnPeer ?? `/root/${a.name}.psk`},
  }
}
