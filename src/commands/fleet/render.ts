import {readFileSync} from 'node:fs'

import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../lib/base-command.js'
import {UsageError} from '../../lib/errors.js'

const read = (path: string, what: string) => {
  try {
    return {text: readFileSync(path, 'utf8'), source: path}
  } catch {
    throw new UsageError(`${what} ${path} cannot be read`, `give the path of the ${what}`, 'E_FILE')
  }
}

export default class FleetRender extends NetkitCommand {
  static override summary = 'Turn a fleet inventory into one "netkit apply" bundle per host (run it on the controller).'
  static override description = `Writes OUTDIR/<host>/host.yaml for every host of the inventory (a full mesh or hub-and-spoke, WireGuard or IPsec), OUTDIR/<host>/secrets/<peer>.psk for IPsec (one key per pair, the same on both ends, mode 0600) and OUTDIR/overlay.yaml (the overlay addresses assigned from the pool, read back at the next render so that they stay stable as hosts come and go). Copy OUTDIR/<host>/ to the host's --host-dir and run "netkit apply -f HOST_DIR/host.yaml" there.

WireGuard private keys never leave their hosts: run "netkit tunnel pubkey TUNNEL" on each host and gather the keys into pubkeys.yaml ("NAME: KEY" lines); a host missing there is an error naming it. IPsec keys are made here (256 random bits) and kept in OUTDIR: a re-render of an unchanged inventory writes byte-identical files. A host removed from the inventory loses its bundle, and its peers their references to it. Only changed files are written. --dry-run lists what would be written and removed (never a key). Inventory format: docs/fleet.md.

Inventory: version: 1; type: wireguard|ipsec; topology: full-mesh|hub-and-spoke; hubs: [NAME]; tunnel: NAME (WireGuard, default mesh); listenPort (default 51820); pool: CIDR; keepalive; hosts: {NAME: {address: IP, subnets: [CIDR], overlay: IP}}.`
  static override examples = [
    '<%= config.bin %> fleet render -i fleet.yaml --pubkeys pubkeys.yaml -o out',
    '<%= config.bin %> fleet render -i fleet.yaml -o out --dry-run',
  ]
  static override flags = {
    inventory: Flags.string({char: 'i', summary: 'The fleet inventory (YAML).', required: true}),
    pubkeys: Flags.string({summary: 'WireGuard: the hosts\' public keys (NAME: KEY), from "netkit tunnel pubkey" on each host.'}),
    out: Flags.string({char: 'o', summary: 'The folder the bundles go to (made if missing).', required: true}),
    'host-dir': Flags.string({summary: 'Where each bundle is copied to on its host (host.yaml names its keys there).', default: '/etc/netkit/fleet'}),
    'dry-run': Flags.boolean({summary: 'List what would be written and removed (no keys shown); write nothing.'}),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(FleetRender)
    if (flags.netns) throw new UsageError('--netns does not apply to fleet render', 'it only writes files: leave out --netns')
    const {renderFleet} = await import('../../lib/fleet/render.js')
    const result = renderFleet({
      inventory: read(flags.inventory, 'inventory'),
      ...(flags.pubkeys ? {pubkeys: read(flags.pubkeys, 'pubkeys file')} : {}),
      outDir: flags.out,
      hostDir: flags['host-dir'],
      dryRun: flags['dry-run'],
    })
    if (!this.jsonEnabled()) {
      const shown = result.files.filter((f) => f.action !== 'unchanged')
      const verb = (a: string) => (result.dryRun ? `would ${a}` : a === 'create' ? 'created' : a === 'update' ? 'updated' : 'removed')
      for (const f of shown) this.log(`${verb(f.action)} ${f.path}${f.secret ? ' (key, mode 0600)' : ''}`)
      for (const name of result.assigned)
        this.log(`${result.dryRun ? 'would assign' : 'assigned'} overlay ${result.hosts.find((h) => h.name === name)?.overlay} to ${name}`)
      const unchanged = result.files.length - shown.length
      const hosts = `${result.hosts.length} host${result.hosts.length === 1 ? '' : 's'}`
      if (!result.changed) this.log(`${hosts}: every file is up to date in ${result.outDir}; nothing to do`)
      else
        this.log(
          `${result.dryRun ? 'dry run: ' : ''}${hosts}, ${result.type} ${result.topology}: ${shown.length} file${shown.length === 1 ? '' : 's'} ${result.dryRun ? 'to write or remove' : 'written or removed'}, ${unchanged} unchanged${result.dryRun ? '; nothing was written' : ''}`,
        )
    }
    return result
  }
}
