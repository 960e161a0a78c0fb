/**
 * Certificates made on this host with strongSwan's pki, when the wizard is
 * asked for them: a new CA (Ed25519), a certificate for this host and one for
 * each peer, their addresses as subjectAltNames. Keys are written with mode
 * 0600 under the scope's pki/ directory; the peer's key and certificate, and
 * the CA certificate, are what the person copies to the peer.
 */
import {existsSync, readdirSync, rmSync} from 'node:fs'
import {join} from 'node:path'

import {writeFileAtomic, writeSecretFile} from '../files.js'
import type {Runner} from '../runner.js'

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
  if (!runner.dryRun) {
    writeSecretFile(path, key)
    made.push(path)
  }
}

async function issue(runner: Runner, dir: string, base: string, ip: string): Promise<{cert: string; key: string}> {
  const key = join(dir, `${base}.key`)
  const cert = join(dir, `${base}.crt`)
  await keyFile(runner, key)
  if (!existsSync(cert)) {
    const pem = await pki(runner, ['--issue', '--in', key, '--type', 'priv', '--cacert', join(dir, 'ca.crt'), '--cakey', join(dir, 'ca.key'), '--dn', `CN=${ip}`, '--san', ip, '--lifetime', '1825', '--outform', 'pem'])
    if (!runner.dryRun) {
      writeFileAtomic(cert, pem, 0o644, 0o700)
      made.push(cert)
    }
  }
  return {cert, key}
}

export async function issueCertificates(runner: Runner, dir: string, me: {name: string; ip: string}, peers: {name: string; ip: string}[]): Promise<Issued> {
  made.length = 0
  await keyFile(runner, join(dir, 'ca.key'))
  const ca = join(dir, 'ca.crt')
  if (!existsSync(ca)) {
    const pem = await pki(runner, ['--self', '--ca', '--in', join(dir, 'ca.key'), '--type', 'priv', '--dn', `CN=netkit CA of ${me.ip}`, '--lifetime', '3650', '--outform', 'pem'])
    if (!runner.dryRun) {
      writeFileAtomic(ca, pem, 0o644, 0o700)
      made.push(ca)
    }
  }
  const mine = await issue(runner, dir, me.name, me.ip)
  const out: Issued = {ca, ...mine, peers: [], created: made}
  for (const p of peers) out.peers.push({name: p.name, ...(await issue(runner, dir, `${p.name}-peer`, p.ip))})
  return out
}

/** Removes what issueCertificates made (the wizard was cancelled or failed), and the directory if empty. */
export function removeIssued(issued: Issued | undefined, dir: string): void {
  for (const f of issued?.created ?? []) rmSync(f, {force: true})
  try {
    if (readdirSync(dir).length === 0) rmSync(dir, {recursive: true, force: true})
  } catch {
    // not there
  }
}
