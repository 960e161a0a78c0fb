/**
 * Each kind module (src/lib/kinds) reads a host file's entry and the kernel's
 * output of the same object alike: on the recorded host of the planner test
 * (fixtures/apply-host.ts), the desired object of each entry finds its live
 * object by identity, and they do not differ. Its lines mark what it makes
 * as netkit's.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {hostFileData, quickHostFile} from '../../src/lib/apply/host-file.js'
import {parseHostFile, validateHostFile} from '../../src/lib/apply/schema.js'
import {RouteObj, routeEntryFast, routeSchema} from '../../src/lib/kinds/route.js'
import {schemaParts} from '../../src/lib/kinds/schema-parts.js'
import {tunnelEntryFast, tunnelSchema} from '../../src/lib/kinds/tunnel.js'
import {policyEntryFast, policySchema} from '../../src/lib/kinds/xfrm-policy.js'
import {parseYaml} from '../../src/lib/yaml.js'
import type {IpAddrLink} from '../../src/lib/iproute2/addr.js'
import type {IpLink} from '../../src/lib/iproute2/json.js'
import type {IpNeigh} from '../../src/lib/iproute2/neigh.js'
import type {IpRoute} from '../../src/lib/iproute2/route.js'
import type {IpRule} from '../../src/lib/iproute2/rule.js'
import {parsePolicies} from '../../src/lib/iproute2/xfrm-parse.js'
import {
  addrFromEntry,
  differences,
  linkFromEntry,
  liveAddrs,
  liveLinks,
  livePolicies,
  liveProxies,
  liveRoutes,
  liveRules,
  type Obj,
  policyFromEntry,
  proxyFromEntry,
  routeFromEntry,
  ruleFromEntry,
} from '../../src/lib/kinds/index.js'
import {APPLIED, IP4_READS, XFRM_POLICIES} from './fixtures/apply-host.js'

const FILE = parseHostFile(APPLIED, 'host.yaml')

const tableOf = (t?: string) => (t === 'fxvpn' ? 100 : 254)
const [links, addrs, routes, rules] = IP4_READS.map((t) => JSON.parse(t) as unknown[])

/** Every desired object has a live one of the same identity, equal in what the file says. */
function sameAsLive(desired: Obj[], live: Obj[]): void {
  assert.ok(desired.length > 0)
  for (const d of desired) {
    const l = live.find((o) => o.id === d.id)
    assert.ok(l, `${d.desc} is read back as ${d.id}: ${live.map((o) => o.id).join(', ')}`)
    assert.deepEqual(differences(d, l), [], d.desc)
  }
}

describe('kind modules: a file entry and the kernel output of the same object agree', () => {
  it('link', () => sameAsLive(FILE.links.map(linkFromEntry), liveLinks(links as IpLink[], new Map())))
  it('address', () => sameAsLive(FILE.addresses.map(addrFromEntry), liveAddrs(addrs as IpAddrLink[], {})))
  it('route', () =>
    sameAsLive(
      FILE.routes.map((r) => routeFromEntry(r, tableOf)),
      liveRoutes(routes as IpRoute[]),
    ))
  it('rule', () =>
    sameAsLive(
      FILE.rules.map((r) => ruleFromEntry(r, tableOf)),
      liveRules(rules as IpRule[], 4),
    ))
  it('proxy entry', () => sameAsLive(FILE.proxyArp.map(proxyFromEntry), liveProxies(JSON.parse(IP4_READS[4]) as IpNeigh[])))
  it('xfrm policy', () => sameAsLive(FILE.xfrmPolicies.map(policyFromEntry), livePolicies(parsePolicies(XFRM_POLICIES), {})))

  it("what netkit makes is marked as netkit's: routes, rules and proxy entries with protocol 178, links with the alias", () => {
    const words = (o: Obj) => o.add.map((l) => l.args.join(' '))
    assert.match(words(routeFromEntry(FILE.routes[0], tableOf))[0], /proto 178/)
    assert.match(words(ruleFromEntry(FILE.rules[0], tableOf))[0], /protocol 178/)
    assert.match(words(proxyFromEntry(FILE.proxyArp[0]))[0], /protocol 178/)
    assert.ok(words(linkFromEntry(FILE.links[0])).includes('link set br0 alias netkit'))
  })

  it('the live kernel-made objects are not compared as foreign: connected routes, the default rules', () => {
    assert.ok(liveRoutes(routes as IpRoute[]).some((o) => o.auto && o.spec.dst === '10.1.0.0/24'))
    assert.deepEqual(
      liveRules(rules as IpRule[], 4)
        .filter((o) => o.auto)
        .map((o) => o.spec.priority),
      [0, 32766, 32767],
    )
  })
})

describe("route entries checked without zod (bulk files) give exactly the schema's result, and leave every error to it", () => {
  const Route = routeSchema(schemaParts)
  const entries: unknown[] = [
    {to: '10.1.0.0/24', dev: 'v0'},
    {to: 'default', via: '192.0.2.1'},
    {to: '2001:db8::/64', via: '2001:DB8::1', dev: 'eth0', table: 'fxvpn', metric: 0, src: '2001:db8::2'},
    {to: '10.2.0.0/16', via: ' 10.0.0.1 ', table: 100, metric: 4294967295},
    // Each of these is bad input (or an odd shape): the schema decides.
    {to: '10.1.0.1/24', dev: 'v0'},
    {to: '10.1.0.0/24', dev: 'a-very-long-interface-name'},
    {to: '10.1.0.0/24', via: 'gateway'},
    {to: '10.1.0.0/24', dev: 'v0', metric: -1},
    {to: '10.1.0.0/24', dev: 'v0', metric: 4294967296},
    {to: '10.1.0.0/24', dev: 'v0', metric: 1.5},
    {to: '10.1.0.0/24', dev: 'v0', table: ''},
    {to: '10.1.0.0/24', dev: 'v0', table: 0},
    {to: '10.1.0.0/24', dev: 'v0', via: null},
    {to: '10.1.0.0/24', dev: 'v0', weight: 2},
    {to: 10, dev: 'v0'},
    {dev: 'v0'},
    JSON.parse('{"to": "10.1.0.0/24", "dev": "v0", "__proto__": {"x": 1}}'),
    ['10.1.0.0/24'],
    '10.1.0.0/24',
    null,
  ]
  it('each entry: the same value, or undefined and the schema says what is wrong', () => {
    let fast = 0
    for (const e of entries) {
      const quick = routeEntryFast(e)
      const slow = Route.safeParse(e)
      if (quick === undefined) continue
      fast++
      assert.ok(slow.success, `${JSON.stringify(e)} is bad input, yet passed the quick check`)
      assert.deepEqual(quick, slow.data, JSON.stringify(e))
    }
    assert.equal(fast, 4, 'the four good entries took the quick check')
    for (const e of entries.slice(4)) assert.equal(Route.safeParse(e).success, false, `${JSON.stringify(e)} is bad input`)
  })
  it('a bad route in a bulk file is named as before', () => {
    const routes = Array.from({length: 1000}, (_, i) => ({to: `10.${i >> 8}.${i & 255}.0/24`, dev: 'v0'}))
    routes[700] = {to: '10.9.9.1/24', dev: 'v0'}
    assert.throws(
      () => parseHostFile(JSON.stringify({version: 1, routes}), 'host.json'),
      (e: Error & {what?: string}) => /^host\.json: routes\.700\.to: .*host bits set/.test(e.what ?? e.message),
    )
  })
})

describe("SPD entries checked without zod give exactly the schema's result, and leave every error to it", () => {
  const Policy = policySchema(schemaParts)
  const good: unknown[] = [
    {src: '172.16.0.0/28', dst: '172.17.0.0/28', dir: 'out'},
    {
      src: '10.1.0.0/24',
      dst: '10.2.0.0/24',
      dir: 'in',
      tmplSrc: '192.0.2.1',
      tmplDst: ' 192.0.2.2',
      mode: 'transport',
      reqid: 7,
      priority: 0,
      mark: '0x10/0xff',
      action: 'block',
    },
    {
      src: '2001:db8::/64',
      dst: '2001:DB8:1::/64',
      dir: 'fwd',
      tmplSrc: '2001:db8::1',
      tmplDst: '2001:db8::2',
      reqid: 4294967295,
      priority: 100,
      mark: '5',
      action: 'allow',
    },
  ]
  const bad: unknown[] = [
    {src: '172.16.0.1/28', dst: '172.17.0.0/28', dir: 'out'},
    {src: '172.16.0.0/28', dst: '172.17.0.0/28'},
    {src: '172.16.0.0/28', dst: '172.17.0.0/28', dir: 'sideways'},
    {src: '172.16.0.0/28', dst: '172.17.0.0/28', dir: 'out', mode: 'beet'},
    {src: '172.16.0.0/28', dst: '172.17.0.0/28', dir: 'out', action: 'drop'},
    {src: '172.16.0.0/28', dst: '172.17.0.0/28', dir: 'out', priority: -1},
    {src: '172.16.0.0/28', dst: '172.17.0.0/28', dir: 'out', priority: 1.5},
    {src: '172.16.0.0/28', dst: '172.17.0.0/28', dir: 'out', reqid: 4294967296},
    {src: '172.16.0.0/28', dst: '172.17.0.0/28', dir: 'out', reqid: '7'},
    {src: '172.16.0.0/28', dst: '172.17.0.0/28', dir: 'out', mark: 16},
    {src: '172.16.0.0/28', dst: '172.17.0.0/28', dir: 'out', mark: '0x10/0xff/1'},
    {src: '172.16.0.0/28', dst: '172.17.0.0/28', dir: 'out', tmplSrc: 'gateway'},
    {src: '172.16.0.0/28', dst: '172.17.0.0/28', dir: 'out', tmplSrc: null},
    {src: '172.16.0.0/28', dst: '172.17.0.0/28', dir: 'out', spi: 1},
    JSON.parse('{"src": "172.16.0.0/28", "dst": "172.17.0.0/28", "dir": "out", "__proto__": {"x": 1}}'),
    {src: 172, dst: '172.17.0.0/28', dir: 'out'},
    ['172.16.0.0/28'],
    null,
  ]
  it('each entry: the same value, or undefined and the schema says what is wrong', () => {
    for (const e of good) {
      const slow = Policy.safeParse(e)
      assert.ok(slow.success, JSON.stringify(e))
      assert.deepEqual(policyEntryFast(e), slow.data, JSON.stringify(e))
    }
    for (const e of bad) {
      assert.equal(policyEntryFast(e), undefined, `${JSON.stringify(e)} took the quick check`)
      // Not every odd shape is an error (a null template is one; none passes the quick check): the schema is the judge.
    }
    assert.equal(bad.filter((e) => Policy.safeParse(e).success).length, 0, 'each of them is bad input for the schema too')
  })
})

describe("WireGuard interfaces with peers checked without zod (a fleet's host file) give exactly the schema's result, and leave every error to it", () => {
  const Tunnel = tunnelSchema(schemaParts)
  const key = (i: number) => `${String(i).padStart(2, '0')}${'A'.repeat(41)}=`
  const peer = (i: number, more: Record<string, unknown> = {}) => ({
    publicKey: key(i),
    endpoint: `192.0.2.${i}:51820`,
    allowedIps: [`10.99.0.${i}/32`],
    ...more,
  })
  const wg = (more: Record<string, unknown> = {}, peers: unknown = {n2: peer(2), n3: peer(3)}) => ({
    type: 'wireguard',
    address: '10.99.0.1/24',
    listenPort: 51820,
    peers,
    ...more,
  })
  const good: unknown[] = [
    wg(),
    wg({mtu: 1380, datapath: 'userspace'}, {'hub-1.example': peer(2, {keepalive: 25, pskFile: '/etc/netkit/fleet/secrets/hub.psk'}), n3: peer(3)}),
    wg({}, {}),
    {type: 'wireguard', peers: {n2: {publicKey: key(2), allowedIps: [' 10.99.0.2/32', '10.20.0.0/16', '2001:DB8::/64']}}},
    {peers: {n2: peer(2, {endpoint: '[2001:db8::2]:51820'})}, listenPort: 1, address: '2001:db8:99::1/64', type: 'wireguard', datapath: 'auto'},
    wg({address: '10.99.0.1'}),
  ]
  const odd: unknown[] = [
    // Valid, but not for the quick check: the schema takes them.
    wg({}, null),
    wg({fwmark: 51820}),
    {type: 'wireguard', remote: '192.0.2.2', peerPublicKey: key(2), address: '10.99.0.1/24'},
    {type: 'ipsec', remote: '192.0.2.2', pskFile: '/etc/netkit/psk'},
  ]
  const bad: unknown[] = [
    wg({}, {n2: {publicKey: key(2), endpoint: '192.0.2.2:51820'}}),
    wg({}, {n2: peer(2, {allowedIps: []})}),
    wg({}, {n2: peer(2, {allowedIps: ['10.99.0.2/24']})}),
    wg({}, {n2: peer(2, {allowedIps: '10.99.0.2/32'})}),
    wg({}, {n2: peer(2, {publicKey: ''})}),
    wg({}, {n2: peer(2, {endpoint: ''})}),
    wg({}, {n2: peer(2, {keepalive: 0})}),
    wg({}, {n2: peer(2, {keepalive: 1.5})}),
    wg({}, {n2: peer(2, {presharedKey: 'secret'})}),
    wg({}, {'-n2': peer(2)}),
    wg({}, [peer(2)]),
    wg({listenPort: 0}),
    wg({listenPort: 70000}),
    wg({mtu: 67}),
    wg({datapath: 'fast'}),
    wg({address: '0.0.0.0/0'}),
    wg({address: 10}),
    wg({colour: 'blue'}),
    {...wg(), type: 'wireguards'},
  ]
  it('each tunnel: the same value (its fields in the same order, its peers in a map without a prototype), or undefined', () => {
    let fast = 0
    for (const e of [...good, ...odd, ...bad]) {
      const quick = tunnelEntryFast(e)
      if (quick === undefined) continue
      fast++
      const slow = Tunnel.safeParse(e)
      assert.ok(slow.success, `${JSON.stringify(e)} is bad input, yet passed the quick check`)
      assert.deepEqual(quick, slow.data, JSON.stringify(e))
      assert.equal(JSON.stringify(quick), JSON.stringify(slow.data), 'the same order of fields')
      assert.equal(Object.getPrototypeOf(quick.peers), null)
    }
    assert.equal(fast, good.length, 'every good entry took the quick check')
    for (const e of odd) assert.equal(Tunnel.safeParse(e).success, true, `${JSON.stringify(e)} is valid`)
    for (const e of bad) assert.equal(Tunnel.safeParse(e).success, false, `${JSON.stringify(e)} is bad input`)
  })
})

describe("host files of bulk entries read without zod give exactly the schema's result; the rest is the schema's", () => {
  const routes = Array.from({length: 300}, (_, i) => ({to: `10.${i >> 8}.${i & 255}.0/24`, dev: 'v0'}))
  const policies = [
    {src: '172.16.0.0/28', dst: '172.17.0.0/28', dir: 'out'},
    {src: '10.1.0.0/24', dst: '10.2.0.0/24', dir: 'in', tmplSrc: '192.0.2.1', tmplDst: '192.0.2.2', reqid: 7},
  ]
  const quick: [string, string][] = [
    ['routes and policies', JSON.stringify({version: 1, routes, xfrmPolicies: policies})],
    [
      'routes with every field',
      JSON.stringify({version: 1, routes: [{to: 'default', via: '192.0.2.1', dev: 'v0', table: 'fxvpn', metric: 5, src: '192.0.2.9'}]}),
    ],
    ['nothing but the version', '{"version": 1}'],
    [
      'empty lists and maps',
      JSON.stringify({
        version: 1,
        links: [],
        addresses: [],
        rules: [],
        proxyArp: [],
        xfrmStates: [],
        tables: {},
        namespaces: {},
        sysctls: {},
        tunnels: {},
        routes,
      }),
    ],
    ['YAML', 'version: 1\nroutes:\n  - {to: 10.0.0.0/24, dev: v0}\nxfrmPolicies:\n  - {src: 172.16.0.0/28, dst: 172.17.0.0/28, dir: out}\n'],
    [
      "a fleet's hub (YAML, as netkit fleet render writes it)",
      [
        'version: 1',
        'sysctls:',
        "  ip_forward: '1'",
        'tunnels:',
        '  mesh:',
        '    type: wireguard',
        '    address: 10.99.0.1/24',
        '    listenPort: 51820',
        '    peers:',
        '      n2:',
        '        publicKey: fvpYOMxJ2xrpQzdsjQNmBd5Sq4rIh6uFDES2Kgp5M1w=',
        '        endpoint: 192.0.2.2:51820',
        '        allowedIps:',
        '          - 10.99.0.2/32',
        '          - 10.20.0.0/24',
        '        keepalive: 25',
        '',
      ].join('\n'),
    ],
    ['a sysctl as a number', JSON.stringify({version: 1, sysctls: {ip_forward: 1, 'net.ipv4.conf.all.rp_filter': '2'}})],
  ]
  const read = (text: string, name: string) => hostFileData(text, name, parseYaml)
  it('the quick path, where it answers, equals the schema', () => {
    for (const [what, text] of quick) {
      const name = text.startsWith('{') ? 'h.json' : 'h.yaml'
      const data = read(text, name)
      const fast = quickHostFile(data)
      assert.ok(fast, `${what}: took the quick path`)
      assert.deepEqual(fast, validateHostFile(read(text, name), name), what)
      assert.deepEqual(parseHostFile(text, name), fast, what)
    }
  })
  it('anything else goes to the schema, which accepts it or names what is wrong', () => {
    const schema: [string, unknown, RegExp | undefined][] = [
      ['a link', {version: 1, links: [{name: 'br0', type: 'bridge'}], routes}, undefined],
      ['a table', {version: 1, tables: {fxvpn: 100}, routes}, undefined],
      ['a namespace', {version: 1, namespaces: {c1: {routes}}}, undefined],
      ['mixed families (a check across fields)', {version: 1, routes: [{to: '10.0.0.0/24', via: '2001:db8::1'}]}, /routes\.0: to, via and src/],
      ['a route without via or dev', {version: 1, routes: [{to: '10.0.0.0/24'}]}, /routes\.0: a route needs via or dev/],
      ['a policy of two families', {version: 1, xfrmPolicies: [{src: '10.0.0.0/24', dst: '2001:db8::/64', dir: 'out'}]}, /xfrmPolicies\.0: src and dst/],
      ['version 2', {version: 2, routes}, /version/],
      ['an unknown key', {version: 1, routes, rutes: []}, /rutes|Unrecognized/],
      ['routes not a list', {version: 1, routes: {to: '10.0.0.0/24'}}, /routes/],
      ['a bad route deep in the list', {version: 1, routes: [...routes.slice(0, 200), {to: '10.9.9.1/24', dev: 'v0'}]}, /routes\.200\.to: .*host bits set/],
      ['an IPsec tunnel', {version: 1, tunnels: {b: {type: 'ipsec', remote: '192.0.2.2', pskFile: '/etc/netkit/b.psk'}}}, undefined],
      ['a bad tunnel name', {version: 1, tunnels: {'1mesh': {type: 'wireguard', peers: {}}}}, /tunnels\.1mesh: a tunnel name/],
      [
        'a bad peer',
        {version: 1, tunnels: {mesh: {type: 'wireguard', peers: {n2: {publicKey: 'k', allowedIps: ['10.99.0.2/24']}}}}},
        /tunnels\.mesh\.peers\.n2\.allowedIps\.0: .*host bits set/,
      ],
      ['an unknown sysctl', {version: 1, sysctls: {ip_forwarding: '1'}}, /sysctls\.ip_forwarding/],
      ['a sysctl that is not a value', {version: 1, sysctls: {ip_forward: true}}, /sysctls\.ip_forward/],
    ]
    for (const [what, data, error] of schema) {
      assert.equal(quickHostFile(data), undefined, `${what}: the quick path left it to the schema`)
      if (error)
        assert.throws(
          () => validateHostFile(data, 'h.json'),
          (e: Error & {what?: string}) => error.test(e.what ?? e.message),
          what,
        )
      else assert.doesNotThrow(() => validateHostFile(data, 'h.json'), what)
    }
  })
})

describe('a route matches its live object exactly when differences finds none', () => {
  it('for every mix of given and left out, equal and different attributes', () => {
    const values = {via: [undefined, '192.0.2.1', '192.0.2.2'], dev: [undefined, 'v0', 'v1'], src: [undefined, '192.0.2.9', '198.51.100.9']}
    const specs: {via?: string; dev?: string; src?: string}[] = []
    for (const via of values.via) for (const dev of values.dev) for (const src of values.src) specs.push({via, dev, src})
    let matched = 0
    for (const want of specs)
      for (const have of specs) {
        const d = new RouteObj({dst: '10.0.0.0/24', family: 4, table: 254, ...want})
        const l = new RouteObj({dst: '10.0.0.0/24', family: 4, table: 254, ...have}, false)
        const same = differences(d, l).length === 0
        assert.equal(d.matches(l), same, `${JSON.stringify(want)} against ${JSON.stringify(have)}`)
        if (same) matched++
      }
    assert.ok(matched > specs.length, 'attributes the file leaves out match anything')
  })
})
