/**
 * Reading charon's VICI messages: from `swanctl --raw`, which prints each on
 * one line as `name event {key=value list=[a b] section {...}}` (netkit parses
 * that, never the human listing: it changes between versions), or decoded
 * from the socket itself (vici-wire.ts, vici-client.ts). Both give the same
 * sections, and the same IkeSa shapes.
 */

export type ViciValue = string | string[] | ViciSection
export interface ViciSection {
  [key: string]: ViciValue
}

/** Parses one `--raw` message body (from the first "{" to its match). */
export function parseViciRaw(line: string): ViciSection {
  const start = line.indexOf('{')
  if (start < 0) return {}
  let i = start + 1
  const root: ViciSection = {}
  const stack: ViciSection[] = [root]
  const s = line
  const skip = () => {
    while (i < s.length && s[i] === ' ') i++
  }
  while (i < s.length && stack.length > 0) {
    skip()
    if (i >= s.length) break
    if (s[i] === '}') {
      stack.pop()
      i++
      continue
    }
    const m = /^[^\s={}]+/.exec(s.slice(i))
    if (!m) {
      i++
      continue
    }
    const key = m[0]
    i += key.length
    skip()
    const top = stack.at(-1)!
    if (s[i] === '{') {
      const sec: ViciSection = {}
      top[key] = sec
      stack.push(sec)
      i++
    } else if (s[i] === '=') {
      i++
      if (s[i] === '[') {
        const end = s.indexOf(']', i)
        top[key] = s
          .slice(i + 1, end)
          .split(' ')
          .filter(Boolean)
        i = end + 1
      } else {
        // A value runs until the next " key=", " key {", or a closing brace. VICI keys are
        // lower case; a DN's parts ("C=CH, O=x") are upper case and follow a comma.
        const rest = s.slice(i)
        const stop = /((?<!,) [a-z][a-z0-9_-]*(=| \{))|\}/.exec(rest)
        const value = stop ? rest.slice(0, stop.index) : rest
        top[key] = value.trim()
        i += value.length
      }
    }
  }
  return root
}

/** Every message of a `--raw` output that is an event of the given name ("list-sa"). */
export function rawEvents(text: string, event: string): ViciSection[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${event} event `))
    .map(parseViciRaw)
}

export interface ChildSa {
  name: string
  state: string
  mode?: string
  protocol?: string
  encap: boolean
  spiIn?: string
  spiOut?: string
  encrAlg?: string
  encrKeysize?: string
  integAlg?: string
  dhGroup?: string
  bytesIn: number
  bytesOut: number
  packetsIn: number
  packetsOut: number
  installTime?: number
  rekeyTime?: number
  lifeTime?: number
  localTs: string[]
  remoteTs: string[]
}

export interface IkeSa {
  name: string
  /** charon's number for the IKE SA (swanctl --terminate --ike-id). */
  uniqueId?: number
  state: string
  localHost?: string
  remoteHost?: string
  localId?: string
  remoteId?: string
  initiator: boolean
  encrAlg?: string
  encrKeysize?: string
  integAlg?: string
  prfAlg?: string
  dhGroup?: string
  /** Seconds since established. */
  established?: number
  rekeyTime?: number
  reauthTime?: number
  children: ChildSa[]
}

const num = (v: ViciValue | undefined): number | undefined => (typeof v === 'string' && v !== '' && !Number.isNaN(Number(v)) ? Number(v) : undefined)
const str = (v: ViciValue | undefined): string | undefined => (typeof v === 'string' ? v : undefined)
const list = (v: ViciValue | undefined): string[] => (Array.isArray(v) ? v : typeof v === 'string' ? [v] : [])

/** The IKE SAs in `swanctl --list-sas --raw` output. */
export function parseListSas(text: string): IkeSa[] {
  return ikeSasFrom(rawEvents(text, 'list-sa'))
}

/** The IKE SAs in list-sa event messages (from `--raw` text or from the socket). */
export function ikeSasFrom(events: ViciSection[]): IkeSa[] {
  const out: IkeSa[] = []
  for (const ev of events) {
    for (const [name, v] of Object.entries(ev)) {
      if (typeof v !== 'object' || Array.isArray(v)) continue
      const children = (
        typeof v['child-sas'] === 'object' && !Array.isArray(v['child-sas']) ? Object.values(v['child-sas'] as ViciSection) : []
      ) as ViciSection[]
      out.push({
        name,
        uniqueId: num(v.uniqueid),
        state: str(v.state) ?? 'UNKNOWN',
        localHost: str(v['local-host']),
        remoteHost: str(v['remote-host']),
        localId: str(v['local-id']),
        remoteId: str(v['remote-id']),
        initiator: v.initiator === 'yes',
        encrAlg: str(v['encr-alg']),
        encrKeysize: str(v['encr-keysize']),
        integAlg: str(v['integ-alg']),
        prfAlg: str(v['prf-alg']),
        dhGroup: str(v['dh-group']),
        established: num(v.established),
        rekeyTime: num(v['rekey-time']),
        reauthTime: num(v['reauth-time']),
        children: children.map((c) => ({
          name: str(c.name) ?? '',
          state: str(c.state) ?? 'UNKNOWN',
          mode: str(c.mode),
          protocol: str(c.protocol),
          encap: c.encap === 'yes',
          spiIn: str(c['spi-in']),
          spiOut: str(c['spi-out']),
          encrAlg: str(c['encr-alg']),
          encrKeysize: str(c['encr-keysize']),
          integAlg: str(c['integ-alg']),
          dhGroup: str(c['dh-group']),
          bytesIn: num(c['bytes-in']) ?? 0,
          bytesOut: num(c['bytes-out']) ?? 0,
          packetsIn: num(c['packets-in']) ?? 0,
          packetsOut: num(c['packets-out']) ?? 0,
          installTime: num(c['install-time']),
          rekeyTime: num(c['rekey-time']),
          lifeTime: num(c['life-time']),
          localTs: list(c['local-ts']),
          remoteTs: list(c['remote-ts']),
        })),
      })
    }
  }
  return out
}

export type IkeFailure = 'auth' | 'proposal' | 'ts' | 'unreachable' | 'unknown'

/**
 * Why an initiate failed, from charon's log as swanctl relays it, in words a
 * person can act on.
 */
export function initiateFailure(log: string): {kind: IkeFailure; message: string; fix: string} {
  if (
    /AUTHENTICATION_FAILED|MAC mismatched|authentication of .* failed|no shared key found|verification of .* failed|no trusted .* public key found|no issuer certificate found|constraint check failed/i.test(
      log,
    )
  ) {
    return {
      kind: 'auth',
      message: "authentication failed: the peer did not accept this host's credentials (or the other way round)",
      fix: 'use the same pre-shared key on both hosts (or certificates from the CA the peer trusts), and matching --local-id/--remote-id',
    }
  }
  if (/NO_PROPOSAL_CHOSEN|no acceptable proposal|no proposal found/i.test(log)) {
    return {
      kind: 'proposal',
      message: 'no acceptable proposal: the two hosts share no algorithms (or the peer has no matching tunnel)',
      fix: 'give both hosts the same --proposals and --esp-proposals, and check that the peer has run "netkit tunnel add" for this tunnel',
    }
  }
  if (/TS_UNACCEPTABLE|traffic selectors .* unacceptable|no acceptable traffic selectors|no matching CHILD_SA config/i.test(log)) {
    return {
      kind: 'ts',
      message: "the peer refused the traffic selectors: its subnets do not mirror this host's",
      fix: "this host's --local-subnet must be the peer's --remote-subnet, and the other way round",
    }
  }
  if (/retransmit|giving up|timeout|peer not responding|unable to resolve|no route|Network is unreachable/i.test(log)) {
    return {
      kind: 'unreachable',
      message: 'the peer did not answer (IKE on UDP 500/4500)',
      fix: 'check that the peer is up and has run "netkit tunnel add" (on the first of two hosts use --no-wait), and that UDP 500 and 4500 get through',
    }
  }
  return {kind: 'unknown', message: 'the IKE negotiation failed', fix: "run with --verbose for charon's log"}
}
