/** A finding for a secret file whose mode lets others read it, with chmod 600 as the safe fix. */
import {fileMode} from '../../files.js'
import type {Runner} from '../../runner.js'
import {type Check, type Finding, finding} from '../types.js'

export function secretFileFindings(check: Check, files: {path: string; what: string}[]): Finding[] {
  const out: Finding[] = []
  for (const {path, what} of files) {
    const mode = fileMode(path)
    if (mode === undefined) continue
    const ok = (mode & 0o077) === 0
    out.push(
      finding(check, ok ? 'ok' : 'fail', {
        subject: path,
        evidence: {path, mode: mode.toString(8)},
        ...(ok
          ? {}
          : {
              reason: `${what} ${path} can be read by others (mode ${mode.toString(8)})`,
              fix: `chmod 600 ${path}`,
              remedy: {
                describe: `chmod 600 ${path}`,
                apply: async (runner: Runner) => runner.chmod(path, 0o600),
              },
            }),
      }),
    )
  }
  return out
}
