/**
 * Errors as data: every failure netkit reports carries a stable code, the exit
 * status it maps to, one line saying what is wrong, one saying what to do, and
 * (for failures of a wrapped tool) the raw message kept for --verbose.
 */

export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
} as const

export type ExitStatus = (typeof ExitCode)[keyof typeof ExitCode]

export interface NetkitErrorOptions {
  /** What the user should do about it, one line. */
  fix?: string
  /** The wrapped tool's own words (stderr), shown with --verbose. */
  detail?: string
  /** The command that failed, already redacted, shown with --verbose. */
  command?: string
  exit?: ExitStatus
  cause?: unknown
}

export class NetkitError extends Error {
  readonly code: string
  readonly fix?: string
  readonly detail?: string
  readonly command?: string
  readonly exit: ExitStatus
  /** The message as made (oclif may decorate `message` when a flag parser throws). */
  readonly what: string

  constructor(code: string, message: string, opts: NetkitErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : {cause: opts.cause})
    this.name = 'NetkitError'
    this.what = message
    this.code = code
    this.fix = opts.fix
    this.detail = opts.detail
    this.command = opts.command
    this.exit = opts.exit ?? ExitCode.failed
  }

  /** The one line a person reads. */
  get line(): string {
    return this.fix ? `${this.what}; ${this.fix}` : this.what
  }

  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = {code: this.code, message: this.what, exitCode: this.exit}
    if (this.fix) out.fix = this.fix
    if (this.command) out.command = this.command
    if (this.detail) out.detail = this.detail
    return out
  }
}

/** Bad input or usage: exit 2, and nothing was changed. */
export class UsageError extends NetkitError {
  constructor(message: string, fix?: string, code = 'E_USAGE') {
    super(code, message, {fix, exit: ExitCode.usage})
    this.name = 'UsageError'
  }
}

export function isNetkitError(e: unknown): e is NetkitError {
  return e instanceof NetkitError
}
