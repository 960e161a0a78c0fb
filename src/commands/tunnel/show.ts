import {NetkitCommand} from '../../lib/base-command.js'
import {configDir} from '../../lib/files.js'
import {tunnelNameArg} from '../../lib/tunnel/flags.js'
import {requireDef, tunnelStatus} from '../../lib/tunnel/service.js'
import type {PeerState} from '../../lib/tunnel/wireguard/driver.js'
import {ago} from '../../lib/output.js'
import {inNamespace} from '../../lib/wording.js'

export default class TunnelShow extends NetkitCommand {
  static override summary = 'Everything about one tunnel: definition, state, SAs or handshake, traffic.'
  static override examples = ['<%= config.bin %> tunnel show site-b', '<%= config.bin %> tunnel show site-b --json']
  static override args = {name: tunnelNameArg('tunnel name')}

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(TunnelShow)
    const runner = this.makeRunner(flags)
    const def = requireDef(configDir(), args.name, flags.netns)
    const status = await tunnelStatus(def, {runner, configDir: configDir()})
    const result = {tunnel: def, status}
    if (!this.jsonEnabled()) {
      const lines = [
        `tunnel ${def.name} (${def.type})${inNamespace(def.netns)}`,
        `  state:     ${status.state}${status.since ? ` since ${status.since}` : ''}`,
        `  data path: ${status.datapath}`,
        ...(def.remote
          ? [
              `  local:     ${def.local}${def.localSubnets.length ? ` (${def.localSubnets.join(', ')})` : ''}`,
              `  remote:    ${def.remote}${def.remoteSubnets.length ? ` (${def.remoteSubnets.join(', ')})` : ''}`,
            ]
          : def.localSubnets.length
            ? [`  local subnets: ${def.localSubnets.join(', ')}`]
            : []),
      ]
      if (def.table !== undefined) lines.push(`  table:     ${def.table}`)
      const {peers, ...details} = status.details as {peers?: PeerState[]}
      lines.push(...flatten(details, '  '))
      // A WireGuard interface's peers, a line each (the one-peer form's is "peer" above).
      if (peers && !('peer' in details)) {
        lines.push(`  peers:     ${peers.length === 0 ? 'none yet ("netkit tunnel peer add")' : peers.length}`)
        for (const p of peers) {
          lines.push(
            `    ${p.name}: ${p.endpoint ?? 'no endpoint'}, allowed ${p.allowedIps.join(', ')}, handshake ${p.present ? ago(p.handshakeAgeSeconds) : '- (not on the device)'}, rx ${p.rxBytes} B, tx ${p.txBytes} B`,
          )
        }
      }
      this.log(lines.join('\n'))
    }
    return result
  }
}

/** Details as indented "key: value" lines; a list of objects (IKE SAs, their CHILD_SAs) as numbered entries. */
function flatten(obj: Record<string, unknown>, indent: string): string[] {
  const out: string[] = []
  for (const [k, v] of Object.entries(obj)) {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      out.push(`${indent}${k}:`, ...flatten(v as Record<string, unknown>, `${indent}  `))
    } else if (Array.isArray(v) && v.some((x) => x && typeof x === 'object')) {
      if (v.length === 0) out.push(`${indent}${k}: -`)
      v.forEach((x, i) => out.push(`${indent}${k} ${i + 1}:`, ...flatten(x as Record<string, unknown>, `${indent}  `)))
    } else {
      out.push(`${indent}${k}: ${Array.isArray(v) ? v.join(', ') : v === null || v === undefined ? '-' : String(v)}`)
    }
  }
  return out
}
