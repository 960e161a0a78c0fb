/**
 * IPsec key state, per netkit tunnel and per charon: the charon runs and its
 * VICI socket answers; the IKE SA is established and the CHILD_SA installed;
 * rekeying is not overdue and expiry not near; the negotiated selectors are
 * the configured subnets; no weak algorithm is configured or in use; the
 * secret files are mode 0600; and (kernel data path) SPD and SAD agree.
 *
 * The charon looked at is the one the tunnels are in: netkit's own, or the
 * host's strongSwan (system.ts), read over its VICI socket; the findings say which.
 */
import {existsSync} from 'node:fs'

import {weakAlgorithms} from '../../tunnel/define.js'
import {charonPid, charonScope, charonUsesLibipsec} from '../../tunnel/ipsec/charon.js'
import {charonSasRead, connectionFile, connName, effectiveStartAction, ikeName, initiates, loadedConns} from '../../tunnel/ipsec/driver.js'
import {describeSystem, findSystemCharon, type SystemCharon, systemPlugins} from '../../tunnel/ipsec/system.js'
import type {IkeSa} from '../../tunnel/ipsec/vici.js'
import {pskPath, scopeDir} from '../../tunnel/store.js'
import type {TunnelDef} from '../../tunnel/types.js'
import {contains} from '../../validate.js'
import {type Check, type DoctorContext, type Finding, finding, nsFlag, overTunnels, perRun} from '../types.js'
import {secretFileFindings} from './secrets.js'

const isIpsec = (t: TunnelDef) => t.type === 'ipsec'
const ipsecTunnels = (ctx: DoctorContext) => ctx.tunnels.filter(isIpsec)
const NO_IPSEC = 'no IPsec tunnel here'
const NO_SITE_TO_SITE = 'no site-to-site IPsec tunnel here'

/** A tunnel's IKE SAs (its connection's, shared with the tunnels to the same peer), each with only this tunnel's CHILD_SAs. */
function tunnelSas(sas: Map<string, IkeSa[]> | undefined, t: TunnelDef): IkeSa[] {
  return (sas?.get(ikeName(t)) ?? []).map((s) => ({...s, children: s.children.filter((c) => c.name === connName(t))}))
}

/** The host's own charon, when the tunnels here are in it (the root namespace, and netkit runs no charon of its own there). */
function systemOf(ctx: DoctorContext): SystemCharon | undefined {
  if (ctx.runner.netns) return undefined
  if (charonPid(charonScope(scopeDir(ctx.configDir, ctx.runner.netns), ctx.runner.netns)) !== undefined) return undefined
  return findSystemCharon()
}

/** Whether the charon the tunnels are in runs kernel-libipsec (undefined: no charon). */
async function usesLibipsec(ctx: DoctorContext): Promise<boolean | undefined> {
  const sys = systemOf(ctx)
  if (sys) {
    const plugins = await ctx.runner.memo(`vici stats ${sys.socket}`, () => systemPlugins(sys))
    return plugins ? plugins.includes('kernel-libipsec') : undefined
  }
  return charonUsesLibipsec(charonScope(scopeDir(ctx.configDir, ctx.runner.netns), ctx.runner.netns))
}

/** The SAs of each tunnel, read once per run (one VICI list-sas of the charon, shared with the tunnels' status); undefined: no charon, or it does not answer. */
const sasOf = perRun(async (ctx): Promise<Map<string, IkeSa[]> | undefined> => {
  const scope = charonScope(scopeDir(ctx.configDir, ctx.runner.netns), ctx.runner.netns)
  const sys = systemOf(ctx)
  if (!sys && charonPid(scope) === undefined) return undefined
  const sas = await charonSasRead(ctx.runner, scope, sys)
  if (!sas) return undefined
  const by = new Map<string, IkeSa[]>()
  for (const sa of sas) by.set(sa.name, [...(by.get(sa.name) ?? []), sa])
  return by
})

/** A check of the IPsec tunnels that needs charon's SAs: skipped when there is none, or charon does not run. */
function withSas(run: (this: Check, ctx: DoctorContext, tunnels: TunnelDef[], sas: Map<string, IkeSa[]>) => Promise<Finding[]>): Check['run'] {
  return overTunnels(isIpsec, NO_IPSEC, async function (ctx, tunnels) {
    const sas = await sasOf(ctx)
    if (!sas) return [finding(this, 'skip', {reason: 'charon is not running (see ipsec.charon)'})]
    return run.call(this, ctx, tunnels, sas)
  })
}

export const charonRunning: Check = {
  id: 'ipsec.charon',
  title: 'charon runs and answers on its VICI socket',
  group: 'ipsec',
  run: overTunnels(isIpsec, NO_IPSEC, async function (ctx) {
    const sys = systemOf(ctx)
    if (sys) return systemCharonFindings(this, ctx, sys, (await sasOf(ctx)) !== undefined)
    const scope = charonScope(scopeDir(ctx.configDir, ctx.runner.netns), ctx.runner.netns)
    const pid = charonPid(scope)
    const sas = await sasOf(ctx)
    const evidence = {charon: 'netkit', pid: pid ?? null, socket: scope.socket, answers: sas !== undefined}
    if (pid !== undefined && sas !== undefined)
      return [finding(this, 'ok', {evidence, reason: `netkit's charon of ${ctx.runner.netns ? `namespace ${ctx.runner.netns}` : 'this host'}, pid ${pid}`})]
    const names = ipsecTunnels(ctx).map((t) => t.name)
    return [
      finding(this, 'fail', {
        evidence,
        reason:
          pid === undefined
            ? `the charon of ${ctx.runner.netns ? `namespace ${ctx.runner.netns}` : 'this host'} is not running: tunnels ${names.join(', ')} are down`
            : `charon (pid ${pid}) does not answer on ${scope.socket}`,
        fix: names.map((n) => `netkit tunnel up ${n}${nsFlag(ctx)}`).join(' && '),
      }),
    ]
  }),
}

/**
 * The host's own charon: it answers on its VICI socket, and holds netkit's
 * connections (an operator's `swanctl --load-all` with netkit's files moved
 * away, or a restart of strongSwan without them, would have dropped them).
 */
async function systemCharonFindings(check: Check, ctx: DoctorContext, sys: SystemCharon, answers: boolean): Promise<Finding[]> {
  const which = describeSystem(sys)
  const names = ipsecTunnels(ctx).map((t) => t.name)
  const up = names.map((n) => `netkit tunnel up ${n}`).join(' && ')
  if (!answers) {
    return [
      finding(check, 'fail', {
        subject: 'system charon',
        evidence: {charon: 'system', program: sys.program, pid: sys.pid, socket: sys.socket, answers: false},
        reason: `${which} does not answer on its VICI socket: tunnels ${names.join(', ')} cannot be read or brought up`,
        fix: `check strongSwan (systemctl status strongswan) and that its vici plugin is loaded; then ${up}`,
      }),
    ]
  }
  const conns = (await loadedConns(ctx.runner, sys)) ?? []
  const missing = ipsecTunnels(ctx).filter((t) => !conns.includes(ikeName(t)))
  const evidence = {
    charon: 'system',
    program: sys.program,
    pid: sys.pid,
    socket: sys.socket,
    answers: true,
    loaded: conns.filter((c) => c.startsWith('netkit-')),
  }
  if (missing.length === 0) return [finding(check, 'ok', {subject: 'system charon', evidence, reason: which})]
  return [
    finding(check, 'fail', {
      subject: 'system charon',
      evidence,
      reason: `${which} answers but does not hold the connection of tunnel${missing.length > 1 ? 's' : ''} ${missing.map((t) => t.name).join(', ')} (was strongSwan restarted, or its files in /etc/swanctl/conf.d moved?)`,
      fix: missing.map((t) => `netkit tunnel up ${t.name}`).join(' && '),
    }),
  ]
}

export const saState: Check = {
  id: 'ipsec.sa',
  title: 'IKE SA established, CHILD_SA installed, rekey on time',
  group: 'ipsec',
  run: withSas(async function (ctx, tunnels, sas) {
    const libipsec = Boolean(await usesLibipsec(ctx))
    const out: Finding[] = []
    for (const t of tunnels) {
      const list = tunnelSas(sas, t)
      const ike = list.find((s) => s.state === 'ESTABLISHED' && s.children.some((c) => c.state === 'INSTALLED')) ?? list.find((s) => s.state === 'ESTABLISHED')
      const child = ike?.children.find((c) => c.state === 'INSTALLED')
      const evidence = {
        tunnel: t.name,
        ikeSas: list.map((s) => ({
          state: s.state,
          rekeyTime: s.rekeyTime ?? null,
          children: s.children.map((c) => ({state: c.state, rekeyTime: c.rekeyTime ?? null, lifeTime: c.lifeTime ?? null})),
        })),
      }
      if (!ike || !child) {
        const action = effectiveStartAction(t, libipsec)
        const trap = action === 'trap'
        const answering = action === 'none' && t.ipsec!.startAction !== 'none' && !initiates(t)
        out.push(
          finding(this, (trap || answering) && list.length === 0 ? 'warn' : 'fail', {
            subject: t.name,
            evidence,
            reason: !ike
              ? `no established IKE SA with ${t.remote}${trap ? ' (start action trap: the first packet to the remote subnets starts it)' : answering ? ` (${t.remote} starts it, being the end with the lower address, and has not: is the tunnel set up there?)` : action === 'none' ? ' (start action none: nothing starts it but "tunnel up")' : ' although charon keeps initiating: the peer does not answer or refuses'}`
              : 'the IKE SA is up but no CHILD_SA is installed: traffic is not protected',
            fix: `netkit tunnel up ${t.name}${nsFlag(ctx)}, and "netkit tunnel show ${t.name}${nsFlag(ctx)}" for the SA state`,
          }),
        )
        continue
      }
      const problems: string[] = []
      if (child.rekeyTime !== undefined && child.rekeyTime <= 0) problems.push(`the CHILD_SA rekey is overdue by ${-child.rekeyTime}s`)
      if (child.lifeTime !== undefined && child.lifeTime < 60) problems.push(`the CHILD_SA expires in ${child.lifeTime}s`)
      if (ike.rekeyTime !== undefined && ike.rekeyTime <= 0) problems.push('the IKE SA rekey is overdue')
      out.push(
        finding(this, problems.length ? 'warn' : 'ok', {
          subject: t.name,
          evidence,
          ...(problems.length
            ? {
                reason: `${problems.join('; ')}: the peer may not answer rekeys`,
                fix: `check the peer, then "netkit tunnel down ${t.name}${nsFlag(ctx)} && netkit tunnel up ${t.name}${nsFlag(ctx)}"`,
              }
            : {}),
        }),
      )
    }
    return out
  }),
}

/**
 * One IKE SA per peer. Two established ones for one connection each carry
 * CHILD_SAs, and only one carries the traffic. netkit's own configuration
 * cannot make them (one end starts, unique = replace settles the rest), so
 * they come from a configuration an older netkit loaded, where both ends
 * started one: a warning, and the fix loads netkit's configuration again
 * (down and up of the tunnels that share the connection).
 */
export const duplicateSas: Check = {
  id: 'ipsec.duplicates',
  title: 'One IKE SA per peer',
  group: 'ipsec',
  run: withSas(async function (ctx, tunnels, sas) {
    const out: Finding[] = []
    const seen = new Set<string>()
    for (const t of tunnels) {
      const ike = ikeName(t)
      if (seen.has(ike)) continue
      seen.add(ike)
      const names = tunnels.filter((o) => ikeName(o) === ike).map((o) => o.name)
      const established = (sas.get(ike) ?? []).filter((s) => s.state === 'ESTABLISHED')
      const evidence = {
        connection: ike,
        tunnels: names,
        ikeSas: established.map((s) => ({
          uniqueId: s.uniqueId ?? null,
          initiator: s.initiator,
          established: s.established ?? null,
          children: s.children.map((c) => ({name: c.name, state: c.state, bytesIn: c.bytesIn, bytesOut: c.bytesOut})),
        })),
      }
      if (established.length <= 1) {
        out.push(finding(this, 'ok', {subject: names.join(', '), evidence}))
        continue
      }
      const ns = nsFlag(ctx)
      out.push(
        finding(this, 'warn', {
          subject: names.join(', '),
          evidence,
          reason: `${established.length} IKE SAs with ${t.remote} for tunnel${names.length > 1 ? 's' : ''} ${names.join(', ')}, each with its CHILD_SAs: only one carries the traffic (both ends started one, as a configuration from an older netkit does; do the same on ${t.remote} if it has one)`,
          fix: [...names.map((n) => `netkit tunnel down ${n}${ns}`), ...names.map((n) => `netkit tunnel up ${n}${ns}`)].join(' && '),
        }),
      )
    }
    return out
  }),
}

export const selectors: Check = {
  id: 'ipsec.selectors',
  title: 'Traffic selectors match the configured subnets',
  group: 'ipsec',
  run: overTunnels(
    (t) => isIpsec(t) && (t.localSubnets.length > 0 || t.remoteSubnets.length > 0),
    NO_SITE_TO_SITE,
    async function (ctx, tunnels) {
      const sas = await sasOf(ctx)
      const out: Finding[] = []
      for (const t of tunnels) {
        const child = tunnelSas(sas, t)
          .flatMap((s) => s.children)
          .find((c) => c.state === 'INSTALLED')
        if (!child) {
          out.push(finding(this, 'skip', {subject: t.name, reason: 'no CHILD_SA installed (see ipsec.sa)'}))
          continue
        }
        const same = (a: string[], b: string[]) => [...a].sort().join() === [...b].sort().join()
        const ok = same(child.localTs, t.localSubnets) && same(child.remoteTs, t.remoteSubnets)
        out.push(
          finding(this, ok ? 'ok' : 'fail', {
            subject: t.name,
            evidence: {configured: {local: t.localSubnets, remote: t.remoteSubnets}, negotiated: {local: child.localTs, remote: child.remoteTs}},
            ...(ok
              ? {}
              : {
                  reason: `negotiated ${child.localTs.join(',')} === ${child.remoteTs.join(',')}, configured ${t.localSubnets.join(',')} === ${t.remoteSubnets.join(',')}: part of the traffic is not covered`,
                  fix: "make the peer's subnets mirror this host's, then re-add the tunnel with --replace on both sides",
                }),
          }),
        )
      }
      return out
    },
  ),
}

const WEAK_NEGOTIATED = /NULL|3DES|DES_CBC|MD5|HMAC_SHA1|PRF_HMAC_SHA1|MODP_(768|1024|1536)/

export const algorithms: Check = {
  id: 'ipsec.algorithms',
  title: 'No weak or null algorithms',
  group: 'ipsec',
  run: overTunnels(isIpsec, NO_IPSEC, async function (ctx, tunnels) {
    const sas = await sasOf(ctx)
    const out: Finding[] = []
    for (const t of tunnels) {
      const configured = [...weakAlgorithms(t.ipsec!.proposals), ...weakAlgorithms(t.ipsec!.espProposals)]
      const inUse = tunnelSas(sas, t)
        .flatMap((s) => [s.encrAlg, s.integAlg, s.prfAlg, s.dhGroup, ...s.children.flatMap((c) => [c.encrAlg, c.integAlg, c.dhGroup])])
        .filter((a): a is string => Boolean(a && WEAK_NEGOTIATED.test(a)))
      const weak = [...new Set([...configured, ...inUse])]
      out.push(
        finding(this, weak.length ? 'fail' : 'ok', {
          subject: t.name,
          evidence: {proposals: t.ipsec!.proposals, espProposals: t.ipsec!.espProposals, weak},
          ...(weak.length
            ? {
                reason: `weak or null algorithms: ${weak.join(', ')} (they trade away confidentiality or integrity)`,
                fix: `re-add the tunnel on both hosts without --proposals/--esp-proposals (netkit's defaults are AEAD with Curve25519), with --replace`,
              }
            : {}),
        }),
      )
    }
    return out
  }),
}

export const ipsecSecrets: Check = {
  id: 'ipsec.secrets',
  title: 'IPsec secret files readable by root only',
  group: 'ipsec',
  run: overTunnels(isIpsec, NO_IPSEC, async function (ctx, tunnels) {
    const dir = scopeDir(ctx.configDir, ctx.runner.netns)
    const files = tunnels
      .flatMap((t: TunnelDef) => [
        {path: pskPath(dir, t.name), what: 'the pre-shared key file'},
        {path: connectionFile(t, dir), what: 'the swanctl connection (it holds the key)'},
        ...(t.ipsec?.key ? [{path: t.ipsec.key, what: 'the private key'}] : []),
      ])
      .filter((f) => existsSync(f.path))
    const out = secretFileFindings(this, files)
    return out.length ? out : [finding(this, 'skip', {reason: 'no secret file on disk'})]
  }),
}

/** Kernel data path only: every outbound policy's template has a state, and every state a policy. */
export const spdSad: Check = {
  id: 'ipsec.spd-sad',
  title: 'SPD and SAD agree (kernel data path)',
  group: 'ipsec',
  run: overTunnels(isIpsec, NO_IPSEC, async function (ctx) {
    const pol = await ctx.runner.probe({tool: 'ip', args: ['xfrm', 'policy', 'list']})
    const st = await ctx.runner.probe({tool: 'ip', args: ['xfrm', 'state', 'list']})
    const policyReqids = new Set([...pol.stdout.matchAll(/dir out[\s\S]*?reqid (\d+)/g)].map((m) => m[1]))
    const stateReqids = new Set([...st.stdout.matchAll(/reqid (\d+)/g)].map((m) => m[1]))
    if (policyReqids.size === 0 && stateReqids.size === 0)
      return [finding(this, 'skip', {reason: 'no kernel IPsec policies or states (kernel-libipsec keeps them in charon)'})]
    const noState = [...policyReqids].filter((r) => !stateReqids.has(r))
    const noPolicy = [...stateReqids].filter((r) => !policyReqids.has(r))
    const ok = noState.length === 0 && noPolicy.length === 0
    return [
      finding(this, ok ? 'ok' : 'warn', {
        evidence: {policyReqids: [...policyReqids], stateReqids: [...stateReqids]},
        ...(ok
          ? {}
          : {
              reason: `${noState.length ? `outbound policies without a state (reqid ${noState.join(', ')}): their packets are dropped or trapped` : ''}${noState.length && noPolicy.length ? '; ' : ''}${noPolicy.length ? `states no policy uses (reqid ${noPolicy.join(', ')})` : ''}`,
              fix: `bring the tunnel concerned up again (${ipsecTunnels(ctx)
                .map((t) => `netkit tunnel up ${t.name}${nsFlag(ctx)}`)
                .join(', or ')}; "netkit doctor --check ipsec.sa${nsFlag(ctx)}" says which)`,
            }),
      }),
    ]
  }),
}

/** kernel-libipsec installs a CHILD_SA only if this host owns an address inside each local subnet. */
export const localAddress: Check = {
  id: 'ipsec.local-address',
  title: 'An address of this host in each local subnet (kernel-libipsec)',
  group: 'ipsec',
  run: overTunnels(
    (t) => isIpsec(t) && t.localSubnets.length > 0,
    NO_SITE_TO_SITE,
    async function (ctx, tunnels) {
      const libipsec = await usesLibipsec(ctx)
      if (libipsec === undefined) return [finding(this, 'skip', {reason: 'charon is not running (see ipsec.charon)'})]
      if (!libipsec) return [finding(this, 'skip', {reason: 'the kernel data path does not need one'})]
      const links = await ctx.links()
      const mine = links.flatMap((l) => (l.addr_info ?? []).map((a) => ({ifname: l.ifname, ip: a.local})))
      const out: Finding[] = []
      for (const t of tunnels) {
        for (const subnet of t.localSubnets) {
          const has = mine.find((a) => contains(subnet, a.ip))
          out.push(
            finding(this, has ? 'ok' : 'fail', {
              subject: `${t.name} ${subnet}`,
              evidence: {subnet, address: has ? `${has.ip} on ${has.ifname}` : null},
              ...(has
                ? {}
                : {
                    reason: `no address of this host lies in ${subnet}: with kernel-libipsec charon answers TS_UNACCEPTABLE and the tunnel never carries ${subnet}`,
                    fix: `give the interface that leads to ${subnet} an address in it (netkit addr add IF ADDRESS/PREFIX${nsFlag(ctx)})`,
                  }),
            }),
          )
        }
      }
      return out
    },
  ),
}

export const ipsecChecks: Check[] = [charonRunning, saState, duplicateSas, selectors, algorithms, ipsecSecrets, spdSad, localAddress]
