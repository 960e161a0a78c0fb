/**
 * A recording executor for unit tests: every call is recorded (file, argv,
 * stdin), and replies come from a list of [matcher, reply] rules, so a test
 * can assert the exact commands netkit would run without touching the host.
 */
import type {ExecResult, Executor} from '../../src/lib/runner.js'
import {Runner} from '../../src/lib/runner.js'

export interface Call {
  file: string
  args: string[]
  input?: string
  /** "file arg arg ..." for easy assertions. */
  line: string
}

export type Reply = Partial<ExecResult> | ((call: Call) => Partial<ExecResult>)

export class Recorder {
  readonly calls: Call[] = []
  readonly echoed: string[] = []
  private rules: [RegExp | string, Reply][] = []

  /** Replies to calls whose line matches (a substring or a regex); later rules win. */
  on(match: RegExp | string, reply: Reply): this {
    this.rules.unshift([match, reply])
    return this
  }

  readonly exec: Executor = async (file, args, opts) => {
    const call: Call = {file, args, input: opts.input, line: [file, ...args].join(' ')}
    this.calls.push(call)
    for (const [m, reply] of this.rules) {
      if (typeof m === 'string' ? call.line.includes(m) : m.test(call.line)) {
        const r = typeof reply === 'function' ? reply(call) : reply
        return {exitCode: 0, stdout: '', stderr: '', ...r}
      }
    }
    return {exitCode: 0, stdout: '', stderr: ''}
  }

  /** Daemons "started": recorded like calls, with a made-up pid. */
  readonly spawn = async (file: string, args: string[]): Promise<number> => {
    this.calls.push({file, args, line: [file, ...args].join(' ')})
    return 4242
  }

  runner(opts: {netns?: string; dryRun?: boolean} = {}): Runner {
    return new Runner({...opts, exec: this.exec, spawn: this.spawn, sink: (l) => this.echoed.push(l)})
  }

  /** The lines of calls that are not reads (not "-j" and not "show"/"list"). */
  get lines(): string[] {
    return this.calls.map((c) => c.line)
  }
}
