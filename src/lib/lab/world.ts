/**
 * The lab's world: N hosts on one underlay, each with a container behind a
 * bridge, all made of network namespaces:
 *
 *   nklab-wan:  bridge br-wan, one veth per host            (192.0.2.0/24)
 *   nklab-hN:   wan0 192.0.2.N, bridge br0 10.N.0.1/24
 *   nklab-cN:   eth0 10.N.0.2/24, default via 10.N.0.1
 *
 * Every namespace is made through netkit's own ns primitives (so it is owned
 * and recorded); the plumbing inside goes through one `ip -batch` per namespace.
 */
import {addNetns, delNetns, netnsExists} from '../iproute2/netns.js'
import type {Runner} from '../runner.js'

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
  await wan.batch([
    {args: ['link', 'add', 'br-wan', 'type', 'bridge'], object: 'bridge br-wan'},
    {args: ['link', 'set', 'br-wan', 'up'], object: 'bridge br-wan'},
  ])
  for (const h of hosts) {
    await addNetns(runner, h.host)
    await addNetns(runner, h.container)
    await wan.batch([
      {args: ['link', 'add', `h${h.index}`, 'type', 'veth', 'peer', 'name', 'wan0', 'netns', h.host], object: `underlay of ${h.host}`},
      {args: ['link', 'set', `h${h.index}`, 'master', 'br-wan', 'up'], object: `underlay of ${h.host}`},
    ])
    await runner
      .in(h.host)
      .batch([
        {args: ['addr', 'add', `${h.underlay}/24`, 'dev', 'wan0']},
        {args: ['link', 'set', 'wan0', 'up']},
        {args: ['link', 'add', 'br0', 'type', 'bridge']},
        {args: ['addr', 'add', `${h.gateway}/24`, 'dev', 'br0']},
        {args: ['link', 'set', 'br0', 'up']},
        {args: ['link', 'add', 'vc0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.container]},
        {args: ['link', 'set', 'vc0', 'master', 'br0', 'up']},
      ])
    await runner
      .in(h.container)
      .batch([
        {args: ['addr', 'add', `${h.containerIp}/24`, 'dev', 'eth0']},
        {args: ['link', 'set', 'eth0', 'up']},
        {args: ['route', 'add', 'default', 'via', h.gateway]},
      ])
  }
  return hosts
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
