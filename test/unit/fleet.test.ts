import assert from 'node:assert/strict'
import {existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {load} from 'js-yaml'

import {parseHostFile} from '../../src/lib/apply/schema.js'
import {NetkitError, UsageError} from '../../src/lib/errors.js'
import {parseInventory} from '../../src/lib/fleet/inventory.js'
import {assignOverlay} from '../../src/lib/fleet/overlay.js'
import {renderFleet, type RenderResult} from '../../src/lib/fleet/render.js'

const root = mkdtempSync(join(tmpdir(), 'netkit-fleet-'))
let n = 0
const fresh = () => join(root, `out${++n}`)

/** An inventory's text: `hosts` as "name: {...}" entries. */
const inventory = (head: string, hosts: string[]) => `version: 1\n${head}\nhosts:\n${hosts.map((h) => `  ${h}`).join('\n')}\n`
const ipsecInv = (hosts: string[], extra = '') => inventory(`type: ipsec\npool: 10.99.0.0/24${extra}`, hosts)
const host = (name: string, i: number, more = '') => `${name}: {address: 192.0.2.${i}${more}}`

/** WireGuard public keys (made-up, well-formed). */
const key = (i: number) => `${Buffer.alloc(32, i).toString('base64')}`

function render(text: string, out: string, opts: {pubkeys?: string; dryRun?: boolean} = {}): RenderResult {
  return renderFleet({
    inventory: {text, source: 'fleet.yaml'},
    ...(opts.pubkeys === undefined ? {} : {pubkeys: {text: opts.pubkeys, source: 'pubkeys.yaml'}}),
    outDir: out,
    dryRun: opts.dryRun,
  })
}

/** The one error line of a bad inventory (a UsageError: exit 2). */
function refused(fn: () => unknown): string {
  try {
    fn()
  } catch (error) {
    assert.ok(error instanceof UsageError, String(error))
    assert.equal(error.exit, 2)
    assert.doesNotMatch(error.line, /\n/)
    return error.what
  }
  return assert.fail('expected a UsageError')
}

/** Every file under a folder with its bytes, mode and mtime. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const e of readdirSync(dir, {recursive: true, withFileTypes: true})) {
    const p = join(e.parentPath, e.name)
    const st = statSync(p)
    out[p.slice(dir.length)] = e.isFile() ? `${(st.mode & 0o777).toString(8)} ${st.mtimeMs} ${readFileSync(p, 'utf8')}` : `dir ${(st.mode & 0o777).toString(8)}`
  }
  return out
}

const hostFile = (out: string, name: string) => load(readFileSync(join(out, name, 'host.yaml'), 'utf8')) as any

describe('fleet inventory', () => {
  after(() => rmSync(root, {recursive: true, force: true}))

  it('refuses a bad inventory with one line naming the host and the field', () => {
    const cases: [string, RegExp][] = [
      [ipsecInv([host('a', 1), host('b', 2), 'a: {address: 192.0.2.3}']), /^fleet\.yaml: hosts\.a: listed twice \(line 7\)$/],
      [ipsecInv([host('a', 1), host('b', 1)]), /^fleet\.yaml: hosts\.b\.address: 192\.0\.2\.1 is also host a's address$/],
      [
        ipsecInv([host('a', 1, ', overlay: 10.99.0.5'), host('b', 2, ', overlay: 10.99.0.5')]),
        /^fleet\.yaml: hosts\.b\.overlay: 10\.99\.0\.5 is also host a's overlay address$/,
      ],
      [ipsecInv([host('a', 1, ', overlay: 10.98.0.5')]), /^fleet\.yaml: hosts\.a\.overlay: 10\.98\.0\.5 is not a host address of the pool 10\.99\.0\.0\/24$/],
      [
        ipsecInv([host('a', 1, ', subnets: [10.1.0.0/24]'), host('b', 2, ', subnets: [10.2.0.0/24, 10.1.0.128/25]')]),
        /^fleet\.yaml: hosts\.b\.subnets\.1: 10\.1\.0\.128\/25 overlaps host a's subnet 10\.1\.0\.0\/24$/,
      ],
      [ipsecInv([host('a', 1, ', subnets: [10.99.0.0/16]')]), /^fleet\.yaml: hosts\.a\.subnets\.0: 10\.99\.0\.0\/16 overlaps the pool 10\.99\.0\.0\/24$/],
      [ipsecInv([host('a', 1, ', subnets: [10.1.0.1/24]')]), /^fleet\.yaml: hosts\.a\.subnets\.0: subnet "10\.1\.0\.1\/24" has host bits set$/],
      [ipsecInv([host('a', 1), 'b: {address: 10.99.0.7}']), /^fleet\.yaml: hosts\.b\.address: 10\.99\.0\.7 is inside the pool 10\.99\.0\.0\/24/],
      [ipsecInv([host('a', 1), 'b: {address: nowhere}']), /^fleet\.yaml: hosts\.b\.address: the underlay address "nowhere" is not an IP address$/],
      [ipsecInv([host('a', 1), 'b: {address: 192.0.2.2, port: 1}']), /^fleet\.yaml: hosts\.b: Unrecognized key: "port"$/],
      [ipsecInv([host('web.1', 1)]), /^fleet\.yaml: hosts\.web\.1: "web\.1" is not a usable host name: an IPsec fleet's host names are its tunnel names/],
      [ipsecInv([host('averyveryverylongname', 1)]), /^fleet\.yaml: hosts\.averyveryverylongname: .* is not a usable host name/],
      [ipsecInv([host('a', 1), host('b', 2)], '\ntopology: hub-and-spoke\nhubs: [a, z]'), /^fleet\.yaml: hubs\.1: z is not a host of the inventory$/],
      [ipsecInv([host('a', 1), host('b', 2)], '\ntopology: hub-and-spoke'), /^fleet\.yaml: hubs: hub-and-spoke needs hubs/],
      [ipsecInv([host('a', 1), host('b', 2)], '\nhubs: [a]'), /^fleet\.yaml: hubs: hubs are for topology: hub-and-spoke/],
      [ipsecInv([host('a', 1), 'b: {address: "2001:db8::2"}']), /^fleet\.yaml: hosts\.b\.address: 2001:db8::2 is IPv6 and host a's is IPv4/],
      [
        inventory('type: ipsec\npool: 10.99.0.0/30', [host('a', 1), host('b', 2), host('c', 3)]),
        /^fleet\.yaml: pool: 10\.99\.0\.0\/30 has no address left for host c \(2 addresses for 3 hosts\)$/,
      ],
      [inventory('type: gre\npool: 10.99.0.0/24', [host('a', 1)]), /^fleet\.yaml: type: /],
      ['version: 2\n', /^fleet\.yaml: version: netkit reads version 1 inventories$/],
    ]
    for (const [text, re] of cases)
      assert.match(
        refused(() => render(text, fresh())),
        re,
      )
    // Nothing was written for any of them.
    assert.deepEqual(readdirSync(root), [])
  })

  it('WireGuard: a host missing from pubkeys.yaml is an error naming it, never a smaller mesh', () => {
    const text = inventory('type: wireguard\npool: 10.99.0.0/24', [host('a', 1), host('b', 2), host('c', 3)])
    const out = fresh()
    assert.match(
      refused(() => render(text, out, {pubkeys: `a: "${key(1)}"\nb: "${key(2)}"\n`})),
      /^pubkeys\.yaml: host c has no public key$/,
    )
    assert.match(
      refused(() => render(text, out)),
      /needs --pubkeys/,
    )
    assert.match(
      refused(() => render(text, out, {pubkeys: `a: "${key(1)}"\nb: "${key(2)}"\nc: "${key(1)}"\n`})),
      /^pubkeys\.yaml: c: the same public key as host a$/,
    )
    assert.match(
      refused(() => render(text, out, {pubkeys: `a: "${key(1)}"\nb: "${key(2)}"\nc: nope\n`})),
      /^pubkeys\.yaml: c: not a WireGuard public key$/,
    )
    assert.equal(existsSync(out), false)
  })

  it('overlay addresses: stable when hosts are added (anywhere in the inventory) or removed; a new host takes the lowest free one', () => {
    const hosts = Array.from({length: 10}, (_, i) => host(`h${i + 1}`, i + 1))
    const out = fresh()
    const first = render(ipsecInv(hosts), out)
    const before = Object.fromEntries(first.hosts.map((x) => [x.name, x.overlay]))
    assert.equal(before.h1, '10.99.0.1')
    assert.equal(before.h10, '10.99.0.10')
    // Host 11, listed first: hosts 1 to 10 keep theirs.
    const added = render(ipsecInv([host('h11', 11), ...hosts]), out)
    const after1 = Object.fromEntries(added.hosts.map((x) => [x.name, x.overlay]))
    for (const [name, ip] of Object.entries(before)) assert.equal(after1[name], ip, name)
    assert.equal(after1.h11, '10.99.0.11')
    assert.deepEqual(added.assigned, ['h11'])
    // Host 5 leaves: nobody moves.
    const removed = render(ipsecInv([host('h11', 11), ...hosts.filter((h) => !h.startsWith('h5:'))]), out)
    for (const x of removed.hosts) assert.equal(x.overlay, after1[x.name], x.name)
    // Host 12 joins: the lowest free address (the one host 5 had).
    const joined = render(ipsecInv([host('h11', 11), ...hosts.filter((h) => !h.startsWith('h5:')), host('h12', 12)]), out)
    assert.equal(joined.hosts.find((x) => x.name === 'h12')?.overlay, '10.99.0.5')
    // A host given its own address keeps it; the pool skips it.
    const inv = parseInventory(ipsecInv([host('a', 1), host('b', 2, ', overlay: 10.99.0.1')]), 'f')
    assert.deepEqual(
      [...assignOverlay(inv, new Map()).addresses],
      [
        ['a', '10.99.0.2'],
        ['b', '10.99.0.1'],
      ],
    )
  })

  it('re-rendering an unchanged inventory leaves every file byte-identical (and untouched)', () => {
    const text = ipsecInv([host('a', 1, ', subnets: [10.1.0.0/24]'), host('b', 2), host('c', 3)])
    const out = fresh()
    const first = render(text, out)
    assert.equal(first.changed, true)
    const snap = snapshot(out)
    const again = render(text, out)
    assert.equal(again.changed, false)
    assert.ok(again.files.every((f) => f.action === 'unchanged'))
    assert.deepEqual(snapshot(out), snap)
    // The same hosts in another order: the same files.
    assert.equal(render(ipsecInv([host('c', 3), host('b', 2), host('a', 1, ', subnets: [10.1.0.0/24]')]), out).changed, false)
  })

  it("IPsec: one key per pair, the same on both ends, 0600 in a 0700 folder, kept across renders; a removed host takes its bundle and its peers' references with it", () => {
    const out = fresh()
    const r = render(ipsecInv([host('a', 1), host('b', 2), host('c', 3)]), out)
    const psk = (h: string, p: string) => readFileSync(join(out, h, 'secrets', `${p}.psk`), 'utf8')
    assert.match(psk('a', 'b'), /^0s[A-Za-z0-9+/]{43}=\n$/)
    assert.equal(psk('a', 'b'), psk('b', 'a'))
    assert.equal(psk('a', 'c'), psk('c', 'a'))
    assert.notEqual(psk('a', 'b'), psk('a', 'c'))
    assert.equal(statSync(join(out, 'a/secrets/b.psk')).mode & 0o777, 0o600)
    assert.equal(statSync(join(out, 'a/secrets')).mode & 0o777, 0o700)
    assert.equal(r.files.filter((f) => f.secret).length, 6)
    assert.ok(!JSON.stringify(r).includes(psk('a', 'b').trim()), 'no key in the result')
    // Each host file is a valid host file, naming its keys where the bundle goes on the host.
    const a = parseHostFile(readFileSync(join(out, 'a/host.yaml'), 'utf8'), 'a/host.yaml')
    assert.deepEqual(Object.keys(a.tunnels), ['b', 'c'])
    assert.equal(a.tunnels.b.pskFile, '/etc/netkit/fleet/secrets/b.psk')
    assert.deepEqual(
      a.tunnels.b.localSubnets.map((x) => x.cidr),
      ['10.99.0.1/32'],
    )
    assert.deepEqual(
      a.tunnels.b.remoteSubnets.map((x) => x.cidr),
      ['10.99.0.2/32'],
    )
    assert.deepEqual(
      a.addresses.map((x) => [x.dev, x.address.cidr]),
      [['lo', '10.99.0.1/32']],
    )

    const ab = psk('a', 'b')
    const gone = render(ipsecInv([host('a', 1), host('b', 2)]), out)
    assert.equal(psk('a', 'b'), ab, 'kept')
    assert.equal(existsSync(join(out, 'c')), false, "c's bundle is removed")
    assert.equal(existsSync(join(out, 'a/secrets/c.psk')), false)
    assert.doesNotMatch(readFileSync(join(out, 'a/host.yaml'), 'utf8'), /\bc:|192\.0\.2\.3/)
    assert.deepEqual(
      gone.files
        .filter((f) => f.action === 'remove')
        .map((f) => f.path.slice(out.length))
        .sort(),
      ['/a/secrets/c.psk', '/b/secrets/c.psk', '/c'],
    )
    // One end's copy lost: the other end's is used again.
    rmSync(join(out, 'b'), {recursive: true})
    render(ipsecInv([host('a', 1), host('b', 2)]), out)
    assert.equal(psk('b', 'a'), ab)
    // Two different keys for one pair: which one is in use cannot be known.
    writeFileSync(join(out, 'b/secrets/a.psk'), '0sAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n', {mode: 0o600})
    assert.throws(
      () => render(ipsecInv([host('a', 1), host('b', 2)]), out),
      (e: NetkitError) => e.code === 'E_CONFLICT' && e.exit === 1 && /the keys of the pair a-b differ/.test(e.what),
    )
  })

  it('--dry-run writes nothing and shows no key', () => {
    const out = fresh()
    const r = render(ipsecInv([host('a', 1), host('b', 2)]), out, {dryRun: true})
    assert.equal(existsSync(out), false)
    assert.equal(r.dryRun, true)
    assert.deepEqual(
      r.files.map((f) => [f.path.slice(out.length), f.action]),
      [
        ['/overlay.yaml', 'create'],
        ['/a/host.yaml', 'create'],
        ['/b/host.yaml', 'create'],
        ['/a/secrets/b.psk', 'create'],
        ['/b/secrets/a.psk', 'create'],
      ],
    )
  })

  it("WireGuard full mesh: one interface per host with a peer per other host (the contract's shape); no private key anywhere", () => {
    const out = fresh()
    const text = inventory('type: wireguard\npool: 10.99.0.0/24\nkeepalive: 25', [host('a', 1, ', subnets: [10.1.0.0/24]'), host('b', 2), host('c', 3)])
    render(text, out, {pubkeys: `a: "${key(1)}"\nb: "${key(2)}"\nc: "${key(3)}"\nold: "${key(9)}"\n`})
    assert.deepEqual(hostFile(out, 'b'), {
      version: 1,
      tunnels: {
        mesh: {
          type: 'wireguard',
          address: '10.99.0.2/24',
          listenPort: 51820,
          peers: {
            a: {publicKey: key(1), endpoint: '192.0.2.1:51820', allowedIps: ['10.99.0.1/32', '10.1.0.0/24'], keepalive: 25},
            c: {publicKey: key(3), endpoint: '192.0.2.3:51820', allowedIps: ['10.99.0.3/32'], keepalive: 25},
          },
        },
      },
    })
    assert.deepEqual(readdirSync(join(out, 'b')), ['host.yaml'], 'no key files for WireGuard: private keys stay on their hosts')
  })

  it('hub-and-spoke: spokes peer with the hubs only, and reach each other through the first hub, which forwards', () => {
    const out = fresh()
    const text = inventory('type: wireguard\ntopology: hub-and-spoke\nhubs: [h1, h2]\npool: 10.99.0.0/24', [
      host('h1', 1),
      host('h2', 2),
      host('s1', 3, ', subnets: [10.3.0.0/24]'),
      host('s2', 4),
    ])
    render(text, out, {pubkeys: ['h1', 'h2', 's1', 's2'].map((h, i) => `${h}: "${key(i + 1)}"`).join('\n')})
    const peers = (h: string) => hostFile(out, h).tunnels.mesh.peers
    assert.deepEqual(Object.keys(peers('s1')), ['h1', 'h2'])
    assert.deepEqual(peers('s1').h1.allowedIps, ['10.99.0.1/32', '10.99.0.4/32'])
    assert.deepEqual(peers('s1').h2.allowedIps, ['10.99.0.2/32'])
    assert.deepEqual(peers('s2').h1.allowedIps, ['10.99.0.1/32', '10.99.0.3/32', '10.3.0.0/24'])
    assert.deepEqual(Object.keys(peers('h1')), ['h2', 's1', 's2'])
    assert.deepEqual(peers('h2').s1.allowedIps, ['10.99.0.3/32', '10.3.0.0/24'])
    assert.deepEqual(hostFile(out, 'h1').sysctls, {ip_forward: '1'})
    assert.equal(hostFile(out, 's1').sysctls, undefined)

    // IPsec: each end's traffic selectors are the other end's, mirrored.
    const out2 = fresh()
    render(
      ipsecInv([host('h1', 1), host('h2', 2), host('s1', 3, ', subnets: [10.3.0.0/24]'), host('s2', 4)], '\ntopology: hub-and-spoke\nhubs: [h1, h2]'),
      out2,
    )
    for (const a of ['h1', 'h2', 's1', 's2']) {
      for (const [p, t] of Object.entries(hostFile(out2, a).tunnels) as [string, any][]) {
        const back = hostFile(out2, p).tunnels[a]
        assert.deepEqual([t.localSubnets, t.remoteSubnets], [back.remoteSubnets, back.localSubnets], `${a} <-> ${p}`)
      }
    }
    assert.deepEqual(hostFile(out2, 's1').tunnels.h1.remoteSubnets, ['10.99.0.1/32', '10.99.0.4/32'])
  })
})
