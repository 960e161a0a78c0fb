/**
 * Defects of apply, diff and export found by running them as a user would
 * (issue 14) and by failing their undo (issue 15), each pinned here without
 * touching the host.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {differences, LinkObj, liveLink, PolicyObj} from '../../src/lib/kinds/index.js'
import {parseHostFile} from '../../src/lib/apply/schema.js'
import {undoLines} from '../../src/lib/apply/ops.js'
import {UsageError} from '../../src/lib/errors.js'
import {linkRow} from '../../src/lib/iproute2/link.js'
import type {IpLink} from '../../src/lib/iproute2/json.js'
import {parsePolicies} from '../../src/lib/iproute2/xfrm-parse.js'
import {Recorder} from '../helpers/recorder.js'

const fails = (fn: () => unknown): string => {
  try {
    fn()
  } catch (error) {
    assert.ok(error instanceof UsageError, String(error))
    return error.what
  }
  assert.fail('expected a UsageError')
}

describe('apply reads live objects as the kernel prints them', () => {
  it('a VXLAN link: the underlay is info_data.link (there is no top-level link), as link list reads it', () => {
    // `ip -j -d link show vx0` of "ip link add vx0 type vxlan id 42 remote 192.0.2.2 dev u0 dstport 4789" (iproute2 6.1).
    const live: IpLink = {
      ifindex: 5,
      ifname: 'vx0',
      flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
      mtu: 1450,
      ifalias: 'netkit',
      linkinfo: {info_kind: 'vxlan', info_data: {id: 42, remote: '192.0.2.2', link: 'u0', port_range: {low: 0, high: 0}, port: 4789, learning: true, ttl: 0}},
    }
    const desired = new LinkObj({name: 'vx0', kind: 'vxlan', vni: 42, remote: '192.0.2.2', dev: 'u0', up: true})
    const o = liveLink(live)!
    assert.deepEqual(differences(desired, o), [], 'apply finds the link it made equal to the file')
    assert.deepEqual([o.spec.dev, o.spec.remote, o.spec.port], ['u0', '192.0.2.2', 4789])
    const row = linkRow(live)
    assert.deepEqual([row.lower, row.remote, row.vni, row.port], [o.spec.dev, o.spec.remote, o.spec.vni, o.spec.port], 'the same reading as link list')
    const six = liveLink({...live, linkinfo: {info_kind: 'vxlan', info_data: {id: 42, remote6: '2001:db8::2', link: 'u0', port: 4789}}})!
    assert.equal(six.spec.remote, '2001:db8::2')
  })

  it("an xfrm policy with a template and no reqid is the kernel's reqid 0", () => {
    const [p] = parsePolicies(
      'src 10.60.0.0/24 dst 10.65.0.0/24 \n\tdir out priority 1780 ptype main \n\ttmpl src 192.0.2.1 dst 192.0.2.2\n\t\tproto esp reqid 0 mode tunnel\n',
    )
    const t = p.tmpls[0]
    const spec = {
      src: '10.60.0.0/24',
      dst: '10.65.0.0/24',
      family: 4 as const,
      dir: 'out' as const,
      tmplSrc: '192.0.2.1',
      tmplDst: '192.0.2.2',
      proto: 'esp' as const,
      mode: 'tunnel' as const,
      priority: 1780,
      action: 'allow' as const,
    }
    const live = new PolicyObj({...spec, reqid: t.reqid || undefined}, undefined)
    assert.deepEqual(differences(new PolicyObj(spec, undefined), live), [])
    assert.deepEqual(differences(new PolicyObj({...spec, reqid: 0}, undefined), live), [], 'reqid: 0 says the same')
    assert.deepEqual(differences(new PolicyObj({...spec, reqid: 7}, undefined), live), ['tmpl 192.0.2.1>192.0.2.2 tunnel 0, not 192.0.2.1>192.0.2.2 tunnel 7'])
    assert.equal(live.entry.reqid, undefined, 'and export writes none')
  })
})

describe('the maps of a host file', () => {
  // Every map of the file (schema.ts), at the top and inside a namespace, and a value for it that is valid but for the key.
  const MAPS: [string, (k: string) => unknown][] = [
    ['tables', () => 7],
    ['namespaces', () => ({routes: [{to: '10.9.0.0/24', dev: 'lo'}]})],
    ['tunnels', () => ({type: 'vxlan', remote: '192.0.2.2', vni: 5, local: '192.0.2.1', dev: 'lo'})],
    ['sysctls', () => '1'],
  ]
  const KEYS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty']
  // What each key (in KEYS' order) is in each map: a name like any other, or bad input naming itself.
  // (A list, not an object literal: in one, "__proto__: x" would set the prototype.)
  const EXPECT: Record<string, (RegExp | 'ok')[]> = {
    tables: [/^h\.json: tables\.__proto__: a table name/, 'ok', 'ok', 'ok'],
    namespaces: [/^h\.json: namespaces\.__proto__: "__proto__" cannot name a namespace/, 'ok', 'ok', 'ok'],
    tunnels: [
      /^h\.json: (namespaces\.c1\.)?tunnels\.__proto__: a tunnel name/,
      'ok',
      'ok',
      /^h\.json: (namespaces\.c1\.)?tunnels\.hasOwnProperty: a tunnel name/,
    ],
    sysctls: KEYS.map((k) => new RegExp(`^h\\.json: (namespaces\\.c1\\.)?sysctls\\.${k}: unknown sysctl "${k}"$`)),
  }

  it('take __proto__, constructor, toString and hasOwnProperty as keys: each checked, kept as data, never a prototype', () => {
    for (const [map, value] of MAPS) {
      for (const [n, key] of KEYS.entries()) {
        for (const inner of map === 'tables' || map === 'namespaces' ? [false] : [false, true]) {
          // JSON.parse makes "__proto__" an own key, as a YAML reader does.
          const body = `{${JSON.stringify(key)}: ${JSON.stringify(value(key))}}`
          const text = inner ? `{"version": 1, "namespaces": {"c1": {"${map}": ${body}}}}` : `{"version": 1, "${map}": ${body}}`
          const what = `${map}.${key}${inner ? ' in a namespace' : ''}`
          const want = EXPECT[map][n]
          if (want === 'ok') {
            const f = parseHostFile(text, 'h.json')
            const m = (inner ? (f.namespaces.c1 as any)[map] : (f as any)[map]) as Record<string, unknown>
            assert.equal(Object.getPrototypeOf(m), null, `${what}: a map without a prototype`)
            assert.deepEqual(Object.keys(m), [key], what)
          } else {
            assert.match(
              fails(() => parseHostFile(text, 'h.json')),
              want,
              what,
            )
          }
        }
      }
    }
  })

  it('a map the file leaves out is empty, without a prototype', () => {
    const f = parseHostFile('version: 1\n', 'h.yaml')
    for (const m of [f.tables, f.namespaces, f.tunnels, f.sysctls]) {
      assert.equal(Object.getPrototypeOf(m), null)
      assert.equal((m as Record<string, unknown>).constructor, undefined)
    }
  })

  it('a million bad entries: one error, the first, found at once', () => {
    const routes = Array.from({length: 1_000_000}, (_, i) => ({to: `10.${(i >> 8) & 255}.${i & 255}.1/24`, dev: 'd0'}))
    const text = JSON.stringify({version: 1, routes})
    const t0 = Date.now()
    assert.match(
      fails(() => parseHostFile(text, 'h.json')),
      /^h\.json: routes\.0\.to: route destination "10\.0\.0\.1\/24" has host bits set/,
    )
    assert.ok(Date.now() - t0 < 10_000, `${Date.now() - t0} ms`)
  })
})

describe('undo lines', () => {
  it('an xfrm or neigh line runs on its own (ip ends a -force batch at the first of them that fails): every later line still runs, and what failed is said', async () => {
    const rec = new Recorder().on(/-batch/, (c) =>
      /^neigh del proxy 10\.5\.0\.52/m.test(c.input ?? '') ? {exitCode: 2, stderr: 'RTNETLINK answers: No such file or directory\n'} : {},
    )
    const failed: string[] = []
    await undoLines(
      rec.runner({netns: 'n1'}),
      [
        {args: ['xfrm', 'policy', 'delete', 'src', '10.1.0.0/24', 'dst', '10.2.0.0/24', 'dir', 'out'], object: 'xfrm policy'},
        {args: ['neigh', 'del', 'proxy', '10.5.0.52', 'dev', 'd0'], object: 'proxy entry 10.5.0.52 on d0'},
        {args: ['route', 'del', '10.8.1.0/24', 'proto', '178', 'table', '254'], object: 'route 10.8.1.0/24'},
        {args: ['rule', 'del', 'from', '10.8.1.0/24', 'table', '100', 'priority', '1000', 'protocol', '178'], object: 'rule'},
        {args: ['neigh', 'del', 'proxy', '10.5.0.53', 'dev', 'd0'], object: 'proxy entry 10.5.0.53 on d0'},
      ],
      failed,
    )
    assert.deepEqual(
      rec.calls.map((c) => [c.args.join(' '), (c.input ?? '').trim()]),
      [
        ['-n n1 -batch -', 'xfrm policy delete src 10.1.0.0/24 dst 10.2.0.0/24 dir out'],
        ['-n n1 -batch -', 'neigh del proxy 10.5.0.52 dev d0'],
        ['-n n1 -force -batch -', 'route del 10.8.1.0/24 proto 178 table 254\nrule del from 10.8.1.0/24 table 100 priority 1000 protocol 178'],
        ['-n n1 -batch -', 'neigh del proxy 10.5.0.53 dev d0'],
      ],
    )
    assert.equal(failed.length, 1)
    assert.match(failed[0], /^proxy entry 10\.5\.0\.52 on d0: /)
  })
})
