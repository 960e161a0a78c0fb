/**
 * One charon per namespace, run and supervised by netkit (as OpenStack's
 * VPNaaS runs one per router namespace): its own strongswan.conf (selected
 * with STRONGSWAN_CONF), its own VICI socket in the scope directory, and a
 * private /run (a tmpfs in a mount namespace of its own), because charon
 * writes /var/run/charon.pid and refuses to start when another charon has it.
 *
 * netkit never restarts, stops or reconfigures a charon it did not start.
 */
import {closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync} from 'node:fs'
import {dirname, join} from 'node:path'

import {adoptDaemon, daemonAlive, daemonLog, daemonPid, type DaemonRef, processesNamed, startDaemon, stopDaemon, waitFor} from '../../daemons.js'
import {NetkitError} from '../../errors.js'
import type {ExecResult, Runner} from '../../runner.js'
import {renderTemplate} from '../../templates.js'

export const CHARON = process.env.NETKIT_CHARON ?? '/usr/lib/ipsec/charon'

/** A fixed script: a private /run for charon, then exec its argv ("$@"). */
const PRIVATE_RUN_SCRIPT = 'mount -t tmpfs -o mode=0755 netkit-run /run && exec "$@"'

/**
 * The plugins netkit's charon loads. Crypto: AES (CBC, CTR, CCM, and GCM where
 * the gcm or openssl plugin exists), ChaCha20-Poly1305, SHA-1/2, X25519,
 * MODP (gmp); X.509 and PSK authentication; netlink; VICI. A plugin that is
 * not installed is skipped by charon with a warning.
 */
export function charonPlugins(libipsec: boolean): string[] {
  return [
    'random',
    'nonce',
    'aes',
    'sha1',
    'sha2',
    'hmac',
    'gmp',
    'curve25519',
    'chapoly',
    'gcm',
    'openssl',
    'ctr',
    'ccm',
    'cmac',
    'xcbc',
    'kdf',
    'drbg',
    'x509',
    'revocation',
    'constraints',
    'pubkey',
    'pkcs1',
    'pkcs8',
    'pem',
    ...(libipsec ? ['kernel-libipsec'] : []),
    'kernel-netlink',
    'socket-default',
    'vici',
  ]
}

const SWANCTL_DIRS = ['x509', 'x509ca', 'x509ocsp', 'x509aa', 'x509ac', 'x509crl', 'pubkey', 'private', 'rsa', 'ecdsa', 'bliss', 'pkcs8', 'pkcs12']

/** Where swanctl looks for a tunnel's private key: a link to the key file the user gave. */
export function privateKeyLink(scope: CharonScope, tunnel: string): string {
  return join(dirname(scope.swanctlConf), 'private', `${tunnel}.key`)
}

export interface CharonScope {
  netns?: string
  /** scopeDir/ipsec: strongswan.conf, swanctl/swanctl.conf, swanctl/conf.d/<tunnel>.conf, charon.vici */
  dir: string
  strongswanConf: string
  swanctlConf: string
  confD: string
  socket: string
}

export function charonScope(scopeDir: string, netns?: string): CharonScope {
  const dir = join(scopeDir, 'ipsec')
  return {
    netns,
    dir,
    strongswanConf: join(dir, 'strongswan.conf'),
    swanctlConf: join(dir, 'swanctl', 'swanctl.conf'),
    confD: join(dir, 'swanctl', 'conf.d'),
    socket: join(dir, 'charon.vici'),
  }
}

export function charonRef(netns?: string): DaemonRef {
  return {netns, name: 'charon', match: 'charon'}
}

export function charonPid(scope: CharonScope): number | undefined {
  // The charon netkit started carries its strongswan.conf in its environment: one whose pid was never recorded is still ours.
  return daemonPid(charonRef(scope.netns)) ?? adoptDaemon(charonRef(scope.netns), ['charon'], `STRONGSWAN_CONF=${scope.strongswanConf}`)
}

export function charonLogTail(scope: CharonScope, lines = 12): string {
  try {
    return readFileSync(daemonLog(charonRef(scope.netns)), 'utf8')
      .trim()
      .split('\n')
      .slice(-lines)
      .join('\n')
  } catch {
    return ''
  }
}

/** Where charon's log ends now (to read what it says from here on). */
export function charonLogSize(scope: CharonScope): number {
  try {
    return statSync(daemonLog(charonRef(scope.netns))).size
  } catch {
    return 0
  }
}

/** What charon logged since `offset`. */
export function charonLogSince(scope: CharonScope, offset: number): string {
  try {
    return readFileSync(daemonLog(charonRef(scope.netns)))
      .subarray(offset)
      .toString('utf8')
  } catch {
    return ''
  }
}

/** What charonKnocks has read of each log: up to where, and the peers it found refused. */
const knockScans = new Map<string, {offset: number; knocks: Set<string>}>()

/**
 * The peers this scope's charon refused because it had no connection for them
 * yet ("no IKE config found for LOCAL...REMOTE, sending NO_PROPOSAL_CHOSEN"),
 * as "LOCAL...REMOTE", over its whole log. A peer told so does not try again by
 * itself. Reads only what was logged since the last call (a fleet host applies
 * hundreds of tunnels in one run).
 */
export function charonKnocks(scope: CharonScope): Set<string> {
  const file = daemonLog(charonRef(scope.netns))
  let scan = knockScans.get(file)
  const size = charonLogSize(scope)
  if (!scan || size < scan.offset) knockScans.set(file, (scan = {offset: 0, knocks: new Set()}))
  if (size > scan.offset) {
    const buf = Buffer.alloc(size - scan.offset)
    let fd: number | undefined
    try {
      fd = openSync(file, 'r')
      const n = readSync(fd, buf, 0, buf.length, scan.offset)
      const text = buf.subarray(0, n).toString('utf8')
      // Only whole lines: a line being written is read again next time.
      const end = text.lastIndexOf('\n') + 1
      for (const m of text.slice(0, end).matchAll(/no IKE config found for (\S+?), sending NO_PROPOSAL_CHOSEN/g)) scan.knocks.add(m[1])
      scan.offset += Buffer.byteLength(text.slice(0, end))
    } catch {
      // no log: no knock
    } finally {
      if (fd !== undefined) closeSync(fd)
    }
  }
  return scan.knocks
}

/** The tunnels loaded into this scope's charon (files in conf.d). */
export function loadedTunnels(scope: CharonScope): string[] {
  try {
    return readdirSync(scope.confD)
      .filter((f) => f.endsWith('.conf'))
      .map((f) => f.slice(0, -5))
  } catch {
    return []
  }
}

/** Runs swanctl against this scope's charon. Reads run in a dry run; changes are echoed. */
export async function swanctl(
  runner: Runner,
  scope: CharonScope,
  args: string[],
  opts: {change?: boolean; timeoutMs?: number; object?: string} = {},
): Promise<ExecResult> {
  const inv = {tool: 'swanctl', args: [...args, '--uri', `unix://${scope.socket}`], netns: null, timeoutMs: opts.timeoutMs, object: opts.object ?? 'charon'}
  return opts.change ? runner.run(inv) : runner.probe(inv)
}

async function answers(runner: Runner, scope: CharonScope): Promise<boolean> {
  if (!existsSync(scope.socket)) return false
  const r = await swanctl(runner, scope, ['--stats'], {timeoutMs: 2000})
  return r.exitCode === 0
}

/** Whether this scope's charon is set up for kernel-libipsec (undefined: no charon config). */
export function charonUsesLibipsec(scope: CharonScope): boolean | undefined {
  try {
    const m = /kernel-libipsec \{\s*load = (yes|no)/.exec(readFileSync(scope.strongswanConf, 'utf8'))
    return m ? m[1] === 'yes' : undefined
  } catch {
    return undefined
  }
}

/**
 * Makes sure this scope's charon runs with the wanted data path. Returns true
 * if it was started now (so an undo stops it again).
 */
export async function ensureCharon(runner: Runner, scope: CharonScope, libipsec: boolean): Promise<boolean> {
  const ours = charonPid(scope)
  if (ours !== undefined) {
    const running = charonUsesLibipsec(scope)
    if (running !== undefined && running !== libipsec) {
      throw new NetkitError(
        'E_CONFLICT',
        `the charon of this namespace runs with the ${running ? 'userspace (kernel-libipsec)' : 'kernel'} data path, and this tunnel wants the other`,
        {
          fix: 'use the same --datapath for every IPsec tunnel of a namespace',
        },
      )
    }
    if (runner.dryRun || (await answers(runner, scope))) return false
  }
  const foreign = processesNamed(['charon', 'charon-systemd'], scope.netns).filter((p) => p !== ours)
  if (foreign.length > 0) {
    throw new NetkitError(
      'E_FOREIGN_CHARON',
      `a charon that netkit did not start runs in ${scope.netns ? `namespace ${scope.netns}` : 'this namespace'} (pid ${foreign.join(', ')})`,
      {
        fix: 'netkit never restarts or reconfigures a charon it does not own: stop that one (e.g. systemctl stop strongswan), or set the tunnel up in another namespace with --netns',
      },
    )
  }
  if (!existsSync(CHARON)) {
    throw new NetkitError('E_NO_TOOL', `charon is not installed (${CHARON} is missing)`, {
      fix: 'apt-get install --no-install-recommends strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-extra-plugins',
    })
  }
  const label = scope.netns ? `namespace ${scope.netns}` : 'the root namespace'
  runner.writeFile(
    scope.strongswanConf,
    await renderTemplate('strongswan/strongswan.conf.eta', {scope: label, libipsec, socket: scope.socket, plugins: charonPlugins(libipsec)}),
    {mode: 0o644, dirMode: 0o700},
  )
  runner.writeFile(scope.swanctlConf, await renderTemplate('strongswan/swanctl.conf.eta', {scope: label}), {mode: 0o644, dirMode: 0o700})
  // conf.d, and what swanctl --load-all reads (private keys from private/): empty is fine, missing is noise.
  runner.mkdir([scope.confD, ...SWANCTL_DIRS.map((d) => join(dirname(scope.swanctlConf), d))], 0o700)
  // A socket a killed charon left (runtime state, not configuration: not echoed).
  if (!runner.dryRun) rmSync(scope.socket, {force: true})
  const pid = await startDaemon(runner, charonRef(scope.netns), {
    tool: 'unshare',
    args: ['--mount', '--propagation', 'private', 'sh', '-c', PRIVATE_RUN_SCRIPT, 'netkit-charon', CHARON],
    env: {STRONGSWAN_CONF: scope.strongswanConf},
    object: `charon of ${label}`,
  })
  if (pid === undefined) return true
  const up = await waitFor(async () => !daemonAlive(charonRef(scope.netns)) || (await answers(runner, scope)), 10_000, 100)
  if (!up || !(await answers(runner, scope))) {
    const log = charonLogTail(scope)
    await stopCharon(runner, scope).catch(() => {})
    throw new NetkitError('E_DAEMON', `charon did not start in ${label}`, {
      fix: 'run with --verbose for its log; check that the strongSwan packages are installed',
      detail: log,
    })
  }
  return true
}

/** Stops this scope's charon (it removes its own policies, SAs and routes) and its files. */
export async function stopCharon(runner: Runner, scope: CharonScope): Promise<void> {
  await stopDaemon(runner, charonRef(scope.netns))
  let empty = true
  try {
    empty = readdirSync(scope.confD).length === 0
  } catch {
    // no conf.d: nothing of a tunnel's is left
  }
  // With no tunnel's file left, the whole folder; else only the daemon's own configuration.
  runner.removeFiles(empty ? [scope.dir] : [scope.strongswanConf, scope.swanctlConf], {recursive: empty})
  // Runtime state (not configuration: not echoed).
  if (!runner.dryRun) for (const f of [scope.socket, daemonLog(charonRef(scope.netns))]) rmSync(f, {force: true})
}
