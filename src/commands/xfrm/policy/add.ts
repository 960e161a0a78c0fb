import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../../lib/base-command.js'
import * as f from '../../../lib/flags.js'
import {addPolicy, NETKIT_XFRM_PRIORITY} from '../../../lib/iproute2/xfrm.js'
import type {ChangeOutcome} from '../../../lib/output.js'
import * as v from '../../../lib/validate.js'

export default class XfrmPolicyAdd extends NetkitCommand {
  static override summary = "Add an IPsec policy (SPD entry), recorded as netkit's."
  static override examples = [
    '<%= config.bin %> xfrm policy add --src 10.1.0.0/24 --dst 10.2.0.0/24 --dir out --tmpl-src 192.0.2.1 --tmpl-dst 192.0.2.2 --reqid 1',
    '<%= config.bin %> xfrm policy add --src 10.1.0.0/24 --dst 10.9.0.0/24 --dir out --action block',
  ]
  static override flags = {
    'dry-run': f.dryRun,
    src: f.network({summary: 'Source selector (network).', required: true}),
    dst: f.network({summary: 'Destination selector (network).', required: true}),
    dir: Flags.string({summary: 'Direction.', options: ['in', 'out', 'fwd'], required: true}),
    'tmpl-src': f.ip({summary: "Template: the tunnel's local end."}),
    'tmpl-dst': f.ip({summary: "Template: the tunnel's remote end."}),
    mode: Flags.string({summary: 'Template mode.', options: ['tunnel', 'transport'], default: 'tunnel'}),
    reqid: f.u32('--reqid')({summary: 'Template reqid (ties the policy to its SAs).'}),
    priority: Flags.custom<number>({
      summary: `Priority, lower wins (default ${NETKIT_XFRM_PRIORITY}).`,
      default: NETKIT_XFRM_PRIORITY,
      parse: async (s) => v.integer(s, '--priority', 0, v.U32_MAX),
    })(),
    mark: f.mark({summary: 'Mark, VALUE or VALUE/MASK.'}),
    action: Flags.string({summary: 'allow (protect with the template) or block.', options: ['allow', 'block'], default: 'allow'}),
    replace: Flags.boolean({summary: 'Update a different netkit policy with the same selector.'}),
  }

  async run(): Promise<ChangeOutcome> {
    const {flags} = await this.parse(XfrmPolicyAdd)
    v.sameFamily(flags.src, flags.dst, '--src and --dst')
    const runner = this.makeRunner(flags)
    const changed = await addPolicy(
      runner,
      {
        src: flags.src.cidr,
        dst: flags.dst.cidr,
        family: flags.src.family,
        dir: flags.dir as 'in' | 'out' | 'fwd',
        tmplSrc: flags['tmpl-src']?.ip,
        tmplDst: flags['tmpl-dst']?.ip,
        proto: 'esp',
        mode: flags.mode as 'tunnel' | 'transport',
        reqid: flags.reqid,
        priority: flags.priority,
        mark: flags.mark,
        action: flags.action as 'allow' | 'block',
      },
      {replace: flags.replace},
    )
    const what = `xfrm policy ${flags.src.cidr} -> ${flags.dst.cidr} dir ${flags.dir}`
    return this.outcome(changed, {verb: 'add', object: what, noop: `${what} already exists`}, runner)
  }
}
