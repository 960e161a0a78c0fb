/**
 * The lab's world: N hosts on one underlay, each with a container behind a
 * bridge, all made of network namespaces:
 *
 *   nklab-wan:  bridge br-wan, one veth per host            (192.0.2.0/24)
 *   nklab-hN:   wan0 192.0.2.N, bridge br0 10.N.0.1/24
 *   nklab-cN:   eth0 10.N.0.2/24, default via 10.N.0.1
 *
 * Every namespace is made through netkit's own ns primitives (so it is owned
 * and recorded), every link through the link module (marked as netkit's, as
 * "netkit link add" marks it) and the container's route with netkit's
 * protocol; the plumbing inside goes through one `ip -batch` per namespace.
 */
import {addBatches, type LinkSpec} from '../iproute2/link.js'
import {addNetns, delNetns, netnsExists} from '../iproute2/netns.js'
import {routeArgs} from '../iproute2/route.js'
import type {BatchLine, Runner} from '../runner.js'

export const LAB_PREFIX = 'nklab'
export const WAN = `${LAB_PREFIX}-wan`
export const MAX_HOSTS = 12

export interface LabHost {
  index: number
  host: string
  container: string
  underlay: string
  subnet: string
  gateway: string
  containerIp: string
}

export function labHost(index: number): LabHost {
  return {
    index,
    host: `${LAB_PREFIX}-h${index}`,
    container: `${LAB_PREFIX}-c${index}`,
    underlay: `192.0.2.${index}`,
    subnet: `10.${index}.0.0/24`,
    gateway: `10.${index}.0.1`,
    containerIp: `10.${index}.0.2`,
  }
}

export function labNamespaces(count: number): string[] {
  const out = [WAN]
  for (let i = 1; i <= count; i++) out.push(labHost(i).host, labHost(i).container)
  return out
}

/** Builds the world. Returns the hosts. Undo is `destroyWorld`. */
export async function buildWorld(runner: Runner, count: number): Promise<LabHost[]> {
  const hosts = Array.from({length: count}, (_, i) => labHost(i + 1))
  await addNetns(runner, WAN)
  const wan = runner.in(WAN)
  await makeLinks(wan, [{name: 'br-wan', kind: 'bridge', up: true}])
  for (const h of hosts) {
    await addNetns(runner, h.host)
    await addNetns(runner, h.container)
    const host = runner.in(h.host)
    const container = runner.in(h.container)
    // The host's underlay: a veth from the WAN's bridge.
    await makeLinks(wan, [{name: `h${h.index}`, kind: 'veth', peer: 'wan0', peerNetns: h.host, up: true}], [['link', 'set', `h${h.index}`, 'master', 'br-wan']])
    // Its container network: a bridge with the gateway address, and a veth to the container.
    await makeLinks(
      host,
      [
        {name: 'br0', kind: 'bridge', up: true},
        {name: 'vc0', kind: 'veth', peer: 'eth0', peerNetns: h.container, up: true},
      ],
      [
        ['addr', 'add', `${h.underlay}/24`, 'dev', 'wan0'],
        ['addr', 'add', `${h.gateway}/24`, 'dev', 'br0'],
        ['link', 'set', 'vc0', 'master', 'br0'],
      ],
    )
    await container.batch([
      {args: ['addr', 'add', `${h.containerIp}/24`, 'dev', 'eth0'], object: `address ${h.containerIp}/24 on eth0`},
      {args: routeArgs('add', {dst: 'default', family: 4, via: h.gateway, table: 254}), object: 'route default'},
    ])
  }
  return hosts
}

/**
 * Makes links the way "netkit link add" does (marked as netkit's, at both ends
 * of a veth), then `more` lines in the same namespace: one `ip -batch` per
 * namespace touched.
 */
async function makeLinks(runner: Runner, specs: LinkSpec[], more: string[][] = []): Promise<void> {
  const byNs = new Map<Runner, BatchLine[]>()
  for (const spec of specs)
    for (const [r, lines] of addBatches(runner, spec)) {
      const key = [...byNs.keys()].find((k) => k.netns === r.netns) ?? r
      byNs.set(key, [...(byNs.get(key) ?? []), ...lines])
    }
  const here = [...byNs.keys()].find((k) => k.netns === runner.netns) ?? runner
  byNs.set(here, [...(byNs.get(here) ?? []), ...more.map((args) => ({args}))])
  // This namespace first: a veth's far end exists only once its near end is made.
  await here.batch(byNs.get(here)!)
  for (const [r, lines] of byNs) if (r !== here) await r.batch(lines)
}

/** Removes every lab namespace that exists (and the processes in them). */
export async function destroyWorld(runner: Runner, count = MAX_HOSTS): Promise<string[]> {
  const removed: string[] = []
  for (const ns of labNamespaces(count).reverse()) {
    if (!netnsExists(ns)) continue
    await killAll(runner, ns)
    await delNetns(runner, ns, {force: true})
    removed.push(ns)
  }
  return removed
}

async function killAll(runner: Runner, ns: string): Promise<void> {
  const r = await runner.probe({tool: 'ip', args: ['netns', 'pids', ns], netns: null})
  const pids = r.stdout.split(/\s+/).filter(Boolean)
  if (pids.length > 0) await runner.run({tool: 'kill', args: ['-TERM', ...pids], netns: null, object: `processes in ${ns}`}).catch(() => {})
}
