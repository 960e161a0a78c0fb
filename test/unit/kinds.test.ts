/**
 * Each kind module (src/lib/kinds) reads a host file's entry and the kernel's
 * output of the same object alike: on the recorded host of the planner test
 * (fixtures/apply-host.ts), the desired object of each entry finds its live
 * object by identity, and they do not differ. Its lines mark what it makes
 * as netkit's.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {parseHostFile} from '../../src/lib/apply/schema.js'
import {routeEntryFast, routeSchema} from '../../src/lib/kinds/route.js'
import {schemaParts} from '../../src/lib/kinds/schema-parts.js'
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
