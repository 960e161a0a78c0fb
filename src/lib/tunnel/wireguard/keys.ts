/**
 * WireGuard keys, made in-process (X25519 from node:crypto): the same keys
 * `wg genkey`/`wg pubkey` make, and no key ever on an argv. A tunnel's
 * private key lives in secrets/<name>.key (mode 0600), base64 like wg's.
 */
import {createPrivateKey, createPublicKey, generateKeyPairSync} from 'node:crypto'
import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {NetkitError} from '../../errors.js'
import {readSecretFile} from '../../files.js'
import {type Runner, Secret} from '../../runner.js'
import {secretsDir} from '../store.js'

/** PKCS#8 DER prefix of an X25519 private key (RFC 8410); the 32 key bytes follow. */
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex')

const fromB64url = (s: string) => Buffer.from(s, 'base64url').toString('base64')

export function generatePrivateKey(): string {
  const {privateKey} = generateKeyPairSync('x25519')
  return fromB64url(privateKey.export({format: 'jwk'}).d!)
}

/** The public key of a base64 private key, as `wg pubkey` prints it. */
export function publicKeyOf(privateKey: string): string {
  const raw = Buffer.from(privateKey, 'base64')
  if (raw.length !== 32)
    throw new NetkitError('E_BAD_KEY', 'a WireGuard private key is not 32 bytes of base64', {fix: 'remove the key file and let netkit make a new one'})
  const key = createPrivateKey({key: Buffer.concat([PKCS8_X25519, raw]), format: 'der', type: 'pkcs8'})
  return fromB64url(createPublicKey(key).export({format: 'jwk'}).x!)
}

export function wgKeyPath(scopeDir: string, name: string): string {
  return join(secretsDir(scopeDir), `${name}.key`)
}

export function readPrivateKey(scopeDir: string, name: string): string | undefined {
  const path = wgKeyPath(scopeDir, name)
  if (!existsSync(path)) return undefined
  return readSecretFile(path, 'WireGuard private key file')
}

/** The tunnel's key pair, made (and stored 0600) if it has none yet. */
export function ensureKeyPair(runner: Runner, scopeDir: string, name: string): {privateKey: string; publicKey: string; created: boolean} {
  const existing = readPrivateKey(scopeDir, name)
  if (existing) return {privateKey: existing, publicKey: publicKeyOf(existing), created: false}
  const privateKey = generatePrivateKey()
  runner.addSecret(privateKey)
  runner.writeFile(wgKeyPath(scopeDir, name), new Secret(`${privateKey}\n`))
  return {privateKey, publicKey: publicKeyOf(privateKey), created: true}
}
