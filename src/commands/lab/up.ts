import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {configDir} from '../../lib/files.js'
import {DEFAULT_LAB_TYPES, LAB_TYPES, labUp, parseLabTypes} from '../../lib/lab/lab.js'
import {MAX_HOSTS} from '../../lib/lab/world.js'
import * as v from '../../lib/validate.js'

export default class LabUp extends NetkitCommand {
  static override summary = 'Build the built-in demo: hosts on an underlay, a container behind each, tunnels between all of them, proven.'
  static override description = `Everything lives in network namespaces named nklab-*: nklab-wan (the underlay), nklab-hN (the hosts) and nklab-cN (a container behind each host). It pings every container from every other one, captures on the underlay to show that nothing crosses in clear, and runs the doctor on each host. "netkit lab down" removes it all. A failure or a signal before every tunnel is added removes what was built. Run again with the same --hosts and --type, it builds nothing and proves the lab again; a different lab while one is up is an error.`
  static override examples = [
    '<%= config.bin %> lab up',
    '<%= config.bin %> lab up --hosts 4 --type wireguard',
    '<%= config.bin %> lab up --type vxlan',
    '<%= config.bin %> lab up --json',
  ]
  static override flags = {
    'dry-run': f.dryRun,
    hosts: Flags.custom<number>({
      summary: `Number of hosts (2 to ${MAX_HOSTS}), joined in a full mesh.`,
      default: 2,
      parse: async (s) => v.integer(s, '--hosts', 2, MAX_HOSTS),
    })(),
    type: Flags.string({
      summary: `Tunnel types, comma-separated, from ${LAB_TYPES.join(', ')}. The first carries the container subnets; the others join the hosts on an overlay of their own.`,
      default: DEFAULT_LAB_TYPES.join(','),
    }),
    timeout: Flags.custom<number>({
      summary: 'Seconds to wait for each tunnel and each ping.',
      default: 30,
      parse: async (s) => v.integer(s, '--timeout', 1, 600),
    })(),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(LabUp)
    const runner = this.makeRunner(flags, {global: true})
    const log = (l: string) => (this.jsonEnabled() ? undefined : process.stderr.write(`${l}\n`))
    const types = parseLabTypes(flags.type)
    const report = await labUp({runner, configDir: configDir(), hosts: flags.hosts, types, timeoutMs: flags.timeout * 1000, log})
    const failedPings = report.pairs.filter((p) => !p.ping)
    if (failedPings.length > 0 || report.captures.some((c) => c.clear)) process.exitCode = 1
    if (runner.dryRun) {
      if (!this.jsonEnabled()) {
        for (const c of report.commands ?? []) this.log(c)
        process.stderr.write(
          report.alreadyUp
            ? 'dry run: the lab is up already, nothing would be built; nothing was changed\n'
            : `dry run: would build ${report.hosts.length} hosts and add ${report.tunnels} tunnels; nothing was changed\n`,
        )
      }
      return report
    }
    if (!this.jsonEnabled()) {
      const h1 = report.hosts[0]
      const h2 = report.hosts[1]
      const lines = [
        `${report.alreadyUp ? 'lab was up already (nothing built), proven again' : 'lab is up'}: ${report.hosts.length} hosts, ${report.tunnels} tunnels (${report.types.join(', ')}), in ${report.seconds.toFixed(1)} s`,
      ]
      for (const [i, type] of report.types.entries()) {
        const pairs = report.pairs.filter((p) => p.type === type)
        const failed = pairs.filter((p) => !p.ping)
        const cap = report.captures.find((c) => c.type === type)
        lines.push(
          `  ${type}: ${i === 0 ? 'container subnets' : 'host overlay'}, ${pairs.length - failed.length}/${pairs.length} pairs ping${failed.length ? ` (failed: ${failed.map((p) => `${p.from}->${p.to}`).join(', ')})` : ''}; ${type === 'vxlan' ? 'NOT encrypted (VXLAN does not encrypt)' : !cap ? '' : cap.clear ? 'FAILED: inner addresses crossed the underlay in clear' : `encrypted: only encapsulated packets on the underlay (${cap.packets} captured on ${cap.host})`}`,
        )
      }
      lines.push(
        `  doctor: ${report.doctor.map((d) => `${d.host} ${d.fail} failed, ${d.warn} warnings`).join('; ')}`,
        '',
        'explore it:',
        '  netkit tunnel list',
        `  netkit tunnel show ${report.types[0] === 'ipsec' ? 'ip' : report.types[0] === 'wireguard' ? 'wg' : 'vx'}-h2 --netns ${h1.host}`,
        `  netkit ns exec ${h1.container} -- ping -c 3 ${h2.containerIp}`,
        `  netkit doctor --netns ${h1.host}`,
        '  netkit lab down',
      )
      this.log(lines.join('\n'))
    }
    return report
  }
}
