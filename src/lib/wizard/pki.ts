/**
 * Certificates made on this host with strongSwan's pki, when the wizard is
 * asked for them: a new CA (Ed25519), a certificate for this host and one for
 * each peer, their addresses as subjectAltNames. Keys are written with mode
 * 0600 under the scope's pki/ directory; the peer's key and certificate, and
 * the CA certificate, are what the person copies to the peer.
 */
import {existsSync, readdirSync} from 'node:fs'
import {dirname, join, resolve} from 'node:path'

import {type Runner, Secret} from '../runner.js'
import type {TunnelDef} from '../tunnel/types.js'

/** Where the wizard keeps what it makes, in a scope (the root namespace's config directory, or a namespace's). */
export const pkiDir = (scopeDir: string) => join(scopeDir, 'pki')
/** This host's key and certificate are host.*; a peer's are named after its tunnel. */
const HOST = 'host'
const peerBase = (tunnel: string) => `${tunnel}-peer`

export interface Issued {
  ca: string
  cert: string
  key: string
  /** Per peer: its certificate and key, to copy there. */
  peers: {name: string; cert: string; key: string}[]
  /** The files this run made (to remove if the wizard is cancelled). */
  created: string[]
}

const made: string[] = []

async function pki(runner: Runner, args: string[]): Promise<string> {
  const r = await runner.run({tool: 'pki', args, netns: null, object: 'certificate'})
  return r.stdout
}

async function keyFile(runner: Runner, path: string): Promise<void> {
  if (existsSync(path)) return
  const key = await pki(runner, ['--gen', '--type', 'ed25519', '--outform', 'pem'])
  if (key) runner.addSecret(key.trim())
  runner.writeFile(path, new Secret(key))
  if (!runner.dryRun) made.push(path)
}

async function issue(runner: Runner, dir: string, base: string, ip: string): Promise<{cert: string; key: string}> {
  const key = join(dir, `${base}.key`)
  const cert = join(dir, `${base}.crt`)
  await keyFile(runner, key)
  if (!existsSync(cert)) {
    const pem = await pki(runner, [
      '--issue',
      '--in',
      key,
      '--type',
      'priv',
      '--cacert',
      join(dir, 'ca.crt'),
      '--cakey',
      join(dir, 'ca.key'),
      '--dn',
      `CN=${ip}`,
      '--san',
      ip,
      '--lifetime',
      '1825',
      '--outform',
      'pem',
    ])
    runner.writeFile(cert, pem, {mode: 0o644, dirMode: 0o700})
    if (!runner.dryRun) made.push(cert)
  }
  return {cert, key}
}

export async function issueCertificates(
  runner: Runner,
  dir: string,
  me: {name: typeof HOST; ip: string},
  peers: {name: string; ip: string}[],
): Promise<Issued> {
  made.length = 0
  await keyFile(runner, join(dir, 'ca.key'))
  const ca = join(dir, 'ca.crt')
  if (!existsSync(ca)) {
    const pem = await pki(runner, [
      '--self',
      '--ca',
      '--in',
      join(dir, 'ca.key'),
      '--type',
      'priv',
      '--dn',
      `CN=netkit CA of ${me.ip}`,
      '--lifetime',
      '3650',
      '--outform',
      'pem',
    ])
    runner.writeFile(ca, pem, {mode: 0o644, dirMode: 0o700})
    if (!runner.dryRun) made.push(ca)
  }
  const mine = await issue(runner, dir, me.name, me.ip)
  const out: Issued = {ca, ...mine, peers: [], created: made}
  for (const p of peers) out.peers.push({name: p.name, ...(await issue(runner, dir, peerBase(p.name), p.ip))})
  return out
}

/** Removes what issueCertificates made (the wizard was cancelled or failed), and the directory if empty. */
export function removeIssued(runner: Runner, issued: Issued | undefined, dir: string): void {
  runner.removeFiles(issued?.created ?? [])
  try {
    if (readdirSync(dir).length === 0) runner.removeFiles([dir], {recursive: true})
  } catch {
    // not there
  }
}

/** True if the tunnel authenticates with what the wizard made in this scope. */
function usesIssued(def: TunnelDef, dir: string): boolean {
  const i = def.ipsec
  return Boolean(i && [i.cert, i.key, i.ca].some((f) => f !== undefined && dirname(resolve(f)) === resolve(dir)))
}

/**
 * The files the wizard made for a tunnel that is being deleted: the peer's key
 * and certificate (named after the tunnel), and this host's and the CA's once
 * no other tunnel of the scope uses them. Nothing for a tunnel whose
 * certificates the person gave (they are not netkit's).
 */
export function issuedFor(def: TunnelDef, scopeDir: string, others: TunnelDef[]): string[] {
  const dir = pkiDir(scopeDir)
  if (!usesIssued(def, dir)) return []
  const files = [`${peerBase(def.name)}.key`, `${peerBase(def.name)}.crt`]
  if (!others.some((o) => o.name !== def.name && usesIssued(o, dir))) files.push(`${HOST}.key`, `${HOST}.crt`, 'ca.key', 'ca.crt')
  return files.map((f) => join(dir, f))
}

/** Removes what the wizard made for a deleted tunnel (issuedFor), and pki/ once it is empty. */
export function removeIssuedFor(runner: Runner, def: TunnelDef, scopeDir: string, others: TunnelDef[]): void {
  const files = issuedFor(def, scopeDir, others)
  if (files.length === 0) return
  removeIssued(runner, {ca: '', cert: '', key: '', peers: [], created: files}, pkiDir(scopeDir))
}
