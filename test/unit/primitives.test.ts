import assert from 'node:assert/strict'
import {mkdtempSync, mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {UsageError} from '../../src/lib/errors.js'
import {linkDiff} from '../../src/lib/iproute2/link.js'
import {addRoute} from '../../src/lib/iproute2/route.js'
import {addRule} from '../../src/lib/iproute2/rule.js'
import {resolveTable} from '../../src/lib/iproute2/tables.js'
import {parsePolicies, parseStates} from '../../src/lib/iproute2/xfrm-parse.js'
import {addState} from '../../src/lib/iproute2/xfrm.js'
import {resolveKey} from '../../src/lib/sysctl.js'
import {Recorder} from '../helpers/recorder.js'

// Recorded here: ip xfrm policy list (iproute2 6.1).
const POLICIES = `src 10.1.0.0/24 dst 10.2.0.0/24 
\tdir out priority 1780 ptype main 
\tmark 0x5/0xff 
\ttmpl src 192.0.2.1 dst 192.0.2.2
\t\tproto esp reqid 7 mode tunnel
src 10.2.0.0/24 dst 10.1.0.0/24 
\tdir in action block priority 0 ptype main 
src 0.0.0.0/0 dst 0.0.0.0/0 
\tsocket in priority 0 ptype main 
`
// The SAD as iproute2 prints it (ip/xfrm_state.c, ip/ipxfrm.c xfrm_algo_print): keys in hex after the name.
const STATES = `src 192.0.2.1 dst 192.0.2.2
\tproto esp spi 0x00001000 reqid 7 mode tunnel
\treplay-window 0 flag af-unspec
\taead rfc4106(gcm(aes)) 0x0123456789abcdef0123456789abcdef01234567 128
\tanti-replay context: seq 0x0, oseq 0x0, bitmap 0x00000000
\tsel src 0.0.0.0/0 dst 0.0.0.0/0 
src 192.0.2.2 dst 192.0.2.1
\tproto esp spi 0xc1a2b3c4 reqid 1 mode tunnel
\treplay-window 32 flag af-unspec
\tmark 0x5/0xff
\tauth-trunc hmac(sha256) 0xfeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface 128
\tenc cbc(aes) 0xdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef
\tencap type espinudp sport 4500 dport 4500 addr 0.0.0.0
`

describe('xfrm text parsing', () => {
  it('parses policies: templates, marks, actions, socket policies', () => {
    const p = parsePolicies(POLICIES)
    assert.equal(p.length, 3)
    assert.deepEqual(p[0], {
      src: '10.1.0.0/24',
      dst: '10.2.0.0/24',
      dir: 'out',
      priority: 1780,
      action: 'allow',
      ptype: 'main',
      mark: '0x5/0xff',
      tmpls: [{src: '192.0.2.1', dst: '192.0.2.2', proto: 'esp', reqid: 7, mode: 'tunnel'}],
    })
    assert.deepEqual([p[1].dir, p[1].action, p[1].tmpls], ['in', 'block', []])
    assert.equal(p[2].dir, 'socket-in')
  })

  it('parses states and never keeps a key', () => {
    const s = parseStates(STATES)
    assert.deepEqual(
      s.map((x) => [x.spi, x.reqid, x.mode, x.mark]),
      [
        ['0x00001000', 7, 'tunnel', undefined],
        ['0xc1a2b3c4', 1, 'tunnel', '0x5/0xff'],
      ],
    )
    assert.deepEqual(s[0].algorithms, ['aead rfc4106(gcm(aes)) 128'])
    assert.deepEqual(s[1].algorithms, ['auth-trunc hmac(sha256) 128', 'enc cbc(aes)'])
    assert.match(s[1].encap!, /espinudp sport 4500/)
    const json = JSON.stringify(s)
    for (const key of ['0123456789abcdef', 'feedface', 'deadbeef']) assert.ok(!json.includes(key), key)
  })
})

describe('SA keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nk-unit-'))
  after(() => rmSync(dir, {recursive: true, force: true}))
  const file = (name: string, text: string, mode = 0o600) => {
    const p = join(dir, name)
    writeFileSync(p, text, {mode})
    return p
  }

  it('travel only inside the ip -batch script on stdin, redacted everywhere else', async () => {
    const rec = new Recorder().on('modprobe', {exitCode: 0})
    const runner = rec.runner({netns: 'x'})
    const key = file('k1', `0x${'ab'.repeat(36)}\n`)
    // Pretend the kernel has ESP.
    rec.on(/modprobe -n -q esp4/, {exitCode: 0})
    await addState(runner, {
      src: '192.0.2.1',
      dst: '192.0.2.2',
      spi: 0x1000,
      mode: 'tunnel',
      reqid: 7,
      aead: {alg: 'rfc4106(gcm(aes))', keyFile: key, icv: 128},
    })
    const batch = rec.calls.find((c) => c.line.includes('-batch'))!
    assert.ok(!batch.line.includes('abab'), 'not on the argv')
    assert.match(
      batch.input!,
      /xfrm state add src 192\.0\.2\.1 dst 192\.0\.2\.2 proto esp spi 0x1000 mode tunnel reqid 7 aead rfc4106\(gcm\(aes\)\) 0x(ab){36} 128/,
    )
    assert.ok(rec.echoed.every((l) => !l.includes('abab')))
    assert.ok(rec.echoed.some((l) => l.includes('<redacted>')))
  })

  it('refuse world-readable, empty, short and missing files as bad input', async () => {
    const runner = new Recorder().runner()
    const base = {src: '192.0.2.1', dst: '192.0.2.2', spi: 0x1000, mode: 'tunnel' as const}
    for (const [path, re] of [
      [file('open', `0x${'ab'.repeat(36)}\n`, 0o644), /can be read by others/],
      [file('empty', ''), /is empty/],
      [file('short', '0xabcd\n'), /16-bit key/],
      [join(dir, 'missing'), /does not exist/],
      [file('nothex', 'not a key\n'), /not a hex key/],
    ] as const) {
      await assert.rejects(
        addState(runner, {...base, aead: {alg: 'rfc4106(gcm(aes))', keyFile: path, icv: 128}}),
        (e: Error) => e instanceof UsageError && re.test(e.message),
      )
    }
  })
})

describe('sysctl names', () => {
  it('resolves short names, per-interface forms, dotted names and slash paths', () => {
    assert.equal(resolveKey('ip_forward').path, 'net/ipv4/ip_forward')
    assert.equal(resolveKey('rp_filter').path, 'net/ipv4/conf/all/rp_filter')
    assert.equal(resolveKey('rp_filter.eth0').path, 'net/ipv4/conf/eth0/rp_filter')
    assert.equal(resolveKey('send_redirects.default').path, 'net/ipv4/conf/default/send_redirects')
    assert.equal(resolveKey('net.ipv4.conf.all.accept_redirects').path, 'net/ipv4/conf/all/accept_redirects')
    assert.equal(resolveKey('net/ipv4/conf/eth0.100/rp_filter').path, 'net/ipv4/conf/eth0.100/rp_filter')
    for (const bad of ['kernel.panic', 'nope', 'ip_forward.eth0', 'rp_filter.a/b', 'net/../../etc']) assert.throws(() => resolveKey(bad), UsageError, bad)
  })
})

describe('tables, routes and rules', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'nk-ip2-'))
  after(() => {
    rmSync(scratch, {recursive: true, force: true})
    delete process.env.NETKIT_IPROUTE2_DIR
  })
  it("resolves table names from netkit's file and the built-ins", () => {
    const dir = join(scratch, 'tables')
    mkdirSync(join(dir, 'rt_tables.d'), {recursive: true})
    writeFileSync(join(dir, 'rt_tables.d', 'netkit.conf'), '# netkit\n142\tvpn\n')
    process.env.NETKIT_IPROUTE2_DIR = dir
    try {
      assert.equal(resolveTable('vpn'), 142)
      assert.equal(resolveTable('main'), 254)
      assert.equal(resolveTable('100'), 100)
      assert.throws(() => resolveTable('nope'), /table nope is not known/)
    } finally {
      process.env.NETKIT_IPROUTE2_DIR = join(scratch, 'other')
    }
  })

  it("adds a route with netkit's protocol in one batch, and is a no-op when it is there", async () => {
    const rec = new Recorder().on('link show dev eth0', {stdout: '[{"ifindex":2,"ifname":"eth0"}]'})
    process.env.NETKIT_IPROUTE2_DIR = join(scratch, 'routes')
    const spec = {dst: '10.2.0.0/24', family: 4 as const, via: '10.1.0.254', dev: 'eth0', table: 100}
    assert.equal(await addRoute(rec.runner(), spec), true)
    assert.match(rec.calls.find((c) => c.line.includes('-batch'))!.input!, /^route add 10\.2\.0\.0\/24 via 10\.1\.0\.254 dev eth0 proto 178 table 100\n$/)
    const rec2 = new Recorder()
      .on('link show dev eth0', {stdout: '[{"ifindex":2,"ifname":"eth0"}]'})
      .on('-4 route show table 100', {stdout: '[{"dst":"10.2.0.0/24","gateway":"10.1.0.254","dev":"eth0","protocol":"178","flags":[]}]'})
    assert.equal(await addRoute(rec2.runner(), spec), false)
    assert.ok(!rec2.calls.some((c) => c.line.includes('-batch')))
  })

  it('adds a rule with protocol and priority, and sees it again in ip -j rule', async () => {
    const rec = new Recorder()
    const spec = {family: 4 as const, from: '10.1.0.0/24', fwmark: {value: 0x10, mask: 0xff}, table: 100, priority: 1000}
    assert.equal(await addRule(rec.runner(), spec), true)
    assert.match(
      rec.calls.find((c) => c.line.includes('-batch'))!.input!,
      /^rule add from 10\.1\.0\.0\/24 fwmark 0x10\/0xff table 100 priority 1000 protocol 178\n$/,
    )
    const rec2 = new Recorder().on('-4 rule show', {
      stdout: '[{"priority":1000,"src":"10.1.0.0","srclen":24,"fwmark":"0x10","fwmask":"0xff","table":"100","protocol":"178"}]',
    })
    assert.equal(await addRule(rec2.runner(), spec), false)
  })

  it('compares a live link with what was asked', () => {
    const vx = {ifindex: 5, ifname: 'vx1', link: 'eth0', mtu: 1450, linkinfo: {info_kind: 'vxlan', info_data: {id: 42, remote: '192.0.2.2', port: 4789}}}
    assert.deepEqual(linkDiff(vx, {name: 'vx1', kind: 'vxlan', vni: 42, remote: '192.0.2.2', dev: 'eth0'}), [])
    assert.deepEqual(linkDiff(vx, {name: 'vx1', kind: 'vxlan', vni: 43, remote: '192.0.2.2', dev: 'eth0'}), ['VNI 42, not 43'])
    assert.deepEqual(linkDiff(vx, {name: 'vx1', kind: 'bridge'}), ['it is a vxlan, not a bridge'])
  })
})
