import {Flags} from '@oclif/core'

import {NetkitCommand} from '../../../lib/base-command.js'
import {UsageError} from '../../../lib/errors.js'
import * as f from '../../../lib/flags.js'
import {addState} from '../../../lib/iproute2/xfrm.js'
import type {ChangeOutcome} from '../../../lib/output.js'
import * as v from '../../../lib/validate.js'

export default class XfrmStateAdd extends NetkitCommand {
  static override summary = 'Add an ESP security association (SAD entry); keys only from files or stdin.'
  static override description =
    'Key files hold the key as hex (mode 0600). Keys reach ip on stdin and are shown as <redacted>. On a kernel without ESP (CONFIG_INET_ESP) this fails and changes nothing: use "netkit tunnel add --type ipsec", which runs ESP in userspace.'
  static override examples = [
    '<%= config.bin %> xfrm state add --src 192.0.2.1 --dst 192.0.2.2 --spi 0x1000 --aead "rfc4106(gcm(aes))" --aead-key-file /root/sa.hex --icv 128 --reqid 1',
    '<%= config.bin %> xfrm state add --src 192.0.2.1 --dst 192.0.2.2 --spi 0x1001 --enc "cbc(aes)" --enc-key-file enc.hex --auth "hmac(sha256)" --auth-key-file auth.hex',
  ]
  static override flags = {
    'dry-run': f.dryRun,
    src: f.ip({summary: 'Outer source address.', required: true}),
    dst: f.ip({summary: 'Outer destination address.', required: true}),
    spi: Flags.custom<number>({summary: 'SPI (0x100 to 0xffffffff).', required: true, parse: async (s) => v.spi(s)})(),
    mode: Flags.string({summary: 'Mode.', options: ['tunnel', 'transport'], default: 'tunnel'}),
    reqid: f.u32('--reqid')({summary: 'reqid (ties the SA to its policies).'}),
    mark: f.mark({summary: 'Mark, VALUE or VALUE/MASK.'}),
    aead: Flags.string({summary: 'AEAD algorithm, e.g. rfc4106(gcm(aes)).'}),
    'aead-key-file': Flags.string({summary: 'File with the AEAD key (hex, key plus 32-bit salt), or - for stdin.'}),
    icv: Flags.custom<number>({summary: 'AEAD ICV length in bits (64, 96, 128).', default: 128, parse: async (s) => v.integer(s, '--icv', 64, 128)})(),
    enc: Flags.string({summary: 'Cipher, e.g. cbc(aes).'}),
    'enc-key-file': Flags.string({summary: 'File with the cipher key (hex), or - for stdin.'}),
    auth: Flags.string({summary: 'Integrity algorithm, e.g. hmac(sha256).'}),
    'auth-key-file': Flags.string({summary: 'File with the integrity key (hex), or - for stdin.'}),
  }

  async run(): Promise<ChangeOutcome> {
    const {flags} = await this.parse(XfrmStateAdd)
    v.sameFamily(flags.src, flags.dst, '--src and --dst')
    const need = (flag: string, value?: string) => {
      if (!value) throw new UsageError(`${flag} is missing`, 'key material comes only from a file (or - for stdin)')
      return value
    }
    const runner = this.makeRunner(flags)
    const changed = await addState(runner, {
      src: flags.src.ip,
      dst: flags.dst.ip,
      spi: flags.spi,
      mode: flags.mode as 'tunnel' | 'transport',
      reqid: flags.reqid,
      mark: flags.mark,
      ...(flags.aead ? {aead: {alg: flags.aead, keyFile: need('--aead-key-file', flags['aead-key-file']), icv: flags.icv}} : {}),
      ...(flags.enc ? {enc: {alg: flags.enc, keyFile: need('--enc-key-file', flags['enc-key-file'])}} : {}),
      ...(flags.auth ? {auth: {alg: flags.auth, keyFile: need('--auth-key-file', flags['auth-key-file'])}} : {}),
    })
    const what = `SA ${flags.src.ip} -> ${flags.dst.ip} spi 0x${flags.spi.toString(16)}`
    return this.outcome(changed, {verb: 'add', object: what, noop: `${what} already exists`}, runner)
  }
}
