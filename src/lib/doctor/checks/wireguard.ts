/**
 * WireGuard key state, per tunnel: a handshake within REJECT_AFTER_TIME
 * (180 s) when keepalives are configured, a peer that never completed one, an
 * endpoint routed through the tunnel itself (a loop), allowed-ips that shadow
 * a local subnet or overlap another peer's, the same peer key on two tunnels,
 * and key files readable by root only.
 */
import {existsSync} from 'node:fs'

import * as v from '../../validate.js'
import {tunnelStatus} from '../../tunnel/service.js'
import {scopeDir} from '../../tunnel/store.js'
import type {TunnelDef} from '../../tunnel/types.js'
import {allowedIps, REJECT_AFTER_TIME, wgConfPath} from '../../tunnel/wireguard/driver.js'
import {wgKeyPath} from '../../tunnel/wireguard/keys.js'
import {type Check, type DoctorContext, type Finding, finding, nsFlag} from '../types.js'
import {secretFileFindings} from './secrets.js'

const wgTunnels = (ctx: DoctorContext) => ctx.tunnels.filter((t) => t.type === 'wireguard')
const none = (c: Check) => [finding(c, 'skip', {reason: 'no WireGuard tunnel here'})]

export const handshake: Check = {
  id: 'wireguard.handshake',
  title: 'WireGuard handshakes are recent',
  group: 'wireguard',
  async run(ctx) {
    const tunnels = wgTunnels(ctx)
    if (tunnels.length === 0) return none(this)
    const out: Finding[] = []
    for (const t of tunnels) {
      const st = await tunnelStatus(t, {runner: ctx.runner, configDir: ctx.configDir})
      const peer = (st.details.peer ?? {}) as {handshakeAgeSeconds?: number | null; endpoint?: string}
      const age = peer.handshakeAgeSeconds ?? null
      const evidence = {tunnel: t.name, state: st.state, handshakeAgeSeconds: age, keepalive: t.wireguard!.keepalive ?? null, endpoint: peer.endpoint ?? t.wireguard!.endpoint}
      if (st.state === 'down') {
        out.push(finding(this, 'fail', {subject: t.name, evidence, reason: `the WireGuard device ${t.wireguard!.ifname} is not up`, fix: `netkit tunnel up ${t.name}${nsFlag(ctx)}`}))
      } else if (age === null) {
        out.push(finding(this, 'fail', {subject: t.name, evidence, reason: `the peer ${t.wireguard!.endpoint} never completed a handshake: a public key is wrong on one side, the peer is not set up, or UDP is blocked`, fix: `compare "netkit tunnel pubkey ${t.name}${nsFlag(ctx)}" with the peer's --peer-public-key (and the other way round)`}))
      } else if (age > REJECT_AFTER_TIME) {
        const expected = Boolean(t.wireguard!.keepalive)
        out.push(finding(this, expected ? 'fail' : 'warn', {
          subject: t.name,
          evidence,
          reason: `the latest handshake was ${age}s ago (over ${REJECT_AFTER_TIME}s, the session has expired)${expected ? ' although keepalives are on: the peer stopped answering' : ': no traffic lately; the next packet starts a new handshake'}`,
          fix: expected ? 'check the peer and the path to it (UDP)' : `if traffic is expected, add --keepalive 25 (re-add with --replace)`,
        }))
      } else {
        out.push(finding(this, 'ok', {subject: t.name, evidence}))
      }
    }
    return out
  },
}

export const endpointLoop: Check = {
  id: 'wireguard.endpoint-route',
  title: 'WireGuard endpoints are not routed through their own tunnel',
  group: 'wireguard',
  async run(ctx) {
    const tunnels = wgTunnels(ctx)
    if (tunnels.length === 0) return none(this)
    const out: Finding[] = []
    for (const t of tunnels) {
      const host = t.wireguard!.endpoint.replace(/:\d+$/, '').replace(/^\[|\]$/g, '')
      const r = await ctx.runner.probe({tool: 'ip', args: ['-j', 'route', 'get', host, ...(t.wireguard!.fwmark ? ['mark', String(t.wireguard!.fwmark)] : [])]})
      let dev: string | undefined
      try {
        dev = (JSON.parse(r.stdout) as {dev?: string}[])[0]?.dev
      } catch {
        dev = undefined
      }
      const loop = dev !== undefined && tunnels.some((o) => o.wireguard!.ifname === dev)
      out.push(finding(this, loop ? 'fail' : 'ok', {
        subject: t.name,
        evidence: {endpoint: host, dev: dev ?? null},
        ...(loop ? {reason: `the route to the endpoint ${host} goes through ${dev}, a WireGuard device: the tunnel's own packets would loop into it`, fix: `remove the route that sends ${host} into ${dev} (its allowed-ips or a --remote-subnet covers the endpoint), or set --fwmark with a rule that keeps marked packets out`} : {}),
      }))
    }
    return out
  },
}

export const allowedIpsCheck: Check = {
  id: 'wireguard.allowed-ips',
  title: 'WireGuard allowed-ips do not shadow local subnets or each other',
  group: 'wireguard',
  async run(ctx) {
    const tunnels = wgTunnels(ctx)
    if (tunnels.length === 0) return none(this)
    const out: Finding[] = []
    const seenKeys = new Map<string, string>()
    for (const t of tunnels) {
      const mine = allowedIps(t)
      const problems: string[] = []
      for (const local of t.localSubnets) {
        for (const a of mine) if (v.overlaps(local, a)) problems.push(`${a} overlaps the local subnet ${local}`)
      }
      for (const o of tunnels) {
        if (o === t) continue
        for (const a of mine) for (const b of allowedIps(o)) if (v.overlaps(a, b)) problems.push(`${a} overlaps ${b} of tunnel ${o.name}`)
      }
      const other = seenKeys.get(t.wireguard!.peerPublicKey)
      if (other) problems.push(`the same peer public key as tunnel ${other}`)
      seenKeys.set(t.wireguard!.peerPublicKey, t.name)
      out.push(finding(this, problems.length ? 'fail' : 'ok', {
        subject: t.name,
        evidence: {allowedIps: mine, localSubnets: t.localSubnets},
        ...(problems.length ? {reason: `${problems.join('; ')}: traffic goes to the wrong peer or nowhere`, fix: 'give each peer distinct subnets and its own key (re-add with --replace)'} : {}),
      }))
    }
    return out
  },
}

export const wgSecrets: Check = {
  id: 'wireguard.keys',
  title: 'WireGuard key files readable by root only',
  group: 'wireguard',
  async run(ctx) {
    const tunnels = wgTunnels(ctx)
    if (tunnels.length === 0) return none(this)
    const dir = scopeDir(ctx.configDir, ctx.runner.netns)
    const files = tunnels.flatMap((t: TunnelDef) => [
      {path: wgKeyPath(dir, t.name), what: 'the private key file'},
      {path: wgConfPath(dir, t.wireguard!.ifname), what: 'the wg-quick config (it holds the private key)'},
    ]).filter((f) => existsSync(f.path))
    return secretFileFindings(this, files)
  },
}

export const wireguardChecks: Check[] = [handshake, endpointLoop, allowedIpsCheck, wgSecrets]
