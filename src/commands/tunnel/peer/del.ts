import {Args} from '@oclif/core'

import {NetkitCommand} from '../../../lib/base-command.js'
import * as f from '../../../lib/flags.js'
import {configDir} from '../../../lib/files.js'
import {progressMode} from '../../../lib/plan.js'
import {tunnelNameArg} from '../../../lib/tunnel/flags.js'
import {delPeer, requireInterface} from '../../../lib/tunnel/service.js'
import {peerName} from '../../../lib/tunnel/wireguard/peers.js'

export default class TunnelPeerDel extends NetkitCommand {
  static override summary = 'Remove a peer from a WireGuard interface (and its routes), without touching its other peers.'
  static override description =
    'One "wg set DEV peer KEY remove": the device is not restarted and the other peers\' sessions go on. Removing a peer that is not there is a no-op.'
  static override examples = ['<%= config.bin %> tunnel peer del mesh b']
  static override args = {
    tunnel: tunnelNameArg("the WireGuard interface's tunnel name"),
    peer: Args.string({description: 'peer name', required: true, parse: async (s) => peerName(s)}),
  }
  static override flags = {'dry-run': f.dryRun}

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(TunnelPeerDel)
    const runner = this.makeRunner(flags)
    const def = requireInterface(configDir(), args.tunnel, flags.netns)
    const r = await delPeer(def, args.peer, {runner, configDir: configDir(), progress: progressMode(this.jsonEnabled())})
    const out = this.outcome(
      r.changed,
      {verb: 'remove', object: `peer ${args.peer} of tunnel ${args.tunnel}`, noop: `tunnel ${args.tunnel} has no peer ${args.peer}`},
      runner,
    )
    return {...out, tunnel: args.tunnel, peer: args.peer}
  }
}
