/** The host file as `apply` and `diff` read it. */
import {readFileSync} from 'node:fs'

import {UsageError} from '../errors.js'

/** A host file as read: its text, where it came from (its name says YAML or JSON), and the netkit version reading it. */
export interface HostInput {
  text: string
  source: string
  version: string
}

/** A host file as messages name it. */
export const hostFileName = (path: string) => (path === '-' ? 'the file on standard input' : path)

/** The text of a host file, or of standard input for "-" (parsed later, and only when the memo cannot tell the plan). */
export function readHostText(path: string): {text: string; source: string} {
  try {
    // YAML 1.2 reads JSON too, so standard input needs no format.
    return path === '-' ? {text: readFileSync(0, 'utf8'), source: 'stdin'} : {text: readFileSync(path, 'utf8'), source: path}
  } catch {
    throw new UsageError(
      `${path === '-' ? 'standard input' : path} cannot be read`,
      'give the path of a YAML or JSON host file, or - for standard input',
      'E_FILE',
    )
  }
}
