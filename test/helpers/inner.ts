/**
 * Namespaces a simulated host (realhost.ts) manages itself: what `netkit
 * --netns X` acts on, on a real host. They live in the host's own /run/netns,
 * so only the host's commands see them, and they go with the host.
 */
import {dump, nsName} from './hosts.js'
import type {SimHost} from './realhost.js'

/** Makes a namespace inside the host, with lo up (a name unique on the machine, as /etc/netns is shared). */
export function innerNs(h: SimHost, tag: string): string {
  const name = nsName(tag)
  h.sh('ip', ['netns', 'add', name])
  h.sh('ip', ['-n', name, 'link', 'set', 'lo', 'up'])
  h.sh('ip', ['netns', 'exec', name, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'])
  return name
}

/** A dump of a namespace of the host, for "nothing changed" comparisons (hosts.ts dump, read inside the host). */
export function dumpIn(h: SimHost, ns: string): string {
  return dump(ns, (file, args) => h.sh(file, args))
}

/** The processes running in a namespace of the host, as pids (for "nothing is left running"). */
export function pidsIn(h: SimHost, ns: string): string[] {
  return h.sh('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean)
}
