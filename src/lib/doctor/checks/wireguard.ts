/**
 * WireGuard key state, per tunnel and, for an interface with peers, per peer: a handshake within REJECT_AFTER_TIME
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
import {allowedIps, type PeerState, REJECT_AFTER_TIME, wgConfPath} from '../../tunnel/wireguard/driver.js'
import {endpointHost, isInterface, peersOf, tunnelEnds} from '../../tunnel/wireguard/peers.js'
import {wgKeyPath} from '../../tunnel/wireguard/keys.js'
import {type Check, type DoctorContext, type Finding, finding, nsFlag, overTunnels} from '../types.js'
import {secretFileFindings} from './secrets.js'
import {routeGet} from '../../iproute2/route-get.js'

const isWireguard = (t: TunnelDef) => t.type === 'wireguard'

export const handshake: Check = {
  id: 'wireguard.handshake',
  title: 'WireGuard handshakes are recent',
  group: 'wireguard',
  run: overTunnels(isWireguard, 'no WireGuard tunnel here', async function (ctx, tunnels) {
    const out: Finding[] = []
    for (const t of tunnels) {
      const st = await tunnelStatus(t, {runner: ctx.runner, configDir: ctx.configDir})
      if (isInterface(t)) {
        out.push(...interfaceHandshakes(this, ctx, t, st.state, (st.details.peers ?? []) as PeerState[]))
        continue
      }
      const peer = (st.details.peer ?? {}) as {handshakeAgeSeconds?: number | null; endpoint?: string}
      const age = peer.handshakeAgeSeconds ?? null
      const endpoint = t.wireguard!.endpoint!
      const evidence = {
        tunnel: t.name,
        state: st.state,
        handshakeAgeSeconds: age,
        keepalive: t.wireguard!.keepalive ?? null,
        endpoint: peer.endpoint ?? endpoint,
      }
      if (st.state === 'down') {
        out.push(
          finding(this, 'fail', {
            subject: t.name,
            evidence,
            reason: `the WireGuard device ${t.wireguard!.ifname} is not up`,
            fix: `netkit tunnel up ${t.name}${nsFlag(ctx)}`,
          }),
        )
      } else if (age === null) {
        out.push(
          finding(this, 'fail', {
            subject: t.name,
            evidence,
            reason: `the peer ${endpoint} never completed a handshake: a public key is wrong on one side, the peer is not set up, or UDP is blocked`,
            fix: `compare "netkit tunnel pubkey ${t.name}${nsFlag(ctx)}" with the peer's --peer-public-key (and the other way round)`,
          }),
        )
      } else if (age > REJECT_AFTER_TIME) {
        const expected = Boolean(t.wireguard!.keepalive)
        out.push(
          finding(this, expected ? 'fail' : 'warn', {
            subject: t.name,
            evidence,
            reason: `the latest handshake was ${age}s ago (over ${REJECT_AFTER_TIME}s, the session has expired)${expected ? ' although keepalives are on: the peer stopped answering' : ': no traffic lately; the next packet starts a new handshake'}`,
            fix: expected ? 'check the peer and the path to it (UDP)' : `if traffic is expected, add --keepalive 25 (re-add with --replace)`,
          }),
        )
      } else {
        out.push(finding(this, 'ok', {subject: t.name, evidence}))
      }
    }
    return out
  }),
}

/**
 * A WireGuard interface's peers, one finding each. WireGuard makes a session
 * only when there is traffic (or a keepalive), and netkit does not wait for
 * an interface's peers: a peer that has not had a handshake yet is a warning,
 * unless keepalives are on (then one is due within seconds).
 */
function interfaceHandshakes(check: Check, ctx: DoctorContext, t: TunnelDef, state: string, peers: PeerState[]): Finding[] {
  const ns = nsFlag(ctx)
  if (state === 'down')
    return [
      finding(check, 'fail', {
        subject: t.name,
        evidence: {tunnel: t.name, state, peers: peers.length},
        reason: `the WireGuard device ${t.wireguard!.ifname} is not up`,
        fix: `netkit tunnel up ${t.name}${ns}`,
      }),
    ]
  if (peers.length === 0) return [finding(check, 'skip', {subject: t.name, reason: `tunnel ${t.name} has no peers yet`, evidence: {tunnel: t.name}})]
  return peers.map((p) => peerHandshake(check, t, p, ns))
}

/** One peer of an interface: missing from the device, never a handshake, an expired session, or ok. */
function peerHandshake(check: Check, t: TunnelDef, p: PeerState, ns: string): Finding {
  const subject = `${t.name} peer ${p.name}`
  const age = p.handshakeAgeSeconds
  const evidence = {
    tunnel: t.name,
    peer: p.name,
    handshakeAgeSeconds: age,
    keepalive: p.keepalive,
    endpoint: p.endpoint,
    rxBytes: p.rxBytes,
    txBytes: p.txBytes,
  }
  if (!p.present) {
    return finding(check, 'fail', {
      subject,
      evidence,
      reason: `peer ${p.name} is defined but the device ${t.wireguard!.ifname} does not have it (removed behind netkit's back)`,
      fix: `netkit tunnel peer add ${t.name} ${p.name} --public-key ${p.publicKey} --allowed-ips ${p.allowedIps.join(',')}${p.endpoint ? ` --endpoint ${p.endpoint}` : ''}${ns} (or apply the host file again)`,
    })
  }
  if (age === null) return noHandshakeYet(check, t, p, ns, subject, evidence)
  if (age > REJECT_AFTER_TIME) {
    const expected = Boolean(p.keepalive)
    return finding(check, expected ? 'fail' : 'warn', {
      subject,
      evidence,
      reason: `the latest handshake with peer ${p.name} was ${age}s ago (over ${REJECT_AFTER_TIME}s, the session has expired)${expected ? ' although keepalives are on: the peer stopped answering' : ': no traffic lately; the next packet starts a new handshake'}`,
      fix: expected ? 'check the peer and the path to it (UDP)' : 'if traffic is expected, give the peer a keepalive (--keepalive 25)',
    })
  }
  return finding(check, 'ok', {subject, evidence})
}

/** A peer that never completed a handshake: a failure with keepalives on (one was due), else a warning (no traffic yet, or no endpoint here). */
function noHandshakeYet(check: Check, t: TunnelDef, p: PeerState, ns: string, subject: string, evidence: Record<string, unknown>): Finding {
  if (p.keepalive)
    return finding(check, 'fail', {
      subject,
      evidence,
      reason: `peer ${p.name} never completed a handshake although keepalives are on: a public key is wrong on one side, the peer is not set up, or UDP is blocked`,
      fix: `compare "netkit tunnel pubkey ${t.name}${ns}" with the key the peer has for this host, and ${p.publicKey} with the peer's own`,
    })
  return finding(check, 'warn', {
    subject,
    evidence,
    reason: p.endpoint
      ? `no handshake with peer ${p.name} yet: nothing was sent to it yet, or a key is wrong, the peer is not set up, or UDP is blocked`
      : `peer ${p.name} has no endpoint here and has not connected yet`,
    fix: p.endpoint
      ? `send it traffic (ping an address in ${p.allowedIps[0]}), or set --keepalive 25 for a handshake without traffic`
      : `set up this host on peer ${p.name} (with this host's endpoint there)`,
  })
}

export const endpointLoop: Check = {
  id: 'wireguard.endpoint-route',
  title: 'WireGuard endpoints are not routed through their own tunnel',
  group: 'wireguard',
  run: overTunnels(isWireguard, 'no WireGuard tunnel here', async function (ctx, tunnels) {
    const out: Finding[] = []
    const devices = new Set(tunnels.map((o) => o.wireguard!.ifname))
    for (const t of tunnels) {
      const ends = isInterface(t) ? tunnelEnds(t) : [{subject: t.name, remote: endpointHost(t.wireguard!.endpoint!)}]
      for (const end of ends) {
        const host = end.remote
        let dev: string | undefined
        if (t.wireguard!.fwmark) {
          dev = (await routeGet(ctx.runner, host, {mark: t.wireguard!.fwmark}))?.dev
        } else {
          dev = (await ctx.routeTo(host))?.dev
        }
        const loop = dev !== undefined && devices.has(dev)
        out.push(
          finding(this, loop ? 'fail' : 'ok', {
            subject: end.subject,
            evidence: {endpoint: host, dev: dev ?? null},
            ...(loop
              ? {
                  reason: `the route to the endpoint ${host} goes through ${dev}, a WireGuard device: the tunnel's own packets would loop into it`,
                  fix: `remove the route that sends ${host} into ${dev} (its allowed-ips or a --remote-subnet covers the endpoint), or set --fwmark with a rule that keeps marked packets out`,
                }
              : {}),
          }),
        )
      }
    }
    return out
  }),
}

export const allowedIpsCheck: Check = {
  id: 'wireguard.allowed-ips',
  title: 'WireGuard allowed-ips do not shadow local subnets or each other',
  group: 'wireguard',
  run: overTunnels(isWireguard, 'no WireGuard tunnel here', async function (ctx, tunnels) {
    const out: Finding[] = []
    const seenKeys = new Map<string, string>()
    const name = (t: TunnelDef, peer: string) => (isInterface(t) ? `peer ${peer} of tunnel ${t.name}` : `tunnel ${t.name}`)
    // Each tunnel's allowed-ips worked out once (every pair of tunnels is compared).
    const allowed = new Map(tunnels.map((t) => [t, allowedIps(t)]))
    for (const t of tunnels) {
      const mine = allowed.get(t)!
      const problems: string[] = []
      for (const local of t.localSubnets) {
        for (const a of mine) if (v.overlaps(local, a)) problems.push(`${a} overlaps the local subnet ${local}`)
      }
      for (const o of tunnels) {
        if (o === t) continue
        for (const a of mine) for (const b of allowed.get(o)!) if (v.overlaps(a, b)) problems.push(`${a} overlaps ${b} of tunnel ${o.name}`)
      }
      for (const p of peersOf(t)) {
        const other = seenKeys.get(p.publicKey)
        if (other) problems.push(`${isInterface(t) ? `peer ${p.name} has ` : ''}the same peer public key as ${other}`)
        seenKeys.set(p.publicKey, name(t, p.name))
      }
      out.push(
        finding(this, problems.length ? 'fail' : 'ok', {
          subject: t.name,
          evidence: {allowedIps: mine, localSubnets: t.localSubnets},
          ...(problems.length
            ? {
                reason: `${problems.join('; ')}: traffic goes to the wrong peer or nowhere`,
                fix: isInterface(t)
                  ? 'give each peer distinct allowed-ips and its own key ("netkit tunnel peer add ... --replace")'
                  : 'give each peer distinct subnets and its own key (re-add with --replace)',
              }
            : {}),
        }),
      )
    }
    return out
  }),
}

export const wgSecrets: Check = {
  id: 'wireguard.keys',
  title: 'WireGuard key files readable by root only',
  group: 'wireguard',
  run: overTunnels(isWireguard, 'no WireGuard tunnel here', async function (ctx, tunnels) {
    const dir = scopeDir(ctx.configDir, ctx.runner.netns)
    const files = tunnels
      .flatMap((t: TunnelDef) => [
        {path: wgKeyPath(dir, t.name), what: 'the private key file'},
        {path: wgConfPath(dir, t.wireguard!.ifname), what: 'the wg-quick config (it holds the private key)'},
      ])
      .filter((f) => existsSync(f.path))
    return secretFileFindings(this, files)
  }),
}

export const wireguardChecks: Check[] = [handshake, endpointLoop, allowedIpsCheck, wgSecrets]
