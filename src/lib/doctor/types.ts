/**
 * The doctor's vocabulary. A check looks at one thing and yields findings:
 * ok, warn, fail or skip, each warn and fail with a one-line reason and the
 * exact fix. Findings whose fix is safe to apply (a sysctl, a file mode, a
 * leftover netkit owns) carry it as `remedy`, which `doctor --fix` runs.
 */
import type {Runner} from '../runner.js'
import type {HostSetting} from '../tunnel/host.js'
import type {TunnelDef} from '../tunnel/types.js'
import type {RouteGet} from '../iproute2/route-get.js'
import type {IpLinkWithAddresses} from '../iproute2/json.js'
import {netnsFlag} from '../wording.js'

export type Verdict = 'ok' | 'warn' | 'fail' | 'skip'

export interface Remedy {
  /**
   * What it will do, shown before asking: the command, runnable as printed and
   * acting where the check looked (--netns). Two remedies that describe the
   * same command are one.
   */
  describe: string
  apply: (runner: Runner) => Promise<void>
}

export interface Finding {
  /** The check's id, e.g. "host.forwarding". */
  id: string
  title: string
  group: string
  result: Verdict
  /** What the finding is about (an interface, a tunnel), if not the whole host. */
  subject?: string
  reason?: string
  fix?: string
  /** The values the check read. */
  evidence: Record<string, unknown>
  remedy?: Remedy
}

export interface DoctorContext {
  runner: Runner
  configDir: string
  /** The tunnels defined in the namespace being checked (filtered by --tunnel). */
  tunnels: TunnelDef[]
  /** Every tunnel defined in the namespace, whatever --tunnel says (what leftovers are measured against). */
  allTunnels: TunnelDef[]
  /** The sysctls the host checks look at (checks/host.ts hostSysctls), read once, by their dotted name (net.ipv4.conf.all.rp_filter); one that does not exist is absent. */
  sysctls: () => Promise<Map<string, string>>
  /** --probe: send traffic through each tunnel and capture on the underlay. */
  probe: boolean
  /** The host settings each checked tunnel needs (tunnel/host.ts: what "tunnel add" makes), read once. */
  hostSettings: () => Promise<{tunnel: string; settings: HostSetting[]}[]>
  /** `ip -j route get DST` (undefined: no route), every tunnel's peers and remote subnets read in one `ip -batch`. */
  routeTo: (dst: string) => Promise<RouteGet | undefined>
  /** Every link with its addresses (`ip -j -d addr show`), read once (the same read as the tunnels' status). */
  links: () => Promise<IpLinkWithAddresses[]>
  /** Where the tools' versions are kept between runs (tool-versions.ts); none: each run asks every tool. */
  versionCache?: string
}

export interface Check {
  id: string
  title: string
  group: 'host' | 'kernel' | 'tools' | 'ipsec' | 'wireguard' | 'paths' | 'leftovers'
  run: (ctx: DoctorContext) => Promise<Finding[]>
}

export function finding(check: Check, result: Verdict, fields: Partial<Finding> = {}): Finding {
  return {id: check.id, title: check.title, group: check.group, result, evidence: {}, ...fields}
}

/**
 * A check's run over the tunnels `pick` keeps (those of one type, say): a skip
 * finding saying `none` when there is none here, else `run` with them.
 */
export function overTunnels(
  pick: (t: TunnelDef) => boolean,
  none: string,
  run: (this: Check, ctx: DoctorContext, tunnels: TunnelDef[]) => Promise<Finding[]>,
): Check['run'] {
  return async function (this: Check, ctx: DoctorContext) {
    const tunnels = ctx.tunnels.filter(pick)
    if (tunnels.length === 0) return [finding(this, 'skip', {reason: none})]
    return run.call(this, ctx, tunnels)
  }
}

/** `fn`'s result once per doctor run (per context), for what several checks need. */
export function perRun<T>(fn: (ctx: DoctorContext) => Promise<T>): (ctx: DoctorContext) => Promise<T> {
  const cache = new WeakMap<DoctorContext, Promise<T>>()
  return (ctx) => {
    let p = cache.get(ctx)
    if (!p) cache.set(ctx, (p = fn(ctx)))
    return p
  }
}

/** " --netns NS" when the doctor looks inside a namespace, for the fixes it prints. */
export function nsFlag(ctx: DoctorContext): string {
  return netnsFlag(ctx.runner.netns)
}

/** "ip" or "ip -n NS": iproute2 as a fix line runs it where the doctor looked. */
export function ipIn(ctx: DoctorContext): string {
  return ctx.runner.netns ? `ip -n ${ctx.runner.netns}` : 'ip'
}
