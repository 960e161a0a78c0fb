import {Flags} from '@oclif/core'

import {NetkitCommand} from '../lib/base-command.js'
import {configDir} from '../lib/files.js'
import {versionCachePath} from '../lib/doctor/run.js'
import {collect, toFamilies} from '../lib/metrics/collect.js'
import {renderExposition} from '../lib/metrics/exposition.js'
import {checkOutputPath, writeMetricsFile} from '../lib/metrics/output.js'

export default class Metrics extends NetkitCommand {
  static override summary = "Print tunnel and doctor metrics in the Prometheus text format (for node_exporter's textfile collector)."
  static override description = `Per tunnel: up, state and data path; per WireGuard peer: latest handshake and bytes; per IPsec tunnel: IKE and CHILD_SA states, bytes, packets and seconds to rekey; the doctor's verdict per check (0 ok, 1 warn, 2 fail; no --probe traffic is sent). The metrics are listed in docs/metrics.md.
With -o the file is replaced atomically (mode 0644) and nothing is printed: point it into node_exporter's --collector.textfile.directory and refresh it from a timer.`
  static override examples = [
    '<%= config.bin %> metrics',
    '<%= config.bin %> metrics -o /var/lib/prometheus/node-exporter/netkit.prom',
    '<%= config.bin %> metrics --all-netns -o /var/lib/prometheus/node-exporter/netkit.prom',
    '<%= config.bin %> metrics --netns router1',
  ]

  static override flags = {
    output: Flags.string({char: 'o', summary: 'Write to this file (atomically, mode 0644) instead of standard output.'}),
    'all-netns': Flags.boolean({summary: 'The host and every namespace netkit has tunnels in (label netns).', exclusive: ['netns']}),
    doctor: Flags.boolean({summary: "Include the doctor's checks (--no-doctor: tunnels only).", default: true, allowNo: true}),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(Metrics)
    const runner = this.makeRunner(flags)
    if (flags.output) checkOutputPath(flags.output)
    const snap = await collect({
      runner,
      configDir: configDir(),
      scopes: flags['all-netns'] ? 'all' : [flags.netns],
      doctor: flags.doctor,
      versionCache: this.hostTools ? versionCachePath() : undefined,
    })
    for (const scope of snap.scopes) {
      for (const t of scope.tunnels)
        if (t.error) this.warning(`tunnel ${t.def.name}${scope.netns ? ` (namespace ${scope.netns})` : ''} could not be read, reported down: ${t.error}`)
    }
    const families = toFamilies(snap)
    const text = renderExposition(families)
    if (flags.output) writeMetricsFile(flags.output, text)
    else if (!this.jsonEnabled()) process.stdout.write(text)
    return {
      ...(flags.output ? {file: flags.output} : {}),
      metrics: families.filter((f) => f.samples.length > 0),
    }
  }
}
