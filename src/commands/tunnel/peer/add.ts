import {Args, Flags} from '@oclif/core'

import {NetkitCommand} from '../../../lib/base-command.js'
import * as f from '../../../lib/flags.js'
import {configDir} from '../../../lib/files.js'
import {progressMode} from '../../../lib/plan.js'
import * as v from '../../../lib/validate.js'
import {tunnelNameArg} from '../../../lib/tunnel/flags.js'
import {addPeer, requireInterface} from '../../../lib/tunnel/service.js'
import {checkPeer, peerName} from '../../../lib/tunnel/wireguard/peers.js'

export default class TunnelPeerAdd extends NetkitCommand {
  static override summary = 'Add a peer to a WireGuard interface, or change one (--replace), without touching its other peers.'
  static override description = `Only this peer changes (one "wg set DEV peer KEY ..."): the device is not restarted and the other peers' sessions go on. Its allowed-ips outside the interface's own prefix are routed into the tunnel (netkit's routes, protocol 178). Re-running it with the same values is a no-op. The interface is one made by "netkit tunnel add NAME --type wireguard" without --remote.`
  static override examples = [
    '<%= config.bin %> tunnel peer add mesh b --public-key "$(ssh b netkit tunnel pubkey mesh)" --allowed-ips 10.99.0.2/32,10.2.0.0/24 --endpoint 192.0.2.2:51820',
    '<%= config.bin %> tunnel peer add mesh laptop --public-key KEY --allowed-ips 10.99.0.9/32 --keepalive 25   # no endpoint: it connects in',
  ]
  static override args = {
    tunnel: tunnelNameArg("the WireGuard interface's tunnel name"),
    peer: Args.string({description: 'peer name (a host name)', required: true, parse: async (s) => peerName(s)}),
  }
  static override flags = {
    'public-key': Flags.string({summary: 'The peer\'s public key ("netkit tunnel pubkey NAME" on the peer).', required: true}),
    'allowed-ips': Flags.string({summary: 'What the peer sends from and what goes to it, comma-separated CIDRs (repeatable).', required: true, multiple: true}),
    endpoint: Flags.string({summary: "The peer's IP:PORT (none for a peer that connects in, behind NAT)."}),
    keepalive: Flags.custom<number>({summary: 'Persistent keepalive, seconds.', parse: async (s) => v.integer(s, '--keepalive', 1, 65535)})(),
    'psk-file': Flags.string({summary: 'File holding a pre-shared key for this peer (mode 0600, the same on both ends).'}),
    replace: Flags.boolean({summary: 'Change a peer of this name that is defined differently (only that peer is touched).'}),
    'dry-run': f.dryRun,
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(TunnelPeerAdd)
    const runner = this.makeRunner(flags)
    const input = {
      publicKey: flags['public-key'],
      allowedIps: flags['allowed-ips'],
      endpoint: flags.endpoint,
      keepalive: flags.keepalive,
      pskFile: flags['psk-file'],
    }
    // Every value checked before anything is looked up.
    checkPeer(input, `peer ${args.peer}`)
    const def = requireInterface(configDir(), args.tunnel, flags.netns)
    const r = await addPeer(def, args.peer, input, {
      runner,
      configDir: configDir(),
      progress: progressMode(this.jsonEnabled()),
      replace: flags.replace,
    })
    const out = this.outcome(
      r.changed,
      {
        verb: 'set up',
        object: `peer ${args.peer} of tunnel ${args.tunnel}${r.down ? ' (the tunnel is down: the device gets it with "netkit tunnel up")' : ''}`,
        noop: `peer ${args.peer} of tunnel ${args.tunnel} is already set up`,
      },
      runner,
    )
    return {...out, tunnel: args.tunnel, peer: {name: args.peer, ...r.peer}}
  }
}
