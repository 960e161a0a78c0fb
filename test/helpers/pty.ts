/**
 * Drives netkit through a pseudo-terminal (node-pty), as a person would:
 * keystrokes in, screen text out. The screen is the terminal output with
 * ANSI sequences removed. In a simulated host (realhost.ts) the terminal runs
 * nsenter into the host, which runs netkit there on the same terminal.
 */
import {createRequire} from 'node:module'

import {BIN} from './cli.js'
import type {SimHost} from './realhost.js'

const require = createRequire(import.meta.url)

export const KEY = {enter: '\r', down: '\u001b[B', up: '\u001b[A', ctrlC: '\u0003', backspace: '\u007f'}

export class Session {
  private raw = ''
  private exit?: number
  private readonly done: Promise<number>
  private readonly term: {
    write(s: string): void
    kill(sig?: string): void
    onData(cb: (d: string) => void): void
    onExit(cb: (e: {exitCode: number}) => void): void
  }

  /** netkit with `args` on a new terminal inside simulated host `host` (realhost.ts): its defaults, no NETKIT_* variables. */
  static inHost(host: SimHost, args: string[]): Session {
    return new Session(args, {}, host)
  }

  /** netkit with `args` on a new terminal, on this machine with `env` added (or in `host`: see inHost). */
  constructor(args: string[], env: Record<string, string> = {}, host?: SimHost) {
    const pty = require('node-pty') as typeof import('node-pty')
    const run = host
      ? host.command(args, {...env, CI: ''})
      : {file: process.env.NETKIT_BIN ?? process.execPath, args: process.env.NETKIT_BIN ? args : [BIN, ...args], env: {...process.env, ...env, CI: ''}}
    this.term = pty.spawn(run.file, run.args, {name: 'xterm-256color', cols: 160, rows: 50, env: run.env as Record<string, string>})
    this.term.onData((d) => (this.raw += d))
    this.done = new Promise((resolve) => this.term.onExit((e) => resolve((this.exit = e.exitCode))))
  }

  /** Everything shown so far, without colours and cursor movement. */
  get screen(): string {
    // eslint-disable-next-line no-control-regex
    return this.raw.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '')
  }

  /** Waits until the screen matches (after `from` characters), or fails saying what was shown. */
  async waitFor(re: RegExp, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (re.test(this.screen)) return
      if (this.exit !== undefined) break
      await new Promise((r) => setTimeout(r, 50))
    }
    throw new Error(`the screen never showed ${re} (exit ${this.exit}); it shows:\n${this.screen.slice(-2500)}`)
  }

  /** Waits for a prompt, then types. */
  async answer(prompt: RegExp, keys: string): Promise<void> {
    const seen = this.screen.length
    await this.waitFor(prompt)
    void seen
    await new Promise((r) => setTimeout(r, 80))
    this.term.write(keys)
  }

  send(keys: string): void {
    this.term.write(keys)
  }

  async exitCode(timeoutMs = 60_000): Promise<number> {
    const t = setTimeout(() => this.term.kill('SIGKILL'), timeoutMs)
    const code = await this.done
    clearTimeout(t)
    return code
  }
}
