import {Flags} from '@oclif/core'

import {existsSync} from 'node:fs'
import {dirname, resolve} from 'node:path'

import {NetkitCommand} from '../lib/base-command.js'
import {NetkitError, UsageError} from '../lib/errors.js'
import {writeFileAtomic} from '../lib/files.js'

export default class Export extends NetkitCommand {
  static override summary = 'Write netkit\'s own state (what apply and the primitives made) as a host file for "netkit apply".'
  static override description =
    'Links with the netkit alias, addresses in the ledger, routes, rules and proxy entries with protocol netkit, xfrm policies netkit added, its table names, the sysctls apply set, tunnels (as "tunnels" entries: a PSK by the path of the file that holds it, never the key), and the namespaces netkit made from here ("namespaces", each with its own objects and tunnels; from the root namespace also those "netkit ns add" made). A tunnel\'s own device, addresses, routes and rules come with the tunnel. Applying the file on this host is a no-op. YAML, or JSON with --json.'
  static override examples = ['<%= config.bin %> export > host.yaml', '<%= config.bin %> export --netns hostA -o hostA.yaml']
  static override flags = {output: Flags.string({char: 'o', summary: 'Write to this file instead of stdout.'})}

  async run(): Promise<unknown> {
    const {flags} = await this.parse(Export)
    const runner = this.makeRunner(flags)
    const {exportHost} = await import('../lib/apply/export.js')
    const doc = await exportHost(runner)
    if (!this.jsonEnabled()) {
      const {toYaml} = await import('../lib/yaml.js')
      const text = `# netkit export${runner.netns ? ` of namespace ${runner.netns}` : ''}: apply with "netkit apply -f FILE"\n${toYaml(doc)}`
      if (flags.output) writeOutput(flags.output, text)
      else process.stdout.write(text)
    }
    return doc
  }
}

/** Writes the export where -o says: into a directory that exists (as a shell's > would), atomically. */
function writeOutput(path: string, text: string): void {
  const dir = dirname(resolve(path))
  if (!existsSync(dir)) throw new UsageError(`-o ${path}: the directory ${dir} does not exist`, 'create it first, or give another path')
  try {
    writeFileAtomic(path, text)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error)
    throw new NetkitError('E_WRITE', `cannot write ${path} (${code})`, {fix: 'give a path in a directory you can write to'})
  }
}
