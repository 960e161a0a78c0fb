import {Flags} from '@oclif/core'

import {NetkitCommand} from '../lib/base-command.js'
import {UsageError} from '../lib/errors.js'
import * as f from '../lib/flags.js'
import * as v from '../lib/validate.js'

export default class Apply extends NetkitCommand {
  static override summary = 'Make the host match a file: namespaces, tables, links, addresses, sysctls, routes, rules, proxy ARP, xfrm policies and SAs, tunnels.'
  static override description = `Compares the file with the live state and changes only the difference (each namespace's iproute2 changes in one "ip -batch -", namespaces and tunnels through netkit's own services, with progress), then reads the state back and verifies it. Any failure, or a failed verification, undoes everything (the host is as before). Objects a previous apply made and the file no longer lists are removed; objects netkit did not make are never touched (one in the way is an error). --dry-run prints the plan's commands. --try SECONDS keeps the change only if you confirm in time (type "y" and Enter; not confirmed, it is undone and apply exits 1), so a change made over SSH cannot lock you out; until the change is kept, Ctrl-C, a kill or a hangup (the SSH session closing) undoes it. One apply runs at a time on a host: another is refused while one plans, changes or waits for --try (diff and --dry-run take no lock).

File (YAML or JSON): version: 1; tables: {NAME: ID}; links: [{name, type: veth|bridge|vxlan|macvlan, peer, peerNetns, vni, remote, group, dev, port, parent, mode, mtu, master, up}]; addresses: [{dev, address}]; sysctls: {KEY: VALUE}; routes: [{to, via, dev, table, metric, src}]; rules: [{from, to, fwmark, iif, oif, table, priority, family: 4|6 (for a rule without from/to)}]; proxyArp: [{address, dev}]; xfrmPolicies: [{src, dst, dir, tmplSrc, tmplDst, mode, reqid, priority, mark, action}]; xfrmStates: [{src, dst, spi, mode, reqid, mark, aead: {alg, keyFile, icv} | enc: {alg, keyFile} with auth: {alg, keyFile}}] (keys only from files, hex, mode 0600; on stdin to ip, never shown; a kernel without ESP refuses before anything changes); tunnels: {NAME: {type: ipsec|wireguard|vxlan, remote, local, localSubnets, remoteSubnets, ... the options of "netkit tunnel add" in camelCase; ipsec needs pskFile or cert/key/ca}}; namespaces: {NAME: {links, addresses, routes, rules, sysctls, proxyArp, xfrmPolicies, xfrmStates, tunnels}} (namespaces apply creates, and removes with their contents when they leave the file). A tunnel without "local" takes the file's own address towards its peer; one that is down (daemon or device gone) is brought up again. Tunnels are set up without waiting for the peer: check them with "netkit tunnel list" or "netkit doctor".

Re-applying an unchanged file to a host exactly as the last verified apply left it is known from digests of the file and of the state read (nothing parsed or compared); any difference and everything is compared. NETKIT_TIMING=1 prints the time of each phase.`
  static override examples = ['<%= config.bin %> apply -f host.yaml', '<%= config.bin %> apply -f host.yaml --netns hostA --dry-run', '<%= config.bin %> apply -f host.yaml --try 60']
  static override flags = {
    file: Flags.string({char: 'f', summary: 'The host file (YAML or JSON), or - for standard input.', required: true}),
    'dry-run': f.dryRun,
    try: Flags.custom<number>({summary: 'Roll back by itself unless confirmed within this many seconds.', parse: async (s) => v.integer(s, '--try', 1, 3600)})(),
  }

  async run(): Promise<unknown> {
    const {phase} = await import('../lib/timing.js')
    phase('command')
    const {flags} = await this.parse(Apply)
    const {applyHost, hostFileName, readHostText} = await import('../lib/apply/run.js')
    if (flags.try !== undefined && flags['dry-run']) throw new UsageError('--try and --dry-run together', 'choose one')
    if (flags.try !== undefined && flags.file === '-') throw new UsageError('--try with the file on standard input', '--try reads your confirmation there: give the file by its path')
    const file = {...readHostText(flags.file), version: this.config.version}
    const runner = this.makeRunner(flags)
    const json = this.jsonEnabled()
    const {progressMode} = await import('../lib/plan.js')
    const result = await applyHost(runner, file, {
      progress: progressMode(json),
      trySeconds: flags.try,
      confirm: (seconds, interrupted) => confirmWithin(seconds, json, interrupted),
      log: (l) => (json ? undefined : process.stderr.write(`${l}\n`)),
    })
    // Not confirmed in time: the change did not stick, and a script (apply --try && ...) must know.
    if (!result.kept) process.exitCode = 1
    if (!json) {
      if (!result.changed) this.log(`the host already matches ${hostFileName(flags.file)} (${result.unchanged} objects${result.memo ? ', exactly as the last verified apply left them' : ''}); nothing to do`)
      else if (runner.dryRun) process.stderr.write(`dry run: ${countChanges(result.changes.length)}; nothing was changed\n`)
      else if (!result.kept) this.log(`not confirmed in time: rolled back ${countChanges(result.changes.length)}; the host is as before`)
      else this.log(`applied ${countChanges(result.changes.length)} (${summary(result.changes)}), verified`)
      const n = result.foreign.length
      if (n && !runner.dryRun) this.log(`left alone: ${n} object${n === 1 ? '' : 's'} here that ${n === 1 ? 'is' : 'are'} neither netkit's nor in the file ("netkit diff" of the same file lists them)`)
    }
    return {...result, dryRun: runner.dryRun, commands: [...runner.journal]}
  }
}

const countChanges = (n: number) => `${n} change${n === 1 ? '' : 's'}`

function summary(changes: {action: string}[]): string {
  const n = (a: string) => changes.filter((c) => c.action === a).length
  return `${n('add')} added, ${n('change')} changed, ${n('remove')} removed`
}

/** Waits for "y" on stdin (a terminal or a pipe) within the time; no, when a signal comes first. */
async function confirmWithin(seconds: number, json: boolean, interrupted: Promise<unknown>): Promise<boolean> {
  if (!json) process.stderr.write(`keep these changes? type y and Enter within ${seconds} s: `)
  return new Promise((resolve) => {
    let text = ''
    let answered = false
    const done = (ok: boolean) => {
      if (answered) return
      answered = true
      // What follows (the undoing's commands) starts on a line of its own.
      if (!json && !text.includes('\n')) process.stderr.write('\n')
      clearTimeout(timer)
      process.stdin.pause()
      process.stdin.removeAllListeners('data')
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), seconds * 1000)
    process.stdin.setEncoding('utf8')
    process.stdin.on('data', (d: string) => {
      text += d
      if (text.includes('\n')) done(/^\s*y(es)?\s*$/i.test(text.split('\n')[0]))
    })
    process.stdin.on('end', () => done(/^\s*y(es)?\s*$/i.test(text)))
    void interrupted.then(() => done(false))
    process.stdin.resume()
  })
}
