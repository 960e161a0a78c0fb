/**
 * A WireGuard interface's peers: the definition (checks), the `wg set` words
 * that change only what changed, apply's plan (one change per peer, the
 * tunnel itself unchanged), and the commands a peer change runs, recorded.
 */
import assert from 'node:assert/strict'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {Runner} from '../../src/lib/runner.js'
import {PeerObj, type TunnelObj} from '../../src/lib/kinds/index.js'
import {compareScope} from '../../src/lib/apply/compare.js'
import {scopeObjects} from '../../src/lib/apply/desired.js'
import {parseHostFile} from '../../src/lib/apply/schema.js'
import {NetkitError, UsageError} from '../../src/lib/errors.js'
import {defineTunnel} from '../../src/lib/tunnel/define.js'
import {setPeers} from '../../src/lib/tunnel/service.js'
import {canonical, loadDef, saveDef} from '../../src/lib/tunnel/store.js'
import type {TunnelDef, WgPeer} from '../../src/lib/tunnel/types.js'
import {type NamedPeer, peerFingerprint, peerSetArgs, peersOf, samePeers, withPeers} from '../../src/lib/tunnel/wireguard/peers.js'
import {Recorder} from '../helpers/recorder.js'

const K = [
  'IvFPWvrQfXD1CJRJ5I+TEVdP7aT9eewTvCeP/Cg04Gk=',
  'hq97es4O1JAzBov3N2k/PtbfqQSJD6yyOhRvxekajl4=',
  'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=',
  '6Js2QZnpFsOHqHf3MqK5+iSXW/L5PwxFOxC438i601Q=',
]
const peer = (i: number, extra: Partial<NamedPeer> = {}): NamedPeer => ({
  name: `h${i + 2}`,
  publicKey: K[i],
  endpoint: `192.0.2.${i + 2}:51820`,
  allowedIps: [`10.99.0.${i + 2}/32`, `10.${i + 2}.0.0/24`],
  ...extra,
})

const usage = async (p: Promise<unknown>, re: RegExp) =>
  assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof UsageError, String(e))
    assert.match(e.what, re)
    return true
  })

describe('WireGuard peers: definition', () => {
  const rec = new Recorder()
  const iface = (peers: Record<string, unknown>, extra = {}) =>
    defineTunnel({name: 'mesh', type: 'wireguard', address: '10.99.0.1/24', peers: peers as never, ...extra}, rec.runner())

  it('an interface without --remote: peers by name; routes for what lies outside its own prefix', async () => {
    const {def} = await iface({
      b: {publicKey: K[1], endpoint: '192.0.2.2:51820', allowedIps: ['10.99.0.2/32', '10.2.0.0/24']},
      a: {publicKey: K[0], allowedIps: ['10.99.0.3/32']},
    })
    assert.equal(def.remote, undefined)
    assert.deepEqual(Object.keys(def.wireguard!.peers!), ['a', 'b'], 'sorted by name')
    assert.deepEqual(def.remoteSubnets, ['10.2.0.0/24'], 'only what the tunnel address does not cover')
    assert.equal(def.wireguard!.ifname, 'wg-mesh')
    // No network is asked anything: peers come and go, and may not be reachable now.
    assert.deepEqual(rec.calls, [])
  })

  it('refuses, naming the peer: a bad key, overlapping allowed-ips, a shared key, one-peer flags', async () => {
    await usage(iface({b: {publicKey: 'nope', allowedIps: ['10.2.0.0/24']}}), /^peer b: --public-key is not a WireGuard key/)
    await usage(iface({b: {publicKey: K[1], allowedIps: ['10.2.0.1/24']}}), /^peer b: --allowed-ips .*host bits/)
    await usage(iface({b: {publicKey: K[1], allowedIps: []}}), /^peer b: --allowed-ips is missing/)
    await usage(
      iface({b: {publicKey: K[1], allowedIps: ['10.2.0.0/24']}, c: {publicKey: K[2], allowedIps: ['10.2.0.128/25']}}),
      /^peer c: allowed-ip 10\.2\.0\.128\/25 overlaps 10\.2\.0\.0\/24 of peer b$/,
    )
    await usage(
      iface({b: {publicKey: K[1], allowedIps: ['10.2.0.0/24']}, c: {publicKey: K[1], allowedIps: ['10.3.0.0/24']}}),
      /^peers b and c have the same public key$/,
    )
    await usage(iface({b: {publicKey: K[1], allowedIps: ['10.1.0.0/16']}}, {localSubnet: ['10.1.2.0/24']}), /overlaps the local subnet 10\.1\.2\.0\/24/)
    await usage(iface({}, {peerPublicKey: K[1]}), /^--peer-public-key is for a tunnel with one peer \(--remote\)/)
    await usage(iface({}, {remoteSubnet: ['10.2.0.0/24']}), /^--remote-subnet is for a tunnel with one peer/)
    await usage(defineTunnel({name: 'x', type: 'ipsec'}, rec.runner()), /^an IPsec tunnel needs --remote/)
  })

  it('the one-peer form is a tunnel with one peer, named after the tunnel (stored definitions read as before)', async () => {
    const r = new Recorder().on('route get', {stdout: '[{"dev":"u0","prefsrc":"192.0.2.1"}]'})
    const {def} = await defineTunnel(
      {name: 'wg1', type: 'wireguard', remote: '192.0.2.2', peerPublicKey: K[1], address: '10.99.0.1/24', remoteSubnet: ['10.2.0.0/24']},
      r.runner(),
    )
    assert.equal(def.wireguard!.peers, undefined)
    assert.deepEqual(peersOf(def), [{name: 'wg1', publicKey: K[1], endpoint: '192.0.2.2:51820', allowedIps: ['10.2.0.0/24', '10.99.0.0/24']}])
  })
})

describe('WireGuard peers: the wg set words', () => {
  it('names only the peers that change: one added, one removed, one changed', () => {
    const a = peer(0)
    const b = peer(1)
    assert.deepEqual(peerSetArgs([a], [a, b]), ['peer', K[1], 'endpoint', '192.0.2.3:51820', 'allowed-ips', '10.99.0.3/32,10.3.0.0/24'])
    assert.deepEqual(peerSetArgs([a, b], [a]), ['peer', K[1], 'remove'])
    assert.deepEqual(peerSetArgs([a, b], [a, {...b, allowedIps: ['10.99.0.3/32']}]), [
      'peer',
      K[1],
      'endpoint',
      '192.0.2.3:51820',
      'allowed-ips',
      '10.99.0.3/32',
    ])
    assert.deepEqual(peerSetArgs([a, b], [a, b]), [], 'nothing changed, nothing named')
  })

  it('a keepalive or PSK that goes is set to none; an endpoint that goes makes the peer again (wg cannot unset it); a PSK goes by its file', () => {
    const a = peer(0, {keepalive: 25, pskFile: '/etc/netkit/fleet/secrets/h2.psk'})
    assert.deepEqual(peerSetArgs([], [a]), [
      'peer',
      K[0],
      'preshared-key',
      '/etc/netkit/fleet/secrets/h2.psk',
      'endpoint',
      '192.0.2.2:51820',
      'allowed-ips',
      '10.99.0.2/32,10.2.0.0/24',
      'persistent-keepalive',
      '25',
    ])
    assert.deepEqual(peerSetArgs([a], [peer(0)]), [
      'peer',
      K[0],
      'preshared-key',
      '/dev/null',
      'endpoint',
      '192.0.2.2:51820',
      'allowed-ips',
      '10.99.0.2/32,10.2.0.0/24',
      'persistent-keepalive',
      '0',
    ])
    const {endpoint: _e, ...noEndpoint} = peer(0)
    assert.deepEqual(peerSetArgs([peer(0)], [noEndpoint]), ['peer', K[0], 'remove', 'peer', K[0], 'allowed-ips', '10.99.0.2/32,10.2.0.0/24'])
  })
})

describe('WireGuard peers: apply', () => {
  const file = (peers: number[], changed?: number) =>
    parseHostFile(
      `version: 1
tunnels:
  mesh:
    type: wireguard
    address: 10.99.0.1/24
    peers:${peers.length ? '' : ' {}'}
${peers
  .map((i) => {
    const p = peer(i)
    return `      ${p.name}: {publicKey: "${p.publicKey}", endpoint: "${p.endpoint}", allowedIps: [${(i === changed ? p.allowedIps.slice(0, 1) : p.allowedIps).join(', ')}]}\n`
  })
  .join('')}`,
      'h.yaml',
    )
  const objects = async (peers: number[], changed?: number) => scopeObjects(file(peers, changed), {}, new Recorder().runner(), undefined, '')
  /** What a host has after an apply of `peers`: the same objects, as read back (owned by apply). */
  const live = async (peers: number[]) =>
    (await objects(peers)).map((o) => (o instanceof PeerObj ? new PeerObj(o.tunnel, o.name, o.peer, o.fingerprint, true, true) : o))
  const applied = (peers: number[]) => Object.fromEntries([['tunnel:mesh', {}], ...peers.map((i) => [`wg-peer:mesh h${i + 2}`, {}])])
  const plan = async (want: number[], have: number[], opts: {changed?: number; applied?: number[]} = {}) =>
    compareScope(
      {runner: new Recorder().runner(), ledger: '@root', desired: await objects(want, opts.changed), fresh: false, applied: applied(opts.applied ?? have)},
      await live(have),
    ).changes.map((c) => [c.action, c.kind, c.desc])

  it('a host file interface is the tunnel (without its peers) and one object per peer', async () => {
    const objs = await objects([0, 1])
    assert.deepEqual(
      objs.map((o) => [o.kind, o.key]),
      [
        ['tunnel', 'mesh'],
        ['wg-peer', 'mesh h2'],
        ['wg-peer', 'mesh h3'],
      ],
    )
    const t = objs[0] as TunnelObj
    assert.ok(!t.fingerprint.includes(K[0]), 'the tunnel compares without its peers')
    assert.equal((await objects([0]))[0].cmp.definition, t.cmp.definition, 'another set of peers is the same tunnel')
  })

  it('one peer more, fewer or changed is one change of that peer, never of the tunnel', async () => {
    assert.deepEqual(await plan([0, 1, 2], [0, 1]), [['add', 'wg-peer', 'peer h4 of WireGuard tunnel mesh']])
    assert.deepEqual(await plan([0, 2], [0, 1, 2]), [['remove', 'wg-peer', 'peer h3 of WireGuard tunnel mesh']])
    assert.deepEqual(await plan([0, 1], [0, 1], {changed: 1}), [['change', 'wg-peer', 'peer h3 of WireGuard tunnel mesh']])
    assert.deepEqual(await plan([0, 1], [0, 1]), [])
  })

  it('a peer apply did not make is left alone when the file does not list it, and is a conflict when the file lists it otherwise', async () => {
    assert.deepEqual(await plan([0], [0, 1], {applied: [0]}), [], 'added by "tunnel peer add": not apply\'s to remove')
    await assert.rejects(plan([0, 1], [0, 1], {changed: 1, applied: [0]}), (e: unknown) => {
      assert.ok(e instanceof NetkitError && e.code === 'E_CONFLICT')
      assert.match(e.what, /^peer h3 of WireGuard tunnel mesh is there and differs from the file/)
      return true
    })
  })
})

describe('WireGuard peers: a change runs one wg set and its routes (recorded)', () => {
  let dir = ''
  const env = ['NETKIT_STATE_DIR', 'NETKIT_IPROUTE2_DIR'] as const
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'netkit-unit-'))
    for (const k of env) process.env[k] = join(dir, k)
  })
  after(() => {
    for (const k of env) delete process.env[k]
    rmSync(dir, {recursive: true, force: true})
  })

  it('adding a peer to a running interface names that peer only, routes its subnet, and stores the definition', async () => {
    const {def: base} = await defineTunnel({name: 'mesh', type: 'wireguard', address: '10.99.0.1/24', datapath: 'userspace'}, new Recorder().runner())
    const old = peersOf({...base, wireguard: {...base.wireguard!, peers: {}}})
    assert.deepEqual(old, [])
    const def: TunnelDef = withPeers(base, {h2: peer(0), h3: peer(1)})
    const config = join(dir, 'config')
    saveDef(new Runner(), config, def)
    const dump = `priv\tpub\t51820\toff\n${K[0]}\t(none)\t192.0.2.2:51820\t10.99.0.2/32,10.2.0.0/24\t1700000000\t10\t20\toff\n${K[1]}\t(none)\t192.0.2.3:51820\t10.99.0.3/32,10.3.0.0/24\t1700000000\t10\t20\toff\n`
    const rec = new Recorder()
      .on('link show dev wg-mesh', {stdout: '[{"ifname":"wg-mesh","mtu":1420,"flags":["UP"],"ifalias":"netkit","linkinfo":{"info_kind":"tun"}}]'})
      .on('wg show wg-mesh dump', {stdout: dump})
      .on('-N -j -batch', {stdout: '[]\n'})
    const next = {...def.wireguard!.peers!, h4: peer(2)}
    const r = await setPeers(def, next, {runner: rec.runner(), configDir: config, progress: 'none'})
    assert.equal(r.changed, true)
    const changes = rec.calls.filter((c) => /^(wg set|ip (?!.*-j ).*-batch)/.test(c.line))
    assert.deepEqual(
      changes.map((c) => c.line),
      ['wg set wg-mesh peer xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg= endpoint 192.0.2.4:51820 allowed-ips 10.99.0.4/32,10.4.0.0/24', 'ip -batch -'],
    )
    assert.equal(changes[1].input, 'route replace 10.4.0.0/24 dev wg-mesh proto 178 table 254\n')
    assert.ok(!rec.calls.some((c) => /wireguard-go|link (add|del)|link set/.test(c.line)), 'the device is not made again')
    // Read once each: the device, its dump, the routes to its new subnet (exactly, not the host's every route);
    // no module lookup (the running device says its data path).
    const reads = rec.calls.filter((c) => !changes.includes(c))
    assert.ok(!reads.some((c) => /modprobe/.test(c.line)), reads.map((c) => c.line).join('\n'))
    assert.deepEqual(
      reads.filter((c) => /link show|wg show|route show|-batch/.test(c.line)).map((c) => [c.line, c.input]),
      [
        ['ip -j -d link show dev wg-mesh', undefined],
        ['wg show wg-mesh dump', undefined],
        ['ip -N -j -batch -', 'route show table all exact 10.4.0.0/24\n'],
      ],
    )
    assert.deepEqual(Object.keys(loadDef(config, 'mesh')!.wireguard!.peers!), ['h2', 'h3', 'h4'])
    assert.deepEqual(loadDef(config, 'mesh')!.remoteSubnets, ['10.2.0.0/24', '10.3.0.0/24', '10.4.0.0/24'])
  })
})

describe('a peer compared as text', () => {
  it('peerFingerprint is canonical() of the peer, field for field (a fast path for a thousand peers)', () => {
    const peers: WgPeer[] = [
      peer(0),
      {publicKey: K[1], allowedIps: ['10.9.0.0/24']},
      {publicKey: K[2], allowedIps: ['10.8.0.0/24', 'fd00::/64'], keepalive: 25, pskFile: '/etc/netkit/x.psk', endpoint: '[2001:db8::1]:51820'},
      {publicKey: K[3], allowedIps: [], endpoint: undefined, keepalive: undefined},
    ].map(({name: _name, ...p}: WgPeer & {name?: string}) => p)
    for (const p of peers) assert.equal(peerFingerprint(p), canonical(p))
    assert.ok(samePeers({a: peers[0], b: peers[1]}, {b: {...peers[1]}, a: {...peers[0]}}))
    assert.ok(!samePeers({a: peers[0]}, {a: {...peers[0], keepalive: 5}}))
    assert.ok(!samePeers({a: peers[0]}, {b: peers[0]}))
  })
})

describe('a peer that routes everything', () => {
  it('does not take over the host\'s default route ("default" is 0.0.0.0/0)', async () => {
    const {def} = await defineTunnel(
      {name: 'mesh', type: 'wireguard', address: '10.99.0.1/24', peers: {hub: {publicKey: K[0], endpoint: '192.0.2.9:51820', allowedIps: ['0.0.0.0/0']}}},
      new Recorder().runner(),
    )
    assert.deepEqual(def.remoteSubnets, ['0.0.0.0/0'])
    // (No answer to the exact read: the check falls back to reading the whole table of each family.)
    const rec = new Recorder()
      .on(/route show table all$/, {stdout: '[{"dst":"default","gateway":"192.0.2.254","dev":"eth0","protocol":"3"}]'})
      .on('-6 route show table all', {stdout: '[]'})
    const {refuseTakeover} = await import('../../src/lib/tunnel/routes.js')
    await assert.rejects(
      refuseTakeover(def, {
        runner: rec.runner(),
        configDir: join(tmpdir(), 'netkit-none'),
        datapath: 'userspace',
        datapathReason: '',
        timeoutMs: 1000,
        wait: false,
      }),
      (e: unknown) => {
        assert.ok(e instanceof NetkitError && e.code === 'E_CONFLICT')
        assert.match(e.what, /^route 0\.0\.0\.0\/0 already goes via 192\.0\.2\.254 dev eth0: tunnel mesh would take it over/)
        return true
      },
    )
  })
  it('reads only the routes to its new subnets, exactly, in one ip -batch (not every route of the host)', async () => {
    const {def} = await defineTunnel(
      {name: 'mesh', type: 'wireguard', address: '10.99.0.1/24', peers: {hub: {publicKey: K[0], endpoint: '192.0.2.9:51820', allowedIps: ['0.0.0.0/0']}}},
      new Recorder().runner(),
    )
    const rec = new Recorder().on('-batch', {stdout: '[{"dst":"default","gateway":"192.0.2.254","dev":"eth0","protocol":"3"}]\n'})
    const {refuseTakeover} = await import('../../src/lib/tunnel/routes.js')
    const ctx = {
      runner: rec.runner(),
      configDir: join(tmpdir(), 'netkit-none'),
      datapath: 'userspace' as const,
      datapathReason: '',
      timeoutMs: 1000,
      wait: false,
    }
    await assert.rejects(refuseTakeover(def, ctx), (e: unknown) => {
      assert.ok(e instanceof NetkitError && e.code === 'E_CONFLICT')
      assert.match(e.what, /^route 0\.0\.0\.0\/0 already goes via 192\.0\.2\.254 dev eth0: tunnel mesh would take it over/)
      return true
    })
    assert.deepEqual(
      rec.calls.map((c) => [c.line, c.input]),
      [['ip -N -j -batch -', 'route show table all exact 0.0.0.0/0\n']],
    )
  })
})
