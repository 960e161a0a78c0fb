/**
 * Integration-test hosts: network namespaces that a test makes and always
 * removes, with every process started in them, even when the test fails.
 * Names are unique per test process so parallel runs do not collide.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

const made = new Set<string>()
let counter = 0

export const isRoot = process.getuid?.() === 0
export const skipUnlessRoot = isRoot ? false : 'needs root (network namespaces)'

export function sh(file: string, args: string[], input?: string): string {
  return execFileSync(file, args, {encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 256 * 1024 * 1024})
}

export function tryRun(file: string, args: string[]): {code: number; stdout: string; stderr: string} {
  const r = spawnSync(file, args, {encoding: 'utf8'})
  return {code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr}
}

/** A fresh unique namespace name (not created). Short, so derived link names stay under 15 characters. */
export function nsName(tag: string): string {
  // A run killed earlier (its process id reused now) may have left a namespace or /etc/netns entry of this name.
  for (;;) {
    counter += 1
    const name = `nkt${process.pid % 10000}${tag}${counter}`
    if (!existsSync(`/run/netns/${name}`) && !existsSync(`/etc/netns/${name}`)) return name
  }
}

/** Creates a namespace with lo up, registered for removal. */
export function makeNs(tag: string): string {
  const name = nsName(tag)
  sh('ip', ['netns', 'add', name])
  made.add(name)
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up'])
  // No IPv6 duplicate address detection: link-local addresses (and their routes) appear at
  // once instead of a second later, so "the state is as before" comparisons are not racy.
  sh('ip', ['netns', 'exec', name, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'])
  return name
}

/** Registers a namespace made by the code under test, so cleanup removes it too. */
export function track(name: string): string {
  made.add(name)
  return name
}

export function killNsProcesses(name: string): void {
  const r = tryRun('ip', ['netns', 'pids', name])
  for (const pid of r.stdout.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL')
    } catch {
      // already gone
    }
  }
}

export function removeNs(name: string): void {
  killNsProcesses(name)
  tryRun('ip', ['netns', 'del', name])
  made.delete(name)
}

export function cleanupAll(): void {
  for (const name of [...made]) removeNs(name)
}

process.on('exit', cleanupAll)
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    cleanupAll()
    process.exit(130)
  })
}

/** `ip -j ...` inside a namespace, parsed. */
export function ipj(ns: string, args: string[]): any[] {
  const out = sh('ip', ['-n', ns, '-j', ...args])
  return out.trim() ? JSON.parse(out) : []
}

/** A dump of a namespace's state, for "nothing changed" comparisons (`run`: how to run `ip`, e.g. inside a simulated host). */
export function dump(ns: string, run: (file: string, args: string[]) => string = sh): string {
  const parts = [
    ['-d', 'link', 'show'],
    ['addr', 'show'],
    ['route', 'show', 'table', 'all'],
    ['-6', 'route', 'show', 'table', 'all'],
    ['rule', 'show'],
    ['neigh', 'show', 'proxy'],
  ]
    .map((a) => run('ip', ['-n', ns, '-j', ...a]).replaceAll('"tentative":true,', '')) // IPv6 DAD finishing is not a change
    .map((out) => out.replace(/"[a-z_]*timer":[0-9.]+/g, '"timer":0')) // a bridge's timers tick
    // The local route of a link-local address appears when its duplicate address detection ends (not a change either).
    .map((out) => out.replace(/\{"type":"local","dst":"fe80::[^{}]*\},?/g, '').replace(/,\]/g, ']'))
  parts.push(run('ip', ['-n', ns, 'xfrm', 'policy']), run('ip', ['-n', ns, 'xfrm', 'state']))
  return parts.join('\n')
}

/** A private state and iproute2 config dir for a test, so tests never touch /run/netkit or /etc/iproute2. */
export function isolatedEnv(): {env: Record<string, string>; cleanup: () => void} {
  const dir = mkdtempSync(join(tmpdir(), 'netkit-test-'))
  return {
    env: {NETKIT_STATE_DIR: join(dir, 'state'), NETKIT_IPROUTE2_DIR: join(dir, 'iproute2'), NETKIT_CONFIG_DIR: join(dir, 'config')},
    cleanup: () => rmSync(dir, {recursive: true, force: true}),
  }
}

/** Every file below a directory (for "nothing is left behind"). */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir, {recursive: true, withFileTypes: true})
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? (e as unknown as {path: string}).path, e.name))
}
