import {NetkitCommand} from '../../lib/base-command.js'
import {configDir} from '../../lib/files.js'
import {tunnelNameArg} from '../../lib/tunnel/flags.js'
import {tunnelPublicKey} from '../../lib/tunnel/service.js'

export default class TunnelPubkey extends NetkitCommand {
  static override summary = 'Print the WireGuard public key of a tunnel, making its key pair first if it has none.'
  static override description = `Prints the key alone on stdout, so both hosts can exchange keys before either runs "tunnel add":
  on host A: netkit tunnel pubkey b > a.pub   (give a.pub to B as --peer-public-key)
The private key stays in the netkit config directory (secrets/NAME.key, mode 0600) and is never printed.`
  static override examples = ['<%= config.bin %> tunnel pubkey node2', '<%= config.bin %> tunnel pubkey node2 --netns hostA --json']
  static override args = {name: tunnelNameArg('tunnel name (it need not be added yet)')}

  async run(): Promise<{name: string; netns: string | null; publicKey: string; created: boolean}> {
    const {args, flags} = await this.parse(TunnelPubkey)
    const runner = this.makeRunner(flags)
    const r = tunnelPublicKey(runner, configDir(), args.name, flags.netns)
    if (!this.jsonEnabled()) {
      this.log(r.publicKey)
      if (r.created) process.stderr.write(`made a new key pair for tunnel ${args.name} (private key mode 0600)\n`)
    }
    return {name: args.name, netns: flags.netns ?? null, publicKey: r.publicKey, created: r.created}
  }
}
