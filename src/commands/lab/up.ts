import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import * as f from '../../lib/flags.js'
import {configDir} from '../../lib/files.js'
import {LAB_TYPES, labUp, type LabType} from '../../lib/lab/lab.js'
import {MAX_HOSTS} from '../../lib/lab/world.js'
import * as v from '../../lib/validate.js'

export default class LabUp extends NetkitCommand {
  static override summary = 'Build the built-in demo: hosts on an underlay, a container behind each, tunnels between all of them, proven.'
  static override description = `Everything lives in network namespaces named nklab-*: nklab-wan (the underlay), nklab-hN (the hosts) and nklab-cN (a container behind each host). It pings every container from every other one, captures on the underlay to show that nothing crosses in clear, and runs the doctor on each host. "netkit lab down" removes it all.`
  static override examples = ['<%= config.bin %> lab up', '<%= config.bin %> lab up --hosts 4 --type vxlan', '<%= config.bin %> lab up --json']
  static override flags = {
    'dry-run': f.dryRun,
    hosts: Flags.custom<number>({summary: `Number of hosts (2 to ${MAX_HOSTS}), joined in a full mesh.`, default: 2, parse: async (s) => v.integer(s, '--hosts', 2, MAX_HOSTS)})(),
    type: Flags.string({summary: 'Tunnel type.', options: [...LAB_TYPES], default: LAB_TYPES[0]}),
    timeout: Flags.custom<number>({summary: 'Seconds to wait for each tunnel and each ping.', default: 30, parse: async (s) => v.integer(s, '--timeout', 1, 600)})(),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(LabUp)
    const runner = this.makeRunner(flags, {global: true})
    const log = (l: string) => (this.jsonEnabled() ? undefined : process.stderr.write(`${l}\n`))
    const report = await labUp({runner, configDir: configDir(), hosts: flags.hosts, type: flags.type as LabType, timeoutMs: flags.timeout * 1000, log})
    const failedPings = report.pairs.filter((p) => !p.ping)
    if (failedPings.length > 0 || report.capture.clear) process.exitCode = 1
    if (!this.jsonEnabled()) {
      const h1 = report.hosts[0]
      const h2 = report.hosts[1]
      this.log([
        `lab is up: ${report.hosts.length} hosts, ${report.tunnels} ${report.type} tunnels, in ${report.seconds.toFixed(1)} s`,
        `  traffic:    ${report.pairs.length - failedPings.length}/${report.pairs.length} container pairs ping${failedPings.length ? ` (failed: ${failedPings.map((p) => `${p.from}->${p.to}`).join(', ')})` : ''}`,
        `  encryption: ${report.type === 'vxlan' ? 'none (VXLAN does not encrypt)' : report.capture.clear ? 'FAILED: inner addresses crossed the underlay in clear' : `only encapsulated packets on the underlay (${report.capture.packets} captured on ${report.capture.host})`}`,
        `  doctor:     ${report.doctor.map((d) => `${d.host} ${d.fail} failed, ${d.warn} warnings`).join('; ')}`,
        '',
        'explore it:',
        `  netkit tunnel list`,
        `  netkit tunnel show h2 --netns ${h1.host}`,
        `  netkit ns exec ${h1.container} -- ping -c 3 ${h2.containerIp}`,
        `  netkit doctor --netns ${h1.host}`,
        `  netkit lab down`,
      ].join('\n'))
    }
    return report
  }
}
