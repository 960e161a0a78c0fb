import {Args} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import {configDir} from '../../lib/files.js'
import {progressMode} from '../../lib/plan.js'
import {addFromFlags} from '../../lib/tunnel/add.js'
import {addFlags} from '../../lib/tunnel/flags.js'

export default class TunnelAdd extends NetkitCommand {
  static override summary = 'Set up a tunnel to another host (IPsec, WireGuard or VXLAN).'
  static override description = `A WireGuard tunnel without --remote is an interface with peers by name (one key pair, one listen port, one device): add and remove them with "netkit tunnel peer add|del", one at a time, without touching the others. Re-running "tunnel add" for it keeps its peers.

With --remote, run it on both hosts: first with --no-wait on the host whose peer is not set up yet, then on the peer, which waits until the tunnel is proven up (SA installed, handshake done) or fails and undoes everything within --timeout. Routes to the remote subnets go through the tunnel; with --table they go into that table, with a policy rule. Each step is undone if a later one fails (or on Ctrl-C). Re-running it with the same definition is a no-op.`
  static override examples = [
    '<%= config.bin %> tunnel add site-b --type ipsec --remote 198.51.100.2 --local-subnet 10.1.0.0/24 --remote-subnet 10.2.0.0/24 --psk-file /root/site-b.psk',
    '<%= config.bin %> tunnel add node2 --type wireguard --remote 192.0.2.2 --peer-public-key "$(ssh node2 netkit tunnel pubkey node1)" --remote-subnet 10.2.0.0/24',
    '<%= config.bin %> tunnel add mesh --type wireguard --address 10.99.0.1/24 --listen-port 51820   # an interface: then "tunnel peer add mesh PEER ..."',
    '<%= config.bin %> tunnel add ov1 --type vxlan --remote 192.0.2.2 --vni 42 --address 10.9.0.1/24',
  ]
  static override args = {name: Args.string({description: 'tunnel name (up to 12 characters)', required: true})}
  static override flags = addFlags

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(TunnelAdd)
    const runner = this.makeRunner(flags)
    const {def, result, pskFile, notes} = await addFromFlags(args.name, flags, {
      runner,
      configDir: configDir(),
      progress: progressMode(this.jsonEnabled()),
    })
    if (!this.jsonEnabled()) for (const note of notes) process.stderr.write(`${note}\n`)
    const out = this.outcome(
      result.changed,
      {
        verb: 'set up',
        object: `tunnel ${def.name}${result.state === 'connecting' ? ', waiting for the peer (run the matching "tunnel add" there)' : ''}`,
        noop: result.summary,
      },
      runner,
    )
    return {
      ...out,
      state: result.state ?? null,
      tunnel: def,
      datapath: result.datapath,
      datapathReason: result.datapathReason,
      ...(pskFile ? {pskFile} : {}),
    }
  }
}
