/**
 * A VICI client on charon's unix socket: netkit speaks to a charon it did not
 * start (the host's strongSwan service) directly, because swanctl's
 * --load-conns and --load-all unload every connection not in the files they
 * read. Over VICI netkit loads and unloads its own connections and secrets by
 * name, and nothing else. Secrets travel only over the socket.
 *
 * One command at a time per connection (VICI has no sequence numbers); events
 * may arrive at any time, also during a command (streamed listings, logs).
 */
import {createConnection, type Socket} from 'node:net'

import {ikeSasFrom, type IkeSa, type ViciSection} from './vici.js'
import {encodePacket, PACKET, type Packet, PacketReader, type ViciInput} from './vici-wire.js'

export class ViciError extends Error {
  constructor(
    message: string,
    /** The command or event that failed. */
    readonly command: string,
  ) {
    super(message)
  }
}

type Waiter = {resolve: (p: Packet) => void; reject: (e: Error) => void}

export class ViciSession {
  private readonly reader = new PacketReader()
  private waiter: Waiter | undefined
  private readonly listeners = new Map<string, Set<(msg: ViciSection) => void>>()
  private queue: Promise<unknown> = Promise.resolve()
  private failed: Error | undefined

  private constructor(
    private readonly sock: Socket,
    readonly path: string,
    private readonly timeoutMs: number,
  ) {
    sock.on('data', (chunk: Buffer) => {
      let packets: Packet[]
      try {
        packets = this.reader.push(chunk)
      } catch (error) {
        this.fail(error as Error)
        return
      }
      for (const p of packets) {
        if (p.type === PACKET.EVENT) {
          for (const l of this.listeners.get(p.name ?? '') ?? []) l(p.message ?? {})
        } else {
          const w = this.waiter
          this.waiter = undefined
          w?.resolve(p)
        }
      }
    })
    sock.on('error', (e) => this.fail(e))
    sock.on('close', () => this.fail(new Error(`charon closed the VICI socket ${path}`)))
  }

  /** Connects to charon's VICI socket (a path, or unix://path). */
  static connect(path: string, timeoutMs = 5000): Promise<ViciSession> {
    const p = path.replace(/^unix:\/\//, '')
    return new Promise((resolve, reject) => {
      const sock = createConnection({path: p})
      const timer = setTimeout(() => {
        sock.destroy()
        reject(new ViciError(`no answer on the VICI socket ${p} within ${timeoutMs} ms`, 'connect'))
      }, timeoutMs)
      sock.once('connect', () => {
        clearTimeout(timer)
        sock.removeAllListeners('error')
        resolve(new ViciSession(sock, p, timeoutMs))
      })
      sock.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        reject(new ViciError(`cannot connect to the VICI socket ${p}: ${e.code ?? e.message}`, 'connect'))
      })
    })
  }

  private fail(e: Error): void {
    this.failed ??= e
    const w = this.waiter
    this.waiter = undefined
    w?.reject(e)
  }

  /** Sends one packet and waits for the reply packet (serialised: one exchange at a time). */
  private exchange(packet: Buffer, what: string, timeoutMs = this.timeoutMs): Promise<Packet> {
    const run = () =>
      new Promise<Packet>((resolve, reject) => {
        if (this.failed) {
          reject(this.failed)
          return
        }
        const timer = setTimeout(() => {
          this.waiter = undefined
          reject(new ViciError(`charon did not answer ${what} within ${timeoutMs} ms`, what))
          // The reply may still come: this session cannot tell it from the next one's.
          this.fail(new ViciError(`the VICI session was abandoned after a timeout of ${what}`, what))
        }, timeoutMs)
        this.waiter = {
          resolve: (p) => {
            clearTimeout(timer)
            resolve(p)
          },
          reject: (e) => {
            clearTimeout(timer)
            reject(e)
          },
        }
        this.sock.write(packet)
      })
    const next = this.queue.then(run, run)
    this.queue = next.catch(() => {})
    return next
  }

  /** Registers for an event; the listener gets each one's message. */
  async on(event: string, listener: (msg: ViciSection) => void): Promise<void> {
    const known = this.listeners.get(event)
    if (known) {
      known.add(listener)
      return
    }
    this.listeners.set(event, new Set([listener]))
    const p = await this.exchange(encodePacket(PACKET.EVENT_REGISTER, event), `event registration ${event}`)
    if (p.type !== PACKET.EVENT_CONFIRM) {
      this.listeners.delete(event)
      throw new ViciError(`charon has no event ${event}`, event)
    }
  }

  /** Unregisters from an event (every listener of it). */
  async off(event: string): Promise<void> {
    if (!this.listeners.delete(event)) return
    await this.exchange(encodePacket(PACKET.EVENT_UNREGISTER, event), `event unregistration ${event}`).catch(() => {})
  }

  /**
   * Runs a command. `stream`: the event a streaming command (list-sas,
   * list-conns, initiate's control-log) sends its items as; they are collected.
   */
  async request(
    command: string,
    msg: ViciInput = {},
    opts: {stream?: string; timeoutMs?: number} = {},
  ): Promise<{response: ViciSection; events: ViciSection[]}> {
    const events: ViciSection[] = []
    if (opts.stream) await this.on(opts.stream, (m) => events.push(m))
    try {
      const p = await this.exchange(encodePacket(PACKET.CMD_REQUEST, command, msg), command, opts.timeoutMs)
      if (p.type === PACKET.CMD_UNKNOWN) throw new ViciError(`charon does not know the VICI command ${command} (too old a strongSwan?)`, command)
      if (p.type !== PACKET.CMD_RESPONSE) throw new ViciError(`unexpected VICI packet type ${p.type} in reply to ${command}`, command)
      return {response: p.message ?? {}, events}
    } finally {
      if (opts.stream) await this.off(opts.stream)
    }
  }

  close(): void {
    this.failed ??= new Error('VICI session closed')
    this.sock.destroy()
  }
}

/** Opens a session, runs `fn`, and closes it, whatever happens. */
export async function withVici<T>(path: string, fn: (s: ViciSession) => Promise<T>, timeoutMs = 5000): Promise<T> {
  const s = await ViciSession.connect(path, timeoutMs)
  try {
    return await fn(s)
  } finally {
    s.close()
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)

/** Throws the command's errmsg unless it says success = yes. */
function ok(command: string, res: ViciSection): ViciSection {
  if (res.success !== 'yes') throw new ViciError(`${command} failed: ${str(res.errmsg) || 'charon gave no reason'}`, command)
  return res
}

// The commands netkit uses. Each takes an open session.

export async function version(s: ViciSession): Promise<ViciSection> {
  return (await s.request('version')).response
}

/** charon's statistics, with `plugins`: the plugins it loaded. */
export async function stats(s: ViciSession): Promise<ViciSection> {
  return (await s.request('stats')).response
}

/** Loads (or replaces) one connection: `conn` is its section as load-conn wants it. */
export async function loadConn(s: ViciSession, name: string, conn: ViciInput): Promise<void> {
  ok('load-conn', (await s.request('load-conn', {[name]: conn})).response)
}

export async function unloadConn(s: ViciSession, name: string): Promise<void> {
  ok('unload-conn', (await s.request('unload-conn', {name})).response)
}

/** The names of the connections loaded over VICI (not those of ipsec.conf). */
export async function getConns(s: ViciSession): Promise<string[]> {
  const c = (await s.request('get-conns')).response.conns
  return Array.isArray(c) ? c : []
}

/** Every loaded connection (also those of a legacy ipsec.conf), as list-conn events: {name: {...}}. */
export async function listConns(s: ViciSession, ike?: string): Promise<ViciSection[]> {
  return (await s.request('list-conns', ike ? {ike} : {}, {stream: 'list-conn'})).events
}

export interface SharedSecret {
  /** The unique identifier to unload it by (swanctl uses the secrets section's name). */
  id: string
  type: 'ike' | 'eap' | 'xauth'
  data: string | Buffer
  owners: string[]
}

export async function loadShared(s: ViciSession, secret: SharedSecret): Promise<void> {
  ok('load-shared', (await s.request('load-shared', {id: secret.id, type: secret.type, data: secret.data, owners: secret.owners})).response)
}

export async function unloadShared(s: ViciSession, id: string): Promise<void> {
  ok('unload-shared', (await s.request('unload-shared', {id})).response)
}

/** The identifiers of the shared secrets loaded over VICI. */
export async function getShared(s: ViciSession): Promise<string[]> {
  const k = (await s.request('get-shared')).response.keys
  return Array.isArray(k) ? k : []
}

/** Loads a private key (PEM or DER); returns its identifier (for unload-key). */
export async function loadKey(s: ViciSession, type: string, data: Buffer | string): Promise<string> {
  const res = ok('load-key', (await s.request('load-key', {type, data})).response)
  return str(res.id) ?? ''
}

export async function unloadKey(s: ViciSession, id: string): Promise<void> {
  ok('unload-key', (await s.request('unload-key', {id})).response)
}

export interface ControlResult {
  ok: boolean
  errmsg?: string
  /** What charon logged about it (control-log events). */
  log: string[]
}

async function control(s: ViciSession, command: 'initiate' | 'terminate', msg: ViciInput, timeoutMs: number): Promise<ControlResult> {
  // charon's own timeout ends the command; the session waits a little longer for its answer.
  const {response, events} = await s.request(command, {...msg, timeout: timeoutMs, loglevel: 1}, {stream: 'control-log', timeoutMs: timeoutMs + 5000})
  return {ok: response.success === 'yes', errmsg: str(response.errmsg), log: events.map((e) => str(e.msg) ?? '').filter(Boolean)}
}

/** Initiates a CHILD_SA (and its IKE_SA), waiting at most `timeoutMs`. */
export async function initiate(s: ViciSession, opts: {child: string; ike?: string; timeoutMs: number}): Promise<ControlResult> {
  return control(s, 'initiate', {child: opts.child, ike: opts.ike}, opts.timeoutMs)
}

/** Terminates a CHILD_SA (by configuration name) or every IKE_SA of a connection. */
export async function terminate(s: ViciSession, opts: {child?: string; ike?: string; force?: boolean; timeoutMs: number}): Promise<ControlResult> {
  return control(s, 'terminate', {child: opts.child, ike: opts.ike, force: opts.force ? 'yes' : undefined}, opts.timeoutMs)
}

/** The IKE_SAs of the charon on the socket `path` (of one connection, or all); undefined if it does not answer. */
export async function sasOn(path: string, ike?: string): Promise<IkeSa[] | undefined> {
  try {
    return await withVici(path, async (s) => listSas(s, ike))
  } catch {
    return undefined
  }
}

/** The IKE_SAs (of one connection, or all), parsed as `swanctl --list-sas --raw` is. */
export async function listSas(s: ViciSession, ike?: string): Promise<IkeSa[]> {
  return ikeSasFrom((await s.request('list-sas', ike ? {ike, noblock: 'yes'} : {noblock: 'yes'}, {stream: 'list-sa'})).events)
}
