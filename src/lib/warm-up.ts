/**
 * The build's warm-up (scripts/bundle.mjs): netkit's hot paths run once, in the
 * build, so that V8's code cache written after it holds the functions they
 * compile (without it the cache holds only the bundle's top-level code, and
 * every start compiles again what a command calls: the schema library, the
 * YAML parser, the planner).
 *
 * It plans a built-in host file the way `diff` and `apply --dry-run` do
 * (planHost, applyHost), through a runner whose executor answers every read
 * with an empty host (`[]` for `ip -j`, nothing for the rest) and runs
 * nothing: it touches no host, starts no process and writes no file, so the
 * build may run as any user on a machine without iproute2. Then it makes the
 * JSON envelope as the commands print it, without printing it. Given netkit's
 * package (`dir`), it also runs `tunnel list --json` and `doctor --json`
 * through oclif, their runners on the same empty host (withCommandTools), their
 * output captured: oclif's configuration, flags and the commands' classes.
 */
import type {ExecResult, Executor, RunnerOptions} from './runner.js'
import {Runner} from './runner.js'

/**
 * The sample host file: the common kinds (a WireGuard interface with peers, a bridge and a veth on it,
 * a VXLAN link, addresses, routes in main and a named table, rules, sysctls, proxy ARP, SPD entries, a namespace).
 * No IPsec tunnel: one needs a PSK file or certificates on disk.
 */
export const WARM_UP_HOST = `version: 1
tables: {warm: 100}
links:
  - {name: br0, type: bridge}
  - {name: v0, type: veth, peer: v1, master: br0}
  - {name: vx0, type: vxlan, vni: 42, remote: 192.0.2.2, dev: br0, port: 4789}
addresses:
  - {dev: br0, address: 192.0.2.1/24}
  - {dev: v1, address: 10.1.0.1/24}
sysctls: {ip_forward: 1, rp_filter.br0: 2}
routes:
  - {to: 10.2.0.0/24, via: 192.0.2.254}
  - {to: default, dev: br0, table: warm}
  - {to: 10.3.0.0/16, via: 192.0.2.254, metric: 100}
rules:
  - {from: 10.1.0.0/24, table: warm}
  - {fwmark: '0x10', family: 4, table: warm, priority: 1100}
proxyArp: [{address: 10.1.0.50, dev: br0}]
xfrmPolicies:
  - {src: 10.1.0.0/24, dst: 10.2.0.0/24, dir: out, tmplSrc: 192.0.2.1, tmplDst: 192.0.2.2, reqid: 7}
tunnels:
  wg0:
    type: wireguard
    address: 10.99.0.1/16
    listenPort: 51820
    peers:
      n2:
        publicKey: BW/2gZN1nKGSpNHdmj3ATvjZdDDgcSthRlww4xouJCI=
        endpoint: 192.0.2.12:51820
        allowedIps: [10.99.0.2/32]
      n3:
        publicKey: kasHKjYVCW/gj2qUR+aSQ7WEMs/wj3PisF2WYYEjO9Y=
        endpoint: 192.0.2.13:51820
        allowedIps: [10.99.0.3/32, 10.33.0.0/24]
      n4:
        publicKey: w/g9oMpSbC2GtPEIgRsqyIPTMg0ctRfGBmpJ6ZqLbfo=
        endpoint: 192.0.2.14:51820
        allowedIps: [10.99.0.4/32]
        keepalive: 25
      n5:
        publicKey: r3Q1xG10Z7APUK2K7yFrqd+Qc/pcGSAjNONbRKci3MI=
        allowedIps: [10.99.0.5/32]
namespaces:
  warm1:
    links: [{name: w1, type: veth, peer: w1p, peerNetns: warm2}]
    addresses: [{dev: w1, address: 10.5.0.1/30}]
    routes: [{to: 10.6.0.0/24, via: 10.5.0.2}]
  warm2:
    addresses: [{dev: w1p, address: 10.5.0.2/30}]
`

/** An executor that runs nothing: every read finds an empty host (`[]` for each `ip -j` query, nothing for the rest). */
export function emptyHost(calls: string[] = []): Executor {
  return async (file, args, opts): Promise<ExecResult> => {
    calls.push([file, ...args].join(' '))
    if (!args.includes('-j')) return {exitCode: 0, stdout: '', stderr: ''}
    // `ip -j -batch -`: one JSON array per command line.
    const n = args.includes('-batch') ? (opts.input ?? '').split('\n').filter((l) => l.trim()).length : 1
    return {exitCode: 0, stdout: '[]\n'.repeat(n), stderr: ''}
  }
}

export interface WarmUpReport {
  /** Every tool call the warm-up's runners made (none ran: the executor answers them). */
  calls: string[]
  /** The changes the plan of the sample file holds (every object of it: the host is empty). */
  changes: number
  /** The commands the dry run would run. */
  commands: number
  /** The length of the JSON envelopes made (not printed). */
  json: number
  /** What `netkit tunnel list --json` run through oclif printed (captured, not printed), when `dir` was given. */
  tunnelList?: string
  /** What `netkit doctor --json` printed, likewise. */
  doctor?: string
}

export interface WarmUpOptions {
  /** netkit's package (a file URL inside it, as bin/run.js gives oclif): the oclif path is run too. */
  dir?: string
}

/**
 * Runs the hot paths once without touching the host (see above). The state and configuration
 * directories are read (the ledger, the memo, the tunnels' definitions): the build points them at a
 * folder that does not exist (NETKIT_STATE_DIR, NETKIT_CONFIG_DIR), so that the warm-up sees an empty host there too.
 */
export async function warmUp(opts: WarmUpOptions = {}): Promise<WarmUpReport> {
  const calls: string[] = []
  // Reads find the empty host; a change or a daemon would be refused (none is made: a plan, and a dry run).
  const tools = {
    exec: refuse,
    readExec: emptyHost(calls),
    spawn: async (file: string, args: string[]): Promise<number> => {
      throw new Error(`the warm-up was about to start ${[file, ...args].join(' ')}`)
    },
  }
  const input = {text: WARM_UP_HOST, source: 'warm-up.yaml', version: '0.0.0'}
  const {describePlan, planHost} = await import('./apply/plan.js')
  const {applyHost} = await import('./apply/run.js')
  let json = 0
  const envelope = (result: unknown) => (json += JSON.stringify({ok: true, result, warnings: []}, null, 2).length)

  // diff: the plan, described.
  const plan = await planHost(new Runner(tools), input)
  const changes = describePlan(plan)
  envelope({changed: changes.length > 0, changes, unchanged: plan.unchanged, foreign: plan.foreign})

  // apply --dry-run: the plan again, its steps, their commands (to a sink that drops them).
  const runner = new Runner({...tools, dryRun: true})
  const result = await applyHost(runner, input, {progress: 'none'})
  envelope({...result, dryRun: true, commands: [...runner.journal]})
  const report: WarmUpReport = {calls, changes: changes.length, commands: runner.journal.length, json}
  if (opts.dir) {
    // Two reading commands: the path every command takes (a list), and the doctor's checks (which also read /proc and look for the tools: reads only).
    report.tunnelList = await throughOclif(opts.dir, ['tunnel', 'list', '--json'], tools)
    report.doctor = await throughOclif(opts.dir, ['doctor', '--json'], tools)
  }
  return report
}

/** A change the warm-up was about to make: never run. */
const refuse: Executor = async (file, args) => {
  throw new Error(`the warm-up was about to run ${[file, ...args].join(' ')}`)
}

/**
 * A read-only command run as netkit runs it (oclif's configuration and manifest, the command's
 * class, flags, the JSON envelope), its runner on `tools`, its output captured (nothing printed).
 */
async function throughOclif(dir: string, argv: string[], tools: Pick<RunnerOptions, 'exec' | 'readExec' | 'spawn'>): Promise<string> {
  const {run} = await import('@oclif/core')
  const {withCommandTools} = await import('./base-command.js')
  const out: string[] = []
  const write = {stdout: process.stdout.write, stderr: process.stderr.write}
  const exitCode = process.exitCode
  const capture = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    out.push(String(chunk))
    const done = rest.find((r) => typeof r === 'function') as (() => void) | undefined
    done?.()
    return true
  }) as typeof process.stdout.write
  process.stdout.write = capture
  process.stderr.write = capture
  try {
    await withCommandTools(tools, () => run(argv, dir))
  } finally {
    process.stdout.write = write.stdout
    process.stderr.write = write.stderr
  }
  // The envelope says whether the command ran (a doctor whose checks fail here exits 1, and that is fine).
  const printed = out.join('')
  process.exitCode = exitCode
  if (!printed.startsWith('{\n  "ok": true')) throw new Error(`netkit ${argv.join(' ')} in the warm-up: ${printed.trim()}`)
  return printed
}
