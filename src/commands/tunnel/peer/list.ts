import {NetkitCommand} from '../../../lib/base-command.js'
import {UsageError} from '../../../lib/errors.js'
import {configDir} from '../../../lib/files.js'
import {tunnelNameArg} from '../../../lib/tunnel/flags.js'
import {requireDef, tunnelStatus} from '../../../lib/tunnel/service.js'
import type {PeerState} from '../../../lib/tunnel/wireguard/driver.js'
import {ago} from '../../../lib/output.js'

export default class TunnelPeerList extends NetkitCommand {
  static override summary = 'The peers of a WireGuard tunnel: endpoint, allowed-ips, latest handshake, traffic.'
  static override examples = ['<%= config.bin %> tunnel peer list mesh', '<%= config.bin %> tunnel peer list mesh --json']
  static override args = {tunnel: tunnelNameArg("the WireGuard tunnel's name")}

  async run(): Promise<PeerState[]> {
    const {args, flags} = await this.parse(TunnelPeerList)
    const runner = this.makeRunner(flags)
    const def = requireDef(configDir(), args.tunnel, flags.netns)
    if (def.type !== 'wireguard') throw new UsageError(`tunnel ${args.tunnel} is a ${def.type} tunnel, which has no peers`, 'peers are for WireGuard tunnels')
    const status = await tunnelStatus(def, {runner, configDir: configDir()})
    const peers = (status.details.peers ?? []) as PeerState[]
    await this.printTable(
      peers,
      [
        {header: 'PEER', get: (p) => p.name},
        {header: 'ENDPOINT', get: (p) => p.endpoint},
        {header: 'ALLOWED IPS', get: (p) => p.allowedIps.join(',')},
        {header: 'HANDSHAKE', get: (p) => (p.present ? ago(p.handshakeAgeSeconds) : 'not on the device')},
        {header: 'RX', get: (p) => String(p.rxBytes)},
        {header: 'TX', get: (p) => String(p.txBytes)},
      ],
      `tunnel ${args.tunnel} has no peers`,
    )
    return peers
  }
}
