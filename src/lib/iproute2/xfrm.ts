/**
 * The SPD and SAD (`ip xfrm policy`, `ip xfrm state`). XFRM objects carry no
 * protocol, so what netkit adds is recorded in the ledger; netkit's policies
 * also get a recognisable default priority. Key material comes only from
 * files (mode 0600) or stdin, travels to `ip` inside `ip -batch -` on stdin,
 * and is shown as <redacted>. Nothing here ever flushes the SPD or SAD.
 */
import {readFileSync} from 'node:fs'

import {NetkitError, UsageError} from '../errors.js'
import {readSecretFile} from '../files.js'
import {espSupport} from '../kernel.js'
import {claim, owns, release, scopeOf} from '../ownership.js'
import {type Arg, type Runner, Secret} from '../runner.js'
import * as v from '../validate.js'
import {parsePolicies, parseStates, type XfrmPolicy, type XfrmState} from './xfrm-parse.js'

/** netkit's policies default to this priority (lower wins; charon's are far higher numbers). */
export const NETKIT_XFRM_PRIORITY = 1780

const hex = (n: number) => `0x${n.toString(16)}`
const markText = (m?: v.Mark) => (m ? `${hex(m.value)}/${hex(m.mask ?? 0xffff_ffff)}` : undefined)

// ---------- policies ----------

export interface PolicySpec {
  src: string
  dst: string
  family: v.Family
  dir: 'in' | 'out' | 'fwd'
  tmplSrc?: string
  tmplDst?: string
  proto: 'esp'
  mode: 'tunnel' | 'transport'
  reqid?: number
  priority: number
  mark?: v.Mark
  action: 'allow' | 'block'
}

export interface PolicyRow extends XfrmPolicy {
  owned: boolean
}

export const policyKey = (p: {src: string; dst: string; dir: string; mark?: string}) => `${p.src} ${p.dst} ${p.dir} ${p.mark ?? '-'}`

export async function listPolicies(runner: Runner, opts: {owned?: boolean; dir?: string} = {}): Promise<PolicyRow[]> {
  const text = await runner.read({tool: 'ip', args: ['xfrm', 'policy', 'list']})
  const scope = scopeOf(runner.netns)
  return parsePolicies(text)
    .map((p) => ({...p, owned: owns(scope, 'xfrm-policy', policyKey(p))}))
    .filter((p) => (!opts.owned || p.owned) && (!opts.dir || p.dir === opts.dir))
}

export function samePolicy(p: XfrmPolicy, s: PolicySpec): boolean {
  const t = p.tmpls[0]
  const tmplOk = s.tmplSrc
    ? Boolean(t && t.src === s.tmplSrc && t.dst === s.tmplDst && t.mode === s.mode && t.proto === s.proto && (s.reqid === undefined || t.reqid === s.reqid))
    : p.tmpls.length === 0
  return p.priority === s.priority && p.action === s.action && tmplOk
}

export function policyArgs(verb: string, s: PolicySpec): Arg[] {
  return [
    'xfrm',
    'policy',
    verb,
    'src',
    s.src,
    'dst',
    s.dst,
    'dir',
    s.dir,
    'priority',
    String(s.priority),
    ...(s.mark ? ['mark', hex(s.mark.value), 'mask', hex(s.mark.mask ?? 0xffff_ffff)] : []),
    'action',
    s.action,
    ...(s.tmplSrc
      ? ['tmpl', 'src', s.tmplSrc, 'dst', s.tmplDst!, 'proto', s.proto, ...(s.reqid !== undefined ? ['reqid', String(s.reqid)] : []), 'mode', s.mode]
      : []),
  ]
}

export async function addPolicy(runner: Runner, s: PolicySpec, opts: {replace?: boolean} = {}): Promise<boolean> {
  if (Boolean(s.tmplSrc) !== Boolean(s.tmplDst)) throw new UsageError('--tmpl-src and --tmpl-dst go together', 'give both (the tunnel endpoints), or neither')
  const key = policyKey({...s, mark: markText(s.mark)})
  const existing = (await listPolicies(runner)).find((p) => policyKey(p) === key)
  if (existing && samePolicy(existing, s)) return false
  if (existing && !opts.replace) {
    throw new NetkitError(
      'E_CONFLICT',
      `an xfrm policy ${s.src} -> ${s.dst} dir ${s.dir}${s.mark ? ` mark ${markText(s.mark)}` : ''} already exists (priority ${existing.priority}, ${existing.action}${existing.tmpls[0] ? `, tmpl ${existing.tmpls[0].src} -> ${existing.tmpls[0].dst}` : ''})${existing.owned ? '' : ", and it is not netkit's"}`,
      {fix: existing.owned ? 'pass --replace to change it, or delete it first' : 'netkit leaves it alone: choose another selector or mark'},
    )
  }
  if (existing && !existing.owned)
    throw new UsageError("the policy in the way is not netkit's", 'netkit leaves it alone: choose another selector or mark', 'E_NOT_OWNED')
  await runner.batch([{args: policyArgs(existing ? 'update' : 'add', s), object: `xfrm policy ${s.src} -> ${s.dst} dir ${s.dir}`}])
  if (!runner.dryRun) claim(scopeOf(runner.netns), 'xfrm-policy', key)
  return true
}

export async function delPolicy(runner: Runner, s: {src: string; dst: string; dir: string; mark?: v.Mark}, opts: {force?: boolean} = {}): Promise<boolean> {
  const key = policyKey({...s, mark: markText(s.mark)})
  const existing = (await listPolicies(runner)).find((p) => policyKey(p) === key)
  const scope = scopeOf(runner.netns)
  if (!existing) {
    if (!runner.dryRun) release(scope, 'xfrm-policy', key)
    return false
  }
  if (!existing.owned && !opts.force)
    throw new UsageError(
      `the xfrm policy ${s.src} -> ${s.dst} dir ${s.dir} was not made by netkit`,
      "netkit leaves other tools' policies alone (charon's, for one); pass --force to delete it anyway",
      'E_NOT_OWNED',
    )
  await runner.batch([
    {
      args: [
        'xfrm',
        'policy',
        'delete',
        'src',
        s.src,
        'dst',
        s.dst,
        'dir',
        s.dir,
        ...(s.mark ? ['mark', hex(s.mark.value), 'mask', hex(s.mark.mask ?? 0xffff_ffff)] : []),
      ],
      object: `xfrm policy ${s.src} -> ${s.dst} dir ${s.dir}`,
    },
  ])
  if (!runner.dryRun) release(scope, 'xfrm-policy', key)
  return true
}

// ---------- states ----------

/** Key lengths in bits that each algorithm takes (AEAD: key plus the 32-bit salt). */
const ENC_BITS: Record<string, number[]> = {'cbc(aes)': [128, 192, 256], 'ctr(aes)': [160, 224, 288], 'cbc(des3_ede)': [192]}
const AEAD_BITS: Record<string, number[]> = {'rfc4106(gcm(aes))': [160, 224, 288], 'rfc7539esp(chacha20,poly1305)': [288], 'rfc4309(ccm(aes))': [152, 216, 280]}
const AUTH_TRUNC: Record<string, number> = {'hmac(sha1)': 96, 'hmac(sha256)': 128, 'hmac(sha384)': 192, 'hmac(sha512)': 256, 'xcbc(aes)': 96}

export interface StateSpec {
  src: string
  dst: string
  spi: number
  mode: 'tunnel' | 'transport'
  reqid?: number
  mark?: v.Mark
  aead?: {alg: string; keyFile: string; icv: number}
  enc?: {alg: string; keyFile: string}
  auth?: {alg: string; keyFile: string}
}

/** Reads a key: hex (0x... or plain hex) from a 0600 file, or from stdin with "-". Its bit length must suit the algorithm. */
export function readKey(path: string, what: string, bits?: number[]): Secret {
  const raw = path === '-' ? readFileSync(0, 'utf8').replace(/\r?\n$/, '') : readSecretFile(path, what)
  const hexText = raw.trim().replace(/^0x/i, '')
  if (!/^[0-9a-f]+$/i.test(hexText) || hexText.length % 2 !== 0)
    throw new UsageError(`${what} ${path} is not a hex key`, 'write the key as hex, e.g. 0x followed by 64 hex digits for 256 bits')
  const len = hexText.length * 4
  if (bits && !bits.includes(len)) throw new UsageError(`${what} ${path} holds a ${len}-bit key`, `this algorithm takes ${bits.join(', ')} bits`)
  if (!bits && (len < 128 || len > 1024)) throw new UsageError(`${what} ${path} holds a ${len}-bit key`, 'use 128 to 1024 bits (256 for hmac(sha256))')
  return new Secret(`0x${hexText.toLowerCase()}`)
}

export interface StateRow extends XfrmState {
  owned: boolean
}

export async function listStates(runner: Runner, opts: {owned?: boolean} = {}): Promise<StateRow[]> {
  const text = await runner.read({tool: 'ip', args: ['xfrm', 'state', 'list']})
  const scope = scopeOf(runner.netns)
  return parseStates(text)
    .map((s) => ({...s, owned: owns(scope, 'xfrm-state', stateKey(s))}))
    .filter((s) => !opts.owned || s.owned)
}

/**
 * An SA's key arguments for `ip xfrm state add`, each key read from its file
 * and checked against the algorithm: Secrets, which reach ip only on stdin.
 * `flag` names the options as the caller's input does (flags, or a host file's keys).
 */
export function stateKeyArgs(
  s: StateSpec,
  flag: (name: 'aead' | 'aead-key-file' | 'icv' | 'enc' | 'enc-key-file' | 'auth' | 'auth-key-file') => string = (n) => `--${n}`,
): Arg[] {
  if (!s.aead && !(s.enc && s.auth))
    throw new UsageError(
      `an SA needs ${flag('aead')} with ${flag('aead-key-file')} and ${flag('icv')}, or ${flag('enc')} with ${flag('enc-key-file')} and ${flag('auth')} with ${flag('auth-key-file')}`,
      `e.g. ${flag('aead')} "rfc4106(gcm(aes))" with a 288-bit key (256 + 32-bit salt) in hex`,
    )
  if (s.aead && (s.enc || s.auth))
    throw new UsageError(`${flag('aead')} cannot be combined with ${flag('enc')}/${flag('auth')}`, 'AEAD does both: choose one form')
  if (s.aead) {
    const bits = AEAD_BITS[s.aead.alg]
    if (!bits) throw new UsageError(`${flag('aead')} ${s.aead.alg} is not an AEAD netkit knows`, `use one of ${Object.keys(AEAD_BITS).join(', ')}`)
    if (![64, 96, 128].includes(s.aead.icv)) throw new UsageError(`${flag('icv')} ${s.aead.icv} is not valid`, 'use 64, 96 or 128 (128 recommended)')
    return ['aead', s.aead.alg, readKey(s.aead.keyFile, flag('aead-key-file'), bits), String(s.aead.icv)]
  }
  const eb = ENC_BITS[s.enc!.alg]
  if (!eb) throw new UsageError(`${flag('enc')} ${s.enc!.alg} is not a cipher netkit knows`, `use one of ${Object.keys(ENC_BITS).join(', ')}`)
  const trunc = AUTH_TRUNC[s.auth!.alg]
  if (!trunc)
    throw new UsageError(`${flag('auth')} ${s.auth!.alg} is not an integrity algorithm netkit knows`, `use one of ${Object.keys(AUTH_TRUNC).join(', ')}`)
  return [
    'enc',
    s.enc!.alg,
    readKey(s.enc!.keyFile, flag('enc-key-file'), eb),
    'auth-trunc',
    s.auth!.alg,
    readKey(s.auth!.keyFile, flag('auth-key-file')),
    String(trunc),
  ]
}

/** `xfrm state add` for an SA, with its key arguments (from stateKeyArgs). */
export function stateAddArgs(s: Omit<StateSpec, 'aead' | 'enc' | 'auth'>, keys: Arg[]): Arg[] {
  return [
    'xfrm',
    'state',
    'add',
    'src',
    s.src,
    'dst',
    s.dst,
    'proto',
    'esp',
    'spi',
    hex(s.spi),
    'mode',
    s.mode,
    ...(s.reqid !== undefined ? ['reqid', String(s.reqid)] : []),
    ...(s.mark ? ['mark', hex(s.mark.value), 'mask', hex(s.mark.mask ?? 0xffff_ffff)] : []),
    ...keys,
  ]
}

export function stateDelArgs(s: {src: string; dst: string; spi: number}): string[] {
  return ['xfrm', 'state', 'delete', 'src', s.src, 'dst', s.dst, 'proto', 'esp', 'spi', hex(s.spi)]
}

/** An SA's name in the ledger (the SPI as `ip xfrm` prints it). */
export const stateKey = (s: {src: string; dst: string; spi: string | number}) =>
  `${s.src} ${s.dst} ${typeof s.spi === 'number' ? `0x${s.spi.toString(16).padStart(8, '0')}` : s.spi}`

export async function addState(runner: Runner, s: StateSpec): Promise<boolean> {
  // Keys first: a bad key file is bad input whatever the kernel can do.
  const keys = stateKeyArgs(s)
  for (const k of keys) if (k instanceof Secret) runner.addSecret(k.value)
  const spi = hex(s.spi)
  const existing = (await listStates(runner)).find((x) => x.src === s.src && x.dst === s.dst && Number(x.spi) === s.spi)
  if (existing) {
    // Keys cannot be read back to compare: the same SPI means the same SA only if netkit made it.
    if (existing.owned) return false
    throw new NetkitError('E_CONFLICT', `an SA ${s.src} -> ${s.dst} spi ${spi} already exists and is not netkit's`, {fix: 'choose another --spi'})
  }
  await requireEsp(runner)
  await runner.batch([{args: stateAddArgs(s, keys), object: `SA ${s.src} -> ${s.dst} spi ${spi}`}])
  if (!runner.dryRun) claim(scopeOf(runner.netns), 'xfrm-state', stateKey(s))
  return true
}

/** The kernel must hold SAs itself (CONFIG_INET_ESP): otherwise a clear error before anything changes. */
export async function requireEsp(runner: Runner): Promise<void> {
  const esp = await espSupport(runner)
  if (!esp.present) {
    throw new NetkitError('E_NO_ESP', 'the kernel has no ESP support (CONFIG_INET_ESP), so it cannot hold this SA', {
      fix: 'load esp4/esp6 (modprobe esp4) on a kernel that has them, or use the userspace data path: "netkit tunnel add --type ipsec" runs strongSwan\'s kernel-libipsec',
      detail: esp.how,
    })
  }
}

export async function delState(runner: Runner, s: {src: string; dst: string; spi: number}, opts: {force?: boolean} = {}): Promise<boolean> {
  const existing = (await listStates(runner)).find((x) => x.src === s.src && x.dst === s.dst && Number(x.spi) === s.spi)
  if (!existing) return false
  if (!existing.owned && !opts.force)
    throw new UsageError(
      `the SA ${s.src} -> ${s.dst} spi ${hex(s.spi)} was not made by netkit`,
      "netkit leaves other tools' SAs alone; pass --force to delete it anyway",
      'E_NOT_OWNED',
    )
  await runner.batch([{args: stateDelArgs(s), object: `SA spi ${hex(s.spi)}`}])
  if (!runner.dryRun) release(scopeOf(runner.netns), 'xfrm-state', stateKey(existing))
  return true
}
