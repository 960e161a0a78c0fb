import {NetkitCommand} from '../../lib/base-command.js'
import {configDir} from '../../lib/files.js'
import {netnsExists} from '../../lib/iproute2/netns.js'
import {labNamespaces, MAX_HOSTS} from '../../lib/lab/world.js'
import {listTunnels} from '../../lib/tunnel/service.js'

export default class LabStatus extends NetkitCommand {
  static override summary = 'Show what the demo has built, and the state of its tunnels.'
  static override examples = ['<%= config.bin %> lab status']

  async run(): Promise<unknown> {
    const {flags} = await this.parse(LabStatus)
    const runner = this.makeRunner(flags, {global: true})
    const namespaces = labNamespaces(MAX_HOSTS).filter((ns) => netnsExists(ns))
    const tunnels = (await listTunnels({runner, configDir: configDir()})).filter((t) => t.netns?.startsWith('nklab-'))
    if (!this.jsonEnabled()) {
      if (namespaces.length === 0) this.log('there is no lab (netkit lab up builds one)')
      else {
        this.log(`namespaces: ${namespaces.join(' ')}`)
        await this.printTable(
          tunnels,
          [
            {header: 'HOST', get: (r) => r.netns},
            {header: 'TUNNEL', get: (r) => r.name},
            {header: 'TYPE', get: (r) => r.type},
            {header: 'STATE', get: (r) => r.state},
            {header: 'DATAPATH', get: (r) => r.datapath},
          ],
          'no tunnels',
        )
      }
    }
    return {up: namespaces.length > 0, namespaces, tunnels}
  }
}
