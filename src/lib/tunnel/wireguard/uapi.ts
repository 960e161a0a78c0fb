/**
 * A wireguard-go device's state read in-process over its control socket (the
 * cross-platform userspace API `wg` itself speaks to it: "get=1"), so that
 * `tunnel list` and the doctor start no `wg` (nor an `nsenter` into
 * wireguard-go's mount namespace) per device. The private key it sends is
 * turned into the public key when that is read, and never shown.
 */
import {createConnection} from 'node:net'

import {publicKeyOf} from './keys.js'

/** What `wg show IF dump` says of a device, without its private key (driver.ts's WgDump). */
export interface UapiDump {
  publicKey: string
  listenPort: number
  fwmark: number | null
  peers: {
    publicKey: string
    endpoint: string | null
    allowedIps: string[]
    /** Unix seconds of the latest handshake, 0: never. */
    latestHandshake: number
    rxBytes: number
    txBytes: number
    keepalive: number | null
  }[]
}

const b64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64')

/** Parses the reply to "get=1" (key=value lines, a peer's lines after its public_key), as `wg show IF dump` reports it. */
export function parseUapi(text: string): UapiDump | undefined {
  let privateHex: string | undefined
  let listenPort = 0
  let fwmark: number | null = null
  let errno: number | undefined
  const peers: UapiDump['peers'] = []
  for (const line of text.split('\n')) {
    const i = line.indexOf('=')
    if (i <= 0) continue
    const key = line.slice(0, i)
    const value = line.slice(i + 1)
    const peer = peers.at(-1)
    if (key === 'private_key') privateHex = value
    else if (key === 'listen_port') listenPort = Number(value)
    else if (key === 'fwmark') fwmark = Number(value) || null
    else if (key === 'public_key')
      peers.push({publicKey: b64(value), endpoint: null, allowedIps: [], latestHandshake: 0, rxBytes: 0, txBytes: 0, keepalive: null})
    else if (key === 'errno') errno = Number(value)
    else if (!peer) continue
    else if (key === 'endpoint') peer.endpoint = value
    else if (key === 'allowed_ip') peer.allowedIps.push(value)
    else if (key === 'last_handshake_time_sec') peer.latestHandshake = Number(value) || 0
    else if (key === 'rx_bytes') peer.rxBytes = Number(value) || 0
    else if (key === 'tx_bytes') peer.txBytes = Number(value) || 0
    else if (key === 'persistent_keepalive_interval') peer.keepalive = Number(value) || null
  }
  if (errno !== 0) return undefined
  // The public key is worked out from the private key when first read (key derivation is slow to start); the private
  // key is held only until then, in this closure (never in what is returned, logged or printed).
  let pub: string | undefined
  return {
    get publicKey() {
      pub ??= privateHex === undefined || /^0+$/.test(privateHex) ? '(none)' : publicKeyOf(b64(privateHex))
      privateHex = undefined
      return pub
    },
    listenPort,
    fwmark,
    peers,
  }
}

/** Asks the device behind the control socket `path` for its state; undefined if it does not answer (in time) or says an error. */
export function uapiGet(path: string, timeoutMs = 3000): Promise<UapiDump | undefined> {
  return new Promise((resolve) => {
    let text = ''
    const sock = createConnection(path)
    const done = (value: UapiDump | undefined) => {
      clearTimeout(timer)
      sock.destroy()
      resolve(value)
    }
    const timer = setTimeout(() => done(undefined), timeoutMs)
    sock.setEncoding('utf8')
    sock.on('connect', () => sock.write('get=1\n\n'))
    sock.on('data', (d: string) => {
      text += d
      // The reply ends with "errno=N" and an empty line.
      if (/(^|\n)errno=-?\d+\n\n$/.test(text)) done(parseUapi(text))
    })
    sock.on('error', () => done(undefined))
    sock.on('close', () => done(/(^|\n)errno=/.test(text) ? parseUapi(text) : undefined))
  })
}
