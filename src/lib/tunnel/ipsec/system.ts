/**
 * The host's own strongSwan: a charon netkit did not start, running in the
 * host's root namespace (Debian's strongswan.service runs charon-systemd;
 * older set-ups run `ipsec start`, the starter with charon), usually with the
 * operator's own VPNs loaded.
 *
 * netkit uses it as it is, and touches only what is its own:
 * - it speaks VICI on that charon's socket (the default, or the one its
 *   strongswan.conf sets), never swanctl --load-all/--load-conns/--load-creds,
 *   which would unload every connection and secret not in the files they read;
 * - it keeps one file per tunnel where that strongSwan reads its
 *   configuration, /etc/swanctl/conf.d/netkit-TUNNEL.conf (mode 0600), so an
 *   operator's `swanctl --load-all` (a `systemctl reload strongswan`) loads
 *   netkit's tunnels along with the rest;
 * - it loads and unloads its connections (netkit-*) and secrets (ike-netkit-*)
 *   by name, from those files;
 * - it never stops, restarts or reconfigures that charon: what it lacks is
 *   said, with the fix, before anything changes.
 *
 * Tunnels in a namespace of their own (--netns) keep netkit's own charon there.
 */
import {existsSync, lstatSync, readdirSync, readFileSync, realpathSync} from 'node:fs'
import {isAbsolute, join} from 'node:path'

import {charonRef} from './charon.js'
import {daemonPid, processesNamed} from '../../daemons.js'
import type {Runner} from '../../runner.js'
import {mergeSettings, parseSettings, readSettings, section, setting, type Settings} from './settings.js'
import {
  type ControlResult,
  getConns,
  getShared,
  ViciSession,
  initiate,
  loadConn,
  sasOn,
  loadKey,
  loadShared,
  stats,
  terminate,
  unloadConn,
  unloadKey,
  unloadShared,
  withVici,
} from './vici-client.js'
import type {IkeSa} from './vici.js'
import type {ViciInput} from './vici-wire.js'

/** Where the host's strongSwan reads swanctl.conf (swanctl's and charon-systemd's default). */
export const SYSTEM_SWANCTL_DIR = '/etc/swanctl'
const DEFAULT_STRONGSWAN_CONF = '/etc/strongswan.conf'
const DEFAULT_VICI = '/var/run/charon.vici'
/** The prefix of every file, connection and secret netkit keeps in the host's strongSwan. */
export const SYSTEM_PREFIX = 'netkit-'

export interface SystemCharon {
  pid: number
  /** charon-systemd, or charon (the starter's). */
  program: string
  /** The strongswan.conf it reads. */
  conf: string
  /** Its VICI socket (a path). */
  socket: string
  /** Where its swanctl configuration lives, and where netkit's files go. */
  swanctlDir: string
  confD: string
}

/** "the system charon (charon-systemd, pid 812, /var/run/charon.vici)": which charon netkit looked at. */
export function describeSystem(sys: SystemCharon): string {
  return `the system charon (${sys.program}, pid ${sys.pid}, ${sys.socket})`
}

function environOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
  } catch {
    return []
  }
}

/** A charon netkit started: its strongswan.conf (in its environment) is one netkit wrote. */
function startedByNetkit(pid: number): boolean {
  const conf = environOf(pid)
    .find((e) => e.startsWith('STRONGSWAN_CONF='))
    ?.slice('STRONGSWAN_CONF='.length)
  if (!conf) return false
  try {
    return readFileSync(conf, 'utf8').startsWith('# Written by netkit')
  } catch {
    return false
  }
}

/** The VICI socket a charon serves, as its strongswan.conf sets it (charon-systemd reads its own section, then charon's). */
export function viciSocketOf(tree: Settings, program: string): string {
  const uri =
    (program !== 'charon' ? setting(tree, `${program}.plugins.vici.socket`) : undefined) ??
    setting(tree, 'charon.plugins.vici.socket') ??
    `unix://${DEFAULT_VICI}`
  return uri.replace(/^unix:\/\//, '')
}

/**
 * The host's own charon, if one runs in the root namespace and netkit did not
 * start it. Always undefined for a --netns namespace (netkit runs its own there).
 */
export function findSystemCharon(netns?: string): SystemCharon | undefined {
  if (netns) return undefined
  const ours = daemonPid(charonRef())
  const pids = processesNamed(['charon-systemd', 'charon'], undefined).filter((p) => p !== ours && !startedByNetkit(p))
  if (pids.length === 0) return undefined
  const pid = pids.sort((a, b) => a - b)[0]
  let program = 'charon'
  try {
    program = readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
  } catch {
    // gone meanwhile: described as charon
  }
  const conf =
    environOf(pid)
      .find((e) => e.startsWith('STRONGSWAN_CONF='))
      ?.slice('STRONGSWAN_CONF='.length) || DEFAULT_STRONGSWAN_CONF
  return {pid, program, conf, socket: viciSocketOf(readSettings(conf), program), swanctlDir: SYSTEM_SWANCTL_DIR, confD: join(SYSTEM_SWANCTL_DIR, 'conf.d')}
}

/** netkit's file for a tunnel in the host's strongSwan. */
export function systemConfPath(sys: Pick<SystemCharon, 'confD'>, tunnel: string): string {
  return join(sys.confD, `${SYSTEM_PREFIX}${tunnel}.conf`)
}

/** Where a tunnel's private key is linked from, so that the operator's `swanctl --load-all` loads it too. */
export function systemKeyLink(sys: Pick<SystemCharon, 'swanctlDir'>, tunnel: string): string {
  return join(sys.swanctlDir, 'private', `${SYSTEM_PREFIX}${tunnel}.key`)
}

/** The tunnels netkit has files for in the host's strongSwan. */
export function systemTunnels(sys: Pick<SystemCharon, 'confD'>): string[] {
  try {
    return readdirSync(sys.confD)
      .filter((f) => f.startsWith(SYSTEM_PREFIX) && f.endsWith('.conf'))
      .map((f) => f.slice(SYSTEM_PREFIX.length, -5))
      .sort()
  } catch {
    return []
  }
}

/** netkit's files merged as swanctl merges them (the tunnels to one peer add their children to one connection). */
export function netkitConfig(sys: Pick<SystemCharon, 'confD'>, without?: string | string[]): Settings {
  const tree: Settings = {}
  const gone = new Set([without ?? []].flat())
  for (const t of systemTunnels(sys).filter((n) => !gone.has(n))) {
    try {
      parseSettings(readFileSync(systemConfPath(sys, t), 'utf8'), undefined, tree)
    } catch {
      // gone meanwhile
    }
  }
  return tree
}

/** swanctl.conf keys that are comma-separated lists in a load-conn message. */
const LIST_KEYS = new Set([
  'local_addrs',
  'remote_addrs',
  'proposals',
  'esp_proposals',
  'ah_proposals',
  'local_ts',
  'remote_ts',
  'vips',
  'pools',
  'groups',
  'cert_policy',
])
/** swanctl.conf keys that name files whose contents go in the message, and where relative names are looked for. */
const FILE_KEYS: Record<string, string> = {certs: 'x509', cacerts: 'x509ca', pubkeys: 'pubkey'}

const splitList = (v: string) => v.split(/[,\s]+/).filter(Boolean)

/**
 * A connection section of swanctl.conf as load-conn wants it (as swanctl
 * translates it): lists split, certificate files read.
 */
export function connMessage(conn: Settings, swanctlDir = SYSTEM_SWANCTL_DIR): ViciInput {
  const out: ViciInput = {}
  for (const [key, v] of Object.entries(conn)) {
    if (typeof v === 'object') {
      out[key] = connMessage(v, swanctlDir)
    } else if (LIST_KEYS.has(key)) {
      out[key] = splitList(v)
    } else if (key in FILE_KEYS) {
      out[key] = splitList(v).map((f) => {
        if (/^0x/i.test(f)) return Buffer.from(f.slice(2), 'hex')
        if (/^0s/i.test(f)) return Buffer.from(f.slice(2), 'base64')
        return readFileSync(isAbsolute(f) ? f : join(swanctlDir, FILE_KEYS[key], f))
      })
    } else {
      out[key] = v
    }
  }
  return out
}

/** A secret as swanctl.conf writes it: 0x (hex), 0s (base64), or the text itself. */
export function secretData(value: string): Buffer {
  if (/^0x/i.test(value)) return Buffer.from(value.slice(2), 'hex')
  if (/^0s/i.test(value)) return Buffer.from(value.slice(2), 'base64')
  return Buffer.from(value, 'utf8')
}

/** The shared secret of a secrets section (`ike-NAME { id-local = ..., secret = ... }`), identified by the section's name as swanctl does. */
export function secretOf(name: string, sec: Settings): {id: string; type: 'ike'; data: Buffer; owners: string[]} | undefined {
  const value = sec.secret
  if (typeof value !== 'string') return undefined
  const owners = Object.entries(sec)
    .filter(([k, v]) => k.startsWith('id') && typeof v === 'string')
    .map(([, v]) => v as string)
  return {id: name, type: 'ike', data: secretData(value), owners}
}

/** The VICI commands netkit sends, as shown (never a secret). */
export function shownVici(sys: SystemCharon, command: string, what: string): string {
  return `vici ${command} ${what} (unix://${sys.socket})`
}

export interface SystemLoad {
  /** The connections loaded (or unloaded: their last tunnel went). */
  loaded: string[]
  unloaded: string[]
}

/**
 * Makes the host's charon hold exactly what netkit's files say for the given
 * IKE connections: each is loaded from the files (all the tunnels that add a
 * child to it), or, with no file left, unloaded; likewise its shared secret
 * and the tunnels' private keys. Only netkit's names are touched.
 */
export async function syncConnections(
  runner: Runner,
  sys: SystemCharon,
  ikes: string[],
  opts: {unloadKeys?: string[]; without?: string | string[]; extra?: Settings} = {},
): Promise<SystemLoad> {
  // `without`: tunnels whose files are going (still there in a dry run); `extra`: one whose file is not written yet (a dry run).
  const tree = netkitConfig(sys, opts.without)
  if (opts.extra) mergeSettings(tree, opts.extra)
  const result: SystemLoad = {loaded: [], unloaded: []}
  const keys = keyLinks(sys, opts.without)
  // Keys first: one connection that starts at once (start_action = start) needs its key for IKE_AUTH,
  // a round trip after load-conn, and a key loaded later loses that race on a busy host (as swanctl --load-all loads credentials first).
  const calls = [
    ...keys.map(loadKeyCall),
    ...ikes.flatMap((ike) => connectionCalls(runner, sys, tree, ike, result)),
    ...(opts.unloadKeys ?? []).map((f) => unloadKeyCall(f, keys)),
  ]
  for (const c of calls) runner.note(shownVici(sys, c.command, c.what))
  if (runner.dryRun || calls.length === 0) return result
  await withVici(sys.socket, async (s) => {
    for (const c of calls) await c.run(s)
  })
  return result
}

/** One VICI request of a sync: what the echo shows and how it is made. */
interface ViciCall {
  command: string
  what: string
  run: (s: ViciSession) => Promise<void>
}

/** One IKE connection's calls: its shared secret and itself loaded from the files, or, with no file left, both unloaded. */
function connectionCalls(runner: Runner, sys: SystemCharon, tree: Settings, ike: string, result: SystemLoad): ViciCall[] {
  if (!ike.startsWith(SYSTEM_PREFIX)) throw new Error(`internal error: ${ike} is not a netkit connection`)
  const conn = section(tree, `connections.${ike}`)
  const secretName = `ike-${ike}`
  if (!conn) {
    result.unloaded.push(ike)
    return [
      {command: 'unload-conn', what: ike, run: async (s) => unloadConn(s, ike).catch(() => {})},
      {
        command: 'unload-shared',
        what: secretName,
        run: async (s) => {
          if ((await getShared(s)).includes(secretName)) await unloadShared(s, secretName)
        },
      },
    ]
  }
  const calls: ViciCall[] = []
  const sec = section(tree, `secrets.${secretName}`)
  const secret = sec ? secretOf(secretName, sec) : undefined
  if (secret) {
    if (!runner.dryRun) runner.addSecret(secret.data.toString('utf8'))
    calls.push({command: 'load-shared', what: `${secretName} (${secret.owners.join(', ')})`, run: async (s) => loadShared(s, secret)})
  }
  const msg = connMessage(conn, sys.swanctlDir)
  calls.push({command: 'load-conn', what: ike, run: async (s) => loadConn(s, ike, msg)})
  result.loaded.push(ike)
  return calls
}

/** The tunnels' private key links in /etc/swanctl/private that are there (but those of tunnels going). */
function keyLinks(sys: SystemCharon, without?: string | string[]): string[] {
  const gone = new Set([without ?? []].flat())
  return systemTunnels(sys)
    .filter((t) => !gone.has(t))
    .map((t) => systemKeyLink(sys, t))
    .filter((f) => existsSync(f))
}

/** Loads one key (load-key is idempotent and says the key's id). */
function loadKeyCall(file: string): ViciCall {
  return {command: 'load-key', what: file, run: async (s) => void (await loadKey(s, 'any', readFileSync(file)))}
}

/** Unloads one key, unless another netkit tunnel (one of `keys`) uses the same key. */
function unloadKeyCall(file: string, keys: string[]): ViciCall {
  return {
    command: 'unload-key',
    what: file,
    run: async (s) => {
      // The id is the key's: load it to learn it (a no-op if it is loaded), then unload it.
      const data = readFileSync(file)
      if (keys.some((k) => realpathSync(k) === realpathSync(file))) return
      const id = await loadKey(s, 'any', data)
      if (id) await unloadKey(s, id)
    },
  }
}

/** The IKE SAs of one connection (or all) in the host's charon; undefined if it does not answer. */
export async function systemSas(sys: SystemCharon, ike?: string): Promise<IkeSa[] | undefined> {
  return sasOn(sys.socket, ike)
}

/** The plugins the host's charon loaded; undefined if it does not answer on its socket. */
export async function systemPlugins(sys: SystemCharon): Promise<string[] | undefined> {
  try {
    const st = await withVici(sys.socket, stats, 3000)
    return Array.isArray(st.plugins) ? st.plugins : []
  } catch {
    return undefined
  }
}

export async function systemInitiate(runner: Runner, sys: SystemCharon, ike: string, child: string, timeoutMs: number): Promise<ControlResult> {
  runner.note(shownVici(sys, 'initiate', `${ike}/${child}`))
  if (runner.dryRun) return {ok: true, log: []}
  return withVici(sys.socket, async (s) => initiate(s, {ike, child, timeoutMs}), 5000)
}

/** Terminates a tunnel's CHILD_SAs (by name), or every IKE_SA of its connection (the last tunnel to that peer). */
export async function systemTerminate(runner: Runner, sys: SystemCharon, what: {child?: string; ike?: string}): Promise<void> {
  runner.note(shownVici(sys, 'terminate', what.child ?? what.ike ?? ''))
  if (runner.dryRun) return
  await withVici(sys.socket, async (s) => void (await terminate(s, {...what, force: what.ike !== undefined, timeoutMs: 5000})), 5000).catch(() => {})
}

/**
 * What the host's charon logs, from now on (its `log` events): netkit reads a
 * refusal (authentication, proposals, selectors) there as it reads its own
 * charon's log file.
 */
export class SystemLog {
  private lines: string[] = []
  private session: ViciSession | undefined

  static async open(sys: SystemCharon): Promise<SystemLog> {
    const log = new SystemLog()
    try {
      log.session = await ViciSession.connect(sys.socket, 3000)
      await log.session.on('log', (m) => {
        if (typeof m.msg === 'string') log.lines.push(m.msg)
        if (log.lines.length > 5000) log.lines.splice(0, 1000)
      })
    } catch {
      log.session?.close()
      log.session = undefined
    }
    return log
  }

  text(): string {
    return this.lines.join('\n')
  }

  close(): void {
    this.session?.close()
    this.session = undefined
  }
}

/** The connections loaded over VICI in the host's charon; undefined if it does not answer. */
export async function systemConns(sys: SystemCharon): Promise<string[] | undefined> {
  try {
    return await withVici(sys.socket, getConns, 3000)
  } catch {
    return undefined
  }
}

/** What netkit left of a tunnel in the host's strongSwan: its connection file (one netkit wrote) and its key link, and the IKE connections the file adds to. */
export interface StrayTunnel {
  tunnel: string
  conf?: string
  key?: string
  ikes: string[]
}

/** The first line of every connection file netkit writes. */
const NETKIT_HEADER = '# Written by netkit'

/**
 * netkit's files in the host's strongSwan whose tunnel is not in `defined`:
 * conf.d/netkit-T.conf that netkit wrote (its first line says so), and
 * private/netkit-T.key, the symbolic link netkit makes to a tunnel's key.
 * A file the operator wrote is never netkit's, whatever its name.
 */
export function strayTunnels(sys: Pick<SystemCharon, 'confD' | 'swanctlDir'>, defined: Set<string>): StrayTunnel[] {
  const by = new Map<string, StrayTunnel>()
  const of = (t: string) => by.get(t) ?? by.set(t, {tunnel: t, ikes: []}).get(t)!
  for (const t of systemTunnels(sys)) {
    if (defined.has(t)) continue
    const conf = systemConfPath(sys, t)
    let text = ''
    try {
      text = readFileSync(conf, 'utf8')
    } catch {
      continue
    }
    if (!text.startsWith(NETKIT_HEADER)) continue
    let ikes: string[] = []
    try {
      ikes = Object.keys(section(parseSettings(text), 'connections') ?? {}).filter((c) => c.startsWith(SYSTEM_PREFIX))
    } catch {
      // a file swanctl could not read either: it goes all the same
    }
    Object.assign(of(t), {conf, ikes})
  }
  let keys: string[] = []
  try {
    keys = readdirSync(join(sys.swanctlDir, 'private')).filter((f) => f.startsWith(SYSTEM_PREFIX) && f.endsWith('.key'))
  } catch {
    // no private directory
  }
  for (const f of keys) {
    const t = f.slice(SYSTEM_PREFIX.length, -4)
    const link = systemKeyLink(sys, t)
    if (defined.has(t)) continue
    try {
      if (!lstatSync(link).isSymbolicLink()) continue
    } catch {
      continue
    }
    of(t).key = link
  }
  return [...by.values()].sort((a, b) => a.tunnel.localeCompare(b.tunnel))
}

/**
 * Takes netkit's leftovers out of the host's strongSwan, by netkit's names
 * only: the SAs of the stray connections (a connection a defined tunnel
 * still shares loses only the gone tunnels' CHILD_SAs), the stray tunnels'
 * files, then each loaded connection involved loaded again from the files
 * left or, with none, unloaded with its secret and the gone tunnels' keys.
 * `sys`: the host's charon, when one runs; `loaded`: the connections it holds;
 * `kept`: the connections of the tunnels defined here.
 */
export async function removeStray(
  runner: Runner,
  sys: SystemCharon | undefined,
  stray: {tunnels: StrayTunnel[]; conns: string[]},
  loaded: string[],
  kept: Set<string>,
): Promise<void> {
  const isLoaded = new Set(loaded)
  const ikes = [...new Set([...stray.conns, ...stray.tunnels.flatMap((t) => t.ikes)])].filter((i) => i.startsWith(SYSTEM_PREFIX) && isLoaded.has(i))
  const keyFiles: string[] = []
  for (const t of stray.tunnels) {
    if (!t.key) continue
    try {
      keyFiles.push(realpathSync(t.key))
    } catch {
      // a link to a key that is gone: nothing was loaded from it
    }
  }
  if (sys) {
    for (const ike of ikes.filter((i) => !kept.has(i))) await systemTerminate(runner, sys, {ike})
    for (const t of stray.tunnels.filter((x) => x.ikes.some((i) => kept.has(i) && isLoaded.has(i))))
      await systemTerminate(runner, sys, {child: `${SYSTEM_PREFIX}${t.tunnel}`})
  }
  runner.removeFiles(stray.tunnels.flatMap((t) => [t.conf, t.key]).filter((x): x is string => Boolean(x)))
  if (sys && (ikes.length > 0 || keyFiles.length > 0))
    await syncConnections(runner, sys, ikes, {unloadKeys: keyFiles, without: stray.tunnels.map((t) => t.tunnel)})
}
