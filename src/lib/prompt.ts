/**
 * The one way netkit asks a person something (inquirer, loaded on first use).
 * A prompt appears only on a terminal and never with --json, so CI and scripts
 * never block: `interactive()` says whether asking is allowed, and callers
 * that need an answer without a terminal take it from a flag (--yes,
 * --answers) or refuse with a UsageError that names that flag.
 */

export type Question = Record<string, unknown> & {name: string}

/** Whether this run may prompt: standard input and output are terminals, and the output is not --json. */
export function interactive(json: boolean): boolean {
  return Boolean(process.stdin.isTTY && process.stdout.isTTY) && !json
}

/** Asks one question (an inquirer question object) and returns its answer. */
export async function ask(q: Question): Promise<unknown> {
  // A named import: the bundle loads inquirer lazily (scripts/bundle.mjs), where a default import is the module itself.
  const {createPromptModule} = await import('inquirer')
  const r = (await createPromptModule()([q as never])) as Record<string, unknown>
  return r[q.name]
}

/** A yes/no question; no is the default. */
export async function confirm(message: string): Promise<boolean> {
  return (await ask({type: 'confirm', name: 'ok', message, default: false})) === true
}

/**
 * `apply --try`'s question: waits for "y" and Enter on standard input (a
 * terminal or a pipe: a script may answer it) within `seconds`; no when the
 * time runs out, the input ends without "y", or `interrupted` settles first
 * (a signal). The question goes to stderr, never with --json.
 */
export async function confirmWithin(seconds: number, json: boolean, interrupted: Promise<unknown>): Promise<boolean> {
  if (!json) process.stderr.write(`keep these changes? type y and Enter within ${seconds} s: `)
  return new Promise((resolve) => {
    let text = ''
    let answered = false
    const done = (ok: boolean) => {
      if (answered) return
      answered = true
      // What follows (the undoing's commands) starts on a line of its own.
      if (!json && !text.includes('\n')) process.stderr.write('\n')
      clearTimeout(timer)
      process.stdin.pause()
      process.stdin.removeAllListeners('data')
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), seconds * 1000)
    process.stdin.setEncoding('utf8')
    process.stdin.on('data', (d: string) => {
      text += d
      if (text.includes('\n')) done(/^\s*y(es)?\s*$/i.test(text.split('\n')[0]))
    })
    process.stdin.on('end', () => done(/^\s*y(es)?\s*$/i.test(text)))
    void interrupted.then(() => done(false))
    process.stdin.resume()
  })
}
