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
  const {default: inquirer} = await import('inquirer')
  const r = (await inquirer.prompt([q as never])) as Record<string, unknown>
  return r[q.name]
}

/** A yes/no question; no is the default. */
export async function confirm(message: string): Promise<boolean> {
  return (await ask({type: 'confirm', name: 'ok', message, default: false})) === true
}
