#!/usr/bin/env node
/**
 * Not netkit: a yardstick for bench/apply.mjs. The least any Node.js program
 * can do for a bulk apply of a JSON host file of routes (dev only) and SPD
 * entries: read and parse the file, send the lines to one `ip -batch -` per
 * CPU (as netkit does), read the routes back with `ip -j` and check them. No
 * validation, no comparison with the live state, no ownership ledger, no
 * undo, no CLI framework: what a correct apply must do on top of this costs
 * time that this program does not spend.
 * Usage: node bench/yardstick-apply.mjs FILE NETNS
 */
import {spawn} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {availableParallelism} from 'node:os'

const [file, netns] = process.argv.slice(2)
const doc = JSON.parse(readFileSync(file, 'utf8'))
const lines = [
  ...doc.routes.map((r) => `route add ${r.to} dev ${r.dev} proto 178`),
  ...doc.xfrmPolicies.map((p) => `xfrm policy add src ${p.src} dst ${p.dst} dir ${p.dir} priority 1780 action allow`),
]
const ip = (args, input) =>
  new Promise((resolve, reject) => {
    const child = spawn('ip', ['-n', netns, ...args], {stdio: ['pipe', 'pipe', 'inherit']})
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d))
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`ip ${args.join(' ')} failed`))))
    child.stdin.end(input)
  })
const ways = Math.min(availableParallelism(), 4)
const size = Math.ceil(lines.length / ways)
await Promise.all(Array.from({length: ways}, (_, i) => ip(['-batch', '-'], lines.slice(i * size, (i + 1) * size).join('\n') + '\n')))
const have = new Set(JSON.parse(await ip(['-j', 'route', 'show', 'proto', '178'], '')).map((r) => `${r.dst} ${r.dev}`))
const missing = doc.routes.filter((r) => !have.has(`${r.to} ${r.dev}`)).length
if (missing) throw new Error(`${missing} routes missing`)
