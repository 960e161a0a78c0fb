/** Flags shared by the tunnel commands. */
import {Args, Flags} from '@oclif/core'

import * as f from '../flags.js'
import * as v from '../validate.js'
import {tunnelName} from './define.js'

/** A tunnel name argument, checked before anything runs (a name "tunnel add" would refuse names no tunnel). */
export const tunnelNameArg = (description: string) => Args.string({description, required: true, parse: async (s) => tunnelName(s)})
export const optionalTunnelNameArg = (description: string) => Args.string({description, parse: async (s) => tunnelName(s)})

export const timeout = Flags.custom<number>({
  summary: 'Seconds to wait for the tunnel to come up (SA installed) before giving up and undoing.',
  default: 30,
  parse: async (s) => v.integer(s, '--timeout', 1, 3600),
})()

export const noWait = Flags.boolean({
  summary: 'Do not wait for the tunnel to come up (for the first of two hosts, whose peer is not set up yet).',
})

export const addFlags = {
  'no-wait': noWait,
  'dry-run': f.dryRun,
  type: Flags.string({summary: 'Tunnel type.', options: ['ipsec', 'wireguard', 'vxlan'], required: true}),
  local: Flags.string({summary: 'Local underlay address (default: the source address of the route to --remote).'}),
  remote: Flags.string({
    summary:
      'The peer host\'s underlay address (required, but for a WireGuard interface with peers by name: leave it out and add them with "tunnel peer add").',
  }),
  'local-subnet': Flags.string({summary: 'A subnet behind this host (repeatable).', multiple: true}),
  'remote-subnet': Flags.string({summary: 'A subnet behind the peer (repeatable).', multiple: true}),
  table: Flags.custom<number>({
    summary: 'Put the routes to the remote subnets in this table (number), with a policy rule.',
    parse: async (s) => v.integer(s, '--table', 1, v.U32_MAX),
  })(),
  'proxy-arp': Flags.string({summary: 'Answer ARP on this interface for remote addresses (proxy ARP).'}),
  mtu: f.mtu({summary: 'Tunnel MTU (default: the underlay MTU minus the encapsulation overhead).'}),
  datapath: Flags.string({
    summary: 'Kernel or userspace data path; auto picks the kernel where it can.',
    options: ['auto', 'kernel', 'userspace'],
    default: 'auto',
  }),
  replace: Flags.boolean({summary: 'Replace an existing tunnel of this name that is defined differently.'}),
  timeout,
  // ipsec
  'local-id': Flags.string({summary: 'IKE identity of this host (default: --local).', helpGroup: 'IPSEC'}),
  'remote-id': Flags.string({summary: 'IKE identity of the peer (default: --remote).', helpGroup: 'IPSEC'}),
  'psk-file': Flags.string({summary: 'File holding the pre-shared key (mode 0600). Default: generate a 256-bit key.', helpGroup: 'IPSEC'}),
  cert: Flags.string({summary: "X.509: this host's certificate.", helpGroup: 'IPSEC'}),
  key: Flags.string({summary: "X.509: this host's private key (mode 0600).", helpGroup: 'IPSEC'}),
  ca: Flags.string({summary: 'X.509: the CA certificate.', helpGroup: 'IPSEC'}),
  proposals: Flags.string({summary: 'IKE proposals (swanctl syntax).', helpGroup: 'IPSEC'}),
  'esp-proposals': Flags.string({summary: 'ESP proposals (swanctl syntax).', helpGroup: 'IPSEC'}),
  dpd: Flags.custom<number>({
    summary: 'Dead peer detection interval, seconds (0: off).',
    helpGroup: 'IPSEC',
    parse: async (s) => v.integer(s, '--dpd', 0, 86400),
  })(),
  'rekey-time': Flags.custom<number>({
    summary: 'CHILD_SA rekey time, seconds.',
    helpGroup: 'IPSEC',
    parse: async (s) => v.integer(s, '--rekey-time', 60, 604800),
  })(),
  'start-action': Flags.string({summary: 'trap: no packet leaves in clear before the SA exists.', helpGroup: 'IPSEC', options: ['trap', 'start', 'none']}),
  // wireguard
  'listen-port': f.port({summary: 'WireGuard listen port (default 51820).', helpGroup: 'WIREGUARD'}),
  'peer-public-key': Flags.string({summary: 'The peer\'s public key ("netkit tunnel pubkey NAME" on the peer).', helpGroup: 'WIREGUARD'}),
  endpoint: Flags.string({summary: "The peer's IP:PORT (default: --remote and the listen port).", helpGroup: 'WIREGUARD'}),
  address: Flags.string({summary: "The tunnel device's own address, CIDR (wireguard, vxlan).", helpGroup: 'WIREGUARD'}),
  keepalive: Flags.custom<number>({
    summary: 'Persistent keepalive, seconds.',
    helpGroup: 'WIREGUARD',
    parse: async (s) => v.integer(s, '--keepalive', 1, 65535),
  })(),
  fwmark: Flags.custom<number>({
    summary: "Firewall mark on the tunnel's own packets.",
    helpGroup: 'WIREGUARD',
    parse: async (s) => v.integer(s, '--fwmark', 1, v.U32_MAX),
  })(),
  // vxlan
  vni: Flags.custom<number>({summary: 'VXLAN network identifier.', helpGroup: 'VXLAN', parse: async (s) => v.integer(s, '--vni', 1, 16_777_215)})(),
  port: f.port({summary: 'VXLAN UDP port (default 4789).', helpGroup: 'VXLAN'}),
  'peer-address': Flags.string({summary: "The peer's address on the VXLAN link, the gateway to --remote-subnet.", helpGroup: 'VXLAN'}),
  dev: Flags.string({summary: 'VXLAN underlay device (default: the device of the route to --remote).', helpGroup: 'VXLAN'}),
}
