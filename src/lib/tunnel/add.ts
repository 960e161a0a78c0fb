/**
 * `netkit tunnel add` from its flags: the flags as a tunnel definition
 * (checked by define.ts), the warning VXLAN always gets, the add itself
 * (service.ts) and the notes a person reads after it.
 */
import type {Interfaces} from '@oclif/core'

import type {Runner} from '../runner.js'
import {defineTunnel, type TunnelInput} from './define.js'
import type {addFlags} from './flags.js'
import {type AddResult, addTunnel} from './service.js'
import {pskPath, scopeDir} from './store.js'
import type {DatapathChoice, TunnelDef, TunnelType} from './types.js'

/** The parsed flags of "tunnel add" (with the global --netns). */
export type AddFlagValues = Interfaces.InferredFlags<typeof addFlags> & {netns?: string}

export interface AddedTunnel {
  def: TunnelDef
  result: AddResult
  /** The generated PSK's file, when netkit made the key. */
  pskFile?: string
  /** Lines for a person (stderr): the data path, where a generated PSK is. */
  notes: string[]
}

/** Defines the tunnel from the flags and adds it, keeping a WireGuard interface's peers. */
export async function addFromFlags(
  name: string,
  flags: AddFlagValues,
  opts: {runner: Runner; configDir: string; progress: 'tty' | 'simple' | 'none'},
): Promise<AddedTunnel> {
  const {runner} = opts
  const {def, psk, pskGenerated} = await defineTunnel(tunnelInput(name, flags), runner)
  if (def.type === 'vxlan')
    runner.warn(
      'VXLAN does not encrypt: anyone on the path between the hosts can read and inject its traffic. Use --type ipsec or wireguard for anything that must stay private.',
    )
  const result = await addTunnel(def, {
    runner,
    configDir: opts.configDir,
    timeoutMs: flags.timeout * 1000,
    progress: opts.progress,
    replace: flags.replace,
    keepPeers: true,
    wait: !flags['no-wait'],
    psk,
  })
  const pskFile = pskGenerated ? pskPath(scopeDir(opts.configDir, def.netns), def.name) : undefined
  const notes = [`data path: ${result.datapath} (${result.datapathReason})`]
  if (pskFile && result.changed && !runner.dryRun) {
    notes.push(`generated a 256-bit pre-shared key in ${pskFile} (mode 0600): copy it to the peer over a secure channel and pass it there with --psk-file`)
  }
  return {def, result, pskFile, notes}
}

/** The flags of "tunnel add" as define.ts takes them. */
function tunnelInput(name: string, flags: AddFlagValues): TunnelInput {
  return {
    name,
    type: flags.type as TunnelType,
    netns: flags.netns,
    local: flags.local,
    remote: flags.remote,
    localSubnet: flags['local-subnet'],
    remoteSubnet: flags['remote-subnet'],
    table: flags.table,
    proxyArp: flags['proxy-arp'],
    mtu: flags.mtu,
    datapath: flags.datapath as DatapathChoice,
    localId: flags['local-id'],
    remoteId: flags['remote-id'],
    pskFile: flags['psk-file'],
    cert: flags.cert,
    key: flags.key,
    ca: flags.ca,
    proposals: flags.proposals,
    espProposals: flags['esp-proposals'],
    dpd: flags.dpd,
    rekeyTime: flags['rekey-time'],
    startAction: flags['start-action'] as 'trap' | 'start' | 'none' | undefined,
    listenPort: flags['listen-port'],
    peerPublicKey: flags['peer-public-key'],
    endpoint: flags.endpoint,
    address: flags.address,
    keepalive: flags.keepalive,
    fwmark: flags.fwmark,
    vni: flags.vni,
    port: flags.port,
    dev: flags.dev,
    peerAddress: flags['peer-address'],
  }
}
