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

/**
 * Characters that would break the one error line or fool the terminal that
 * shows it: C0 and C1 controls (newline, tab, ESC, NUL, ...), DEL, the line
 * and paragraph separators, and the bidirectional formatting marks (which
 * reorder what is shown after them). Printable unicode stays as it is.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
const NAMED: Record<string, string> = {'\n': '\\n', '\r': '\\r', '\t': '\\t', '\u001b': '\\e', '\u0000': '\\0'}

/** A text safe to print on one line: every control character written as an escape (\n, \t, \e, \x7f, \u202e). */
export function quoteControl(text: string): string {
  return text.replace(
    UNSAFE,
    (c) =>
      NAMED[c] ?? (c.charCodeAt(0) < 0x100 ? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}` : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
  )
}

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

  /** The message and the fix are kept on one line, with control characters quoted (quoteControl): a value echoed in them cannot break or forge lines. */
  constructor(code: string, message: string, opts: NetkitErrorOptions = {}) {
    super(quoteControl(message), opts.cause === undefined ? undefined : {cause: opts.cause})
    this.name = 'NetkitError'
    this.what = quoteControl(message)
    this.code = code
    this.fix = opts.fix === undefined ? undefined : quoteControl(opts.fix)
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
