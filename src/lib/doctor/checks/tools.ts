/** The tools netkit wraps: present, and which version. */
import {existsSync} from 'node:fs'

import {toolVersions} from '../tool-versions.js'
import {type Check, type DoctorContext, finding} from '../types.js'

interface Tool {
  name: string
  args: string[]
  needed: (ctx: DoctorContext) => boolean
  package: string
  path?: string
}

const TOOLS: Tool[] = [
  {name: 'ip', args: ['-V'], needed: () => true, package: 'iproute2'},
  {name: 'sysctl', args: ['--version'], needed: () => true, package: 'procps'},
  {name: 'swanctl', args: ['--version'], needed: (c) => c.tunnels.some((t) => t.type === 'ipsec'), package: 'strongswan-swanctl'},
  {name: 'charon', args: ['--version'], needed: (c) => c.tunnels.some((t) => t.type === 'ipsec'), package: 'strongswan-charon', path: '/usr/lib/ipsec/charon'},
  {name: 'wg', args: ['--version'], needed: (c) => c.tunnels.some((t) => t.type === 'wireguard'), package: 'wireguard-tools'},
  {name: 'wireguard-go', args: ['--version'], needed: (c) => c.tunnels.some((t) => t.type === 'wireguard'), package: 'wireguard-go'},
]

export const tools: Check = {
  id: 'tools.installed',
  title: 'Tools installed',
  group: 'tools',
  async run(ctx) {
    // The version of each tool whose binary is there, asked once per installed binary (tool-versions.ts).
    const present = TOOLS.filter((tool) => !tool.path || existsSync(tool.path))
    const answers = await toolVersions(
      ctx.runner,
      present.map((tool) => ({tool: tool.path ?? tool.name, args: tool.args})),
      ctx.versionCache,
    )
    const out = await Promise.all(
      TOOLS.map(async (tool) => {
        if (!present.includes(tool)) {
          return finding(this, tool.needed(ctx) ? 'fail' : 'warn', {
            subject: tool.name,
            reason: `${tool.path} is missing`,
            fix: `apt-get install --no-install-recommends ${tool.package}`,
            evidence: {path: tool.path},
          })
        }
        const r = answers[present.indexOf(tool)]
        const text = `${r.stdout}${r.stderr}`.split('\n').find((l) => /\d+\.\d+/.test(l) && !/failed to load|plugin/i.test(l)) ?? ''
        const version = /v?(\d+\.\d+(\.\d+)?)/.exec(text)?.[1] ?? null
        if (r.exitCode === 127) {
          return finding(this, tool.needed(ctx) ? 'fail' : 'warn', {
            subject: tool.name,
            reason: `${tool.name} is not installed${tool.needed(ctx) ? ' and a tunnel here needs it' : ''}`,
            fix: `apt-get install --no-install-recommends ${tool.package}`,
            evidence: {installed: false},
          })
        }
        return finding(this, 'ok', {subject: tool.name, evidence: {installed: true, version}})
      }),
    )
    // The links every check reads, as JSON: this ip can print it.
    let json = false
    try {
      json = Array.isArray(await ctx.links())
    } catch {
      json = false
    }
    out.push(
      finding(this, json ? 'ok' : 'fail', {
        subject: 'ip -j',
        evidence: {json},
        ...(json ? {} : {reason: 'this ip cannot print JSON', fix: 'install a newer iproute2 (4.14 or later)'}),
      }),
    )
    return out
  },
}

export const toolChecks = [tools]
