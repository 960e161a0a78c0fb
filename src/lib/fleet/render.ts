/**
 * `netkit fleet render`: one inventory -> one `netkit apply` bundle per host.
 *
 *   OUTDIR/overlay.yaml               the overlay assignments, read back at the next render
 *   OUTDIR/<host>/host.yaml           the host's file, for `netkit apply -f`
 *   OUTDIR/<host>/secrets/<peer>.psk  IPsec: the pair's key (0600, in a 0700 folder)
 *
 * On the host the bundle is copied to --host-dir (default /etc/netkit/fleet),
 * so host.yaml names its keys there. Every file is written atomically and
 * only when its content changes: a re-render of an unchanged inventory leaves
 * every file byte-identical (and untouched). A host that left the inventory
 * loses its bundle, and its peers lose their references to it (their
 * host.yaml no longer lists it; their key for it is removed).
 */
import {existsSync, readdirSync, readFileSync, rmSync, statSync} from 'node:fs'
import {isAbsolute, join, posix, resolve} from 'node:path'

import {UsageError} from '../errors.js'
import {fileMode, writeFileAtomic, writeSecretFile} from '../files.js'
import {toYaml} from '../yaml.js'
import {HOST_NAME, type Inventory, parseInventory} from './inventory.js'
import {pairPsk, readPubkeys} from './keys.js'
import {assignOverlay, OVERLAY_FILE, readAssignments, writeAssignments} from './overlay.js'
import {type HostPlan, plan} from './topology.js'

export const DEFAULT_HOST_DIR = '/etc/netkit/fleet'

export interface RenderInput {
  inventory: {text: string; source: string}
  /** WireGuard: pubkeys.yaml. */
  pubkeys?: {text: string; source: string}
  outDir: string
  hostDir?: string
  dryRun?: boolean
}

export type FileAction = 'create' | 'update' | 'unchanged' | 'remove'

export interface RenderResult {
  outDir: string
  hostDir: string
  type: Inventory['type']
  topology: Inventory['topology']
  hosts: {name: string; overlay: string; hub: boolean; peers: string[]; bundle: string}[]
  /** Every file the render wrote, would write, kept or removed (secrets by path only). */
  files: {path: string; action: FileAction; secret: boolean}[]
  /** Hosts whose overlay address was assigned from the pool this time. */
  assigned: string[]
  changed: boolean
  dryRun: boolean
}

interface Planned {
  content: string
  secret: boolean
}

const readIf = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

const HEADER = (host: string, hostDir: string) =>
  `# Host ${host} of a netkit fleet, rendered by "netkit fleet render" (do not edit: render again).\n# On the host: netkit apply -f ${posix.join(hostDir, 'host.yaml')}\n`

function wireguardFile(inv: Inventory, h: HostPlan, overlay: Map<string, string>, keys: Map<string, string>): Record<string, unknown> {
  const byName = new Map(inv.hosts.map((x) => [x.name, x]))
  const peers: Record<string, unknown> = {}
  for (const l of h.links) {
    const p = byName.get(l.peer)!
    const ip = p.address.family === 6 ? `[${p.address.ip}]` : p.address.ip
    peers[l.peer] = {
      publicKey: keys.get(l.peer),
      endpoint: `${ip}:${inv.listenPort}`,
      allowedIps: l.remote,
      ...(inv.keepalive === undefined ? {} : {keepalive: inv.keepalive}),
    }
  }
  return {
    version: 1,
    ...(h.hub ? {sysctls: {[inv.pool.family === 4 ? 'ip_forward' : 'ip6_forward']: '1'}} : {}),
    tunnels: {[inv.tunnel]: {type: 'wireguard', address: `${overlay.get(h.name)}/${inv.pool.prefix}`, listenPort: inv.listenPort, peers}},
  }
}

function ipsecFile(inv: Inventory, h: HostPlan, overlay: Map<string, string>, hostDir: string): Record<string, unknown> {
  const byName = new Map(inv.hosts.map((x) => [x.name, x]))
  const me = byName.get(h.name)!
  const tunnels: Record<string, unknown> = {}
  for (const l of h.links) {
    tunnels[l.peer] = {
      type: 'ipsec',
      local: me.address.ip,
      remote: byName.get(l.peer)!.address.ip,
      localSubnets: l.local,
      remoteSubnets: l.remote,
      pskFile: posix.join(hostDir, 'secrets', `${l.peer}.psk`),
    }
  }
  const ip = overlay.get(h.name)!
  return {
    version: 1,
    // The host's overlay address, on lo: the traffic selectors carry it, and it needs no device of its own.
    addresses: [{dev: 'lo', address: `${ip}/${ip.includes(':') ? 128 : 32}`}],
    ...(h.hub ? {sysctls: {[inv.pool.family === 4 ? 'ip_forward' : 'ip6_forward']: '1'}} : {}),
    tunnels,
  }
}

/** A name that can be a bundle's folder (any fleet type's host name rule). */
const bundleName = (name: string) => HOST_NAME.wireguard.re.test(name)

/** What the render writes and removes, computed without changing anything. */
function compute(input: RenderInput): {result: RenderResult; writes: Map<string, Planned>; removes: string[]} {
  const outDir = resolve(input.outDir)
  const hostDir = checkedHostDir(outDir, input.hostDir)
  const inv = parseInventory(input.inventory.text, input.inventory.source)
  const overlayPath = join(outDir, OVERLAY_FILE)
  const stored = readAssignments(readIf(overlayPath), overlayPath)
  const assignment = assignOverlay(inv, stored, input.inventory.source)
  const names = inv.hosts.map((h) => h.name)
  const keys = wireguardKeys(inv, input.pubkeys, names)
  const plans = plan(inv, assignment.addresses)

  const writes = new Map<string, Planned>()
  writes.set(overlayPath, {content: writeAssignments(inv, assignment), secret: false})
  for (const h of plans) {
    const doc = inv.type === 'wireguard' ? wireguardFile(inv, h, assignment.addresses, keys) : ipsecFile(inv, h, assignment.addresses, hostDir)
    writes.set(join(outDir, h.name, 'host.yaml'), {content: HEADER(h.name, hostDir) + toYaml(doc), secret: false})
  }
  if (inv.type === 'ipsec') planPairKeys(plans, outDir, writes)
  const removes = leftOver(outDir, stored.keys(), names, writes)
  const files = fileActions(writes, removes)
  const result: RenderResult = {
    outDir,
    hostDir,
    type: inv.type,
    topology: inv.topology,
    hosts: plans.map((h) => ({
      name: h.name,
      overlay: assignment.addresses.get(h.name)!,
      hub: h.hub,
      peers: h.links.map((l) => l.peer),
      bundle: join(outDir, h.name),
    })),
    files,
    assigned: assignment.fresh,
    changed: files.some((f) => f.action !== 'unchanged'),
    dryRun: Boolean(input.dryRun),
  }
  return {result, writes, removes}
}

/** --host-dir (an absolute path without spaces or quotes, the default when not given); -o must be a folder if it exists. */
function checkedHostDir(outDir: string, hostDir: string = DEFAULT_HOST_DIR): string {
  if (!isAbsolute(hostDir) || /[\s"'\\]/.test(hostDir))
    throw new UsageError(`--host-dir "${hostDir}" is not an absolute path`, `give the folder the bundles are copied to on the hosts, e.g. ${DEFAULT_HOST_DIR}`)
  if (existsSync(outDir) && !statSync(outDir).isDirectory()) throw new UsageError(`${outDir} is not a folder`, 'give -o a folder (made if missing)')
  return hostDir
}

/** A WireGuard fleet's public keys by host, from --pubkeys (required); none for IPsec. */
function wireguardKeys(inv: Inventory, pubkeys: RenderInput['pubkeys'], names: string[]): Map<string, string> {
  if (inv.type !== 'wireguard') return new Map<string, string>()
  if (!pubkeys)
    throw new UsageError(
      'a WireGuard fleet needs --pubkeys FILE',
      `gather each host's key with "netkit tunnel pubkey ${inv.tunnel}" into a file of "NAME: KEY" lines`,
    )
  return readPubkeys(pubkeys.text, pubkeys.source, names, inv.tunnel)
}

/** IPsec: each linked pair's key, the same in both hosts' secrets folders (kept from the last render when it still matches). */
function planPairKeys(plans: HostPlan[], outDir: string, writes: Map<string, Planned>): void {
  for (const h of plans) {
    for (const l of h.links) {
      if (l.peer < h.name) continue // each pair once
      const a = {host: h.name, path: join(outDir, h.name, 'secrets', `${l.peer}.psk`)}
      const b = {host: l.peer, path: join(outDir, l.peer, 'secrets', `${h.name}.psk`)}
      const {psk} = pairPsk({...a, text: readIf(a.path)}, {...b, text: readIf(b.path)})
      writes.set(a.path, {content: `${psk}\n`, secret: true})
      writes.set(b.path, {content: `${psk}\n`, secret: true})
    }
  }
}

/** What the last render made and this one does not: bundles of hosts that left, keys of pairs that are no more. */
function leftOver(outDir: string, before: Iterable<string>, names: string[], writes: Map<string, Planned>): string[] {
  const removes: string[] = []
  const inInventory = new Set(names)
  for (const name of before) {
    const dir = join(outDir, name)
    if (!inInventory.has(name) && bundleName(name) && existsSync(join(dir, 'host.yaml'))) removes.push(dir)
  }
  for (const name of names) {
    const dir = join(outDir, name, 'secrets')
    let entries: string[] = []
    try {
      entries = readdirSync(dir)
    } catch {
      continue
    }
    for (const f of entries.sort()) if (f.endsWith('.psk') && !writes.has(join(dir, f))) removes.push(join(dir, f))
  }
  return removes
}

/** Each file's action: create, update (content or a key's mode differs), unchanged, or remove. */
function fileActions(writes: Map<string, Planned>, removes: string[]): RenderResult['files'] {
  const files: RenderResult['files'] = []
  for (const [path, w] of writes) {
    const now = readIf(path)
    const modeOk = !w.secret || fileMode(path) === 0o600
    files.push({path, action: now === undefined ? 'create' : now === w.content && modeOk ? 'unchanged' : 'update', secret: w.secret})
  }
  for (const path of removes) files.push({path, action: 'remove', secret: path.endsWith('.psk')})
  return files
}

/** Renders the bundles (or, dry, says what it would write and remove). Keys are never in the result. */
export function renderFleet(input: RenderInput): RenderResult {
  const {result, writes, removes} = compute(input)
  if (input.dryRun) return result
  const action = new Map(result.files.map((f) => [f.path, f.action]))
  // Keys first, host files after: a host file never names a key that is not there yet.
  const order = [...writes].sort(([, a], [, b]) => Number(b.secret) - Number(a.secret))
  for (const [path, w] of order) {
    if (action.get(path) === 'unchanged') continue
    if (w.secret) writeSecretFile(path, w.content)
    else writeFileAtomic(path, w.content)
  }
  for (const path of removes) rmSync(path, {recursive: true, force: true})
  return result
}
