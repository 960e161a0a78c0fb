/**
 * Parsers for `ip xfrm policy list` and `ip xfrm state list`, which have no
 * JSON. Formats as printed by iproute2's ip/ipxfrm.c (xfrm_selector_print,
 * xfrm_policy_info_print, xfrm_tmpl_print, xfrm_state_info_print,
 * xfrm_algo_print): a block starts at column 0 with "src A dst B", and its
 * details follow on indented lines. Key material (the hex after an algorithm
 * name) is dropped by parseStates (only a short digest is kept, to tell a
 * changed key); stateKeys alone returns it, as Secrets, for re-adding an SA
 * on undo.
 */
import {createHash} from 'node:crypto'

import type {Secret} from '../runner.js'

export interface XfrmTmpl {
  src: string
  dst: string
  proto: string
  reqid: number
  mode: string
  spi?: string
  level?: string
}

export interface XfrmPolicy {
  src: string
  dst: string
  dir: string
  priority: number
  action: 'allow' | 'block'
  ptype?: string
  mark?: string
  ifId?: number
  /** Upper-layer selector details ("proto tcp dport 80"), if any. */
  upper?: string
  tmpls: XfrmTmpl[]
}

export interface XfrmState {
  src: string
  dst: string
  proto: string
  spi: string
  reqid: number
  mode: string
  mark?: string
  /** Algorithm names only, e.g. ["aead rfc4106(gcm(aes)) 128"], ["enc cbc(aes)", "auth-trunc hmac(sha256) 128"]. */
  algorithms: string[]
  /** A digest of the keys (never the keys): a changed key is a changed SA. */
  keyDigest?: string
  encap?: string
  selector?: string
}

function blocks(text: string): string[][] {
  const out: string[][] = []
  for (const line of text.split('\n')) {
    if (!line.trim()) continue
    if (/^src /.test(line)) out.push([line.trim()])
    else if (out.length) out.at(-1)!.push(line.trim())
  }
  return out
}

function head(line: string): {src: string; dst: string; upper?: string} {
  const m = /^src (\S+) dst (\S+)\s*(.*)$/.exec(line)
  return {src: m?.[1] ?? '', dst: m?.[2] ?? '', ...(m?.[3]?.trim() ? {upper: m[3].trim()} : {})}
}

const word = (line: string, key: string): string | undefined => new RegExp(`(?:^|\\s)${key} (\\S+)`).exec(line)?.[1]

export function parsePolicies(text: string): XfrmPolicy[] {
  return blocks(text).map((b) => {
    const h = head(b[0])
    const p: XfrmPolicy = {src: h.src, dst: h.dst, dir: '', priority: 0, action: 'allow', tmpls: [], ...(h.upper ? {upper: h.upper} : {})}
    for (let i = 1; i < b.length; i++) {
      const l = b[i]
      if (/^(dir|socket) /.test(l)) {
        p.dir = word(l, 'dir') ?? (l.startsWith('socket') ? `socket-${word(l, 'socket')}` : '')
        p.priority = Number(word(l, 'priority') ?? 0)
        p.action = word(l, 'action') === 'block' ? 'block' : 'allow'
        const pt = word(l, 'ptype')
        if (pt) p.ptype = pt
      } else if (l.startsWith('mark ')) {
        p.mark = word(l, 'mark')
      } else if (l.startsWith('if_id ')) {
        p.ifId = Number(word(l, 'if_id'))
      } else if (l.startsWith('tmpl ')) {
        const t: XfrmTmpl = {src: word(l, 'src') ?? '', dst: word(l, 'dst') ?? '', proto: '', reqid: 0, mode: ''}
        const next = b[i + 1] ?? ''
        if (/^proto /.test(next)) {
          t.proto = word(next, 'proto') ?? ''
          t.reqid = Number(word(next, 'reqid') ?? 0)
          t.mode = word(next, 'mode') ?? ''
          const spi = word(next, 'spi')
          if (spi) t.spi = spi
          i++
          const lvl = b[i + 1] ?? ''
          if (/^level /.test(lvl)) {
            t.level = word(lvl, 'level')
            i++
          }
        }
        p.tmpls.push(t)
      }
    }
    return p
  })
}

export function parseStates(text: string): XfrmState[] {
  return blocks(text).map((b) => {
    const h = head(b[0])
    const s: XfrmState = {src: h.src, dst: h.dst, proto: '', spi: '', reqid: 0, mode: '', algorithms: []}
    const keys: string[] = []
    for (const l of b.slice(1)) {
      if (l.startsWith('proto ')) {
        s.proto = word(l, 'proto') ?? ''
        s.spi = word(l, 'spi') ?? ''
        s.reqid = Number(word(l, 'reqid') ?? 0)
        s.mode = word(l, 'mode') ?? ''
      } else if (l.startsWith('mark ')) {
        s.mark = word(l, 'mark')
      } else if (/^(aead|enc|auth|auth-trunc|comp) /.test(l)) {
        // "enc cbc(aes) 0x<key>", "auth-trunc hmac(sha256) 0x<key> 128", "aead rfc4106(gcm(aes)) 0x<key> 128": keep name and bit lengths, drop the key.
        const words = l.split(/\s+/)
        const isKey = (p: string) => /^0x[0-9a-f]+$/i.test(p)
        s.algorithms.push(words.filter((p) => !isKey(p)).join(' '))
        keys.push(...words.filter(isKey).map((k) => k.toLowerCase()))
      } else if (l.startsWith('encap ')) {
        s.encap = l.replace(/^encap\s+/, '')
      } else if (l.startsWith('sel ')) {
        s.selector = l.replace(/^sel\s+/, '')
      }
    }
    if (keys.length) s.keyDigest = keyDigest(keys)
    return s
  })
}

/** SA keys (hex, 0x...) as a short digest: enough to tell a changed key, nothing to learn it from. */
export function keyDigest(keys: string[]): string {
  return createHash('sha256').update(keys.join(' ')).digest('hex').slice(0, 16)
}

/**
 * Each SA's algorithm arguments for `ip xfrm state add`, keys included as
 * Secrets (from `ip xfrm state list`), by "src dst spi": what it takes to put
 * back an SA that an undo must restore. Nothing else should want this.
 */
export function stateKeys(text: string, secret: (key: string) => Secret): Map<string, (string | Secret)[]> {
  const out = new Map<string, (string | Secret)[]>()
  for (const b of blocks(text)) {
    const h = head(b[0])
    const spi = b.map((l) => (l.startsWith('proto ') ? word(l, 'spi') : undefined)).find(Boolean)
    const args: (string | Secret)[] = []
    for (const l of b.slice(1)) {
      if (!/^(aead|enc|auth|auth-trunc|comp) /.test(l)) continue
      for (const w of l.split(/\s+/)) args.push(/^0x[0-9a-f]+$/i.test(w) ? secret(w.toLowerCase()) : w)
    }
    if (spi) out.set(`${h.src} ${h.dst} ${spi}`, args)
  }
  return out
}
