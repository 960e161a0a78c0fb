/**
 * The VICI client: the wire format against byte fixtures (strongSwan's own
 * documented example, and packets swanctl 5.9.8 sent on this machine), and the
 * session against a fake charon on a unix socket.
 */
import assert from 'node:assert/strict'
import {mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {createServer, type Server} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {parseSettings, readSettings, section, setting} from '../../src/lib/tunnel/ipsec/settings.js'
import {Runner} from '../../src/lib/runner.js'
import {connMessage, secretData, secretOf, syncConnections, type SystemCharon, viciSocketOf} from '../../src/lib/tunnel/ipsec/system.js'
import {parseListSas} from '../../src/lib/tunnel/ipsec/vici.js'
import {
  getConns,
  getShared,
  initiate,
  listSas,
  loadConn,
  loadShared,
  unloadConn,
  ViciError,
  ViciSession,
  withVici,
} from '../../src/lib/tunnel/ipsec/vici-client.js'
import {
  decodeMessage,
  decodePacket,
  encodeMessage,
  encodePacket,
  PACKET,
  type Packet,
  PacketReader,
  type ViciInput,
} from '../../src/lib/tunnel/ipsec/vici-wire.js'
import {fakeCharon} from '../helpers/fake-charon.js'
import {SWANCTL_GET_CONNS, SWANCTL_LOAD_CONN, SWANCTL_LOAD_SHARED, SWANCTL_PSK} from './fixtures/vici.js'

const bytes = (...parts: (number | string)[]) => Buffer.concat(parts.map((p) => (typeof p === 'number' ? Buffer.from([p]) : Buffer.from(p, 'latin1'))))

// strongSwan's README ("Encoding example"): key1 = value1, section1 { sub-section { key2 = value2 }, list1 = [item1, item2] }
const README_EXAMPLE = bytes(
  3,
  4,
  'key1',
  0,
  6,
  'value1',
  1,
  8,
  'section1',
  1,
  11,
  'sub-section',
  3,
  4,
  'key2',
  0,
  6,
  'value2',
  2,
  4,
  5,
  'list1',
  5,
  0,
  5,
  'item1',
  5,
  0,
  5,
  'item2',
  6,
  2,
)
const README_TREE = {key1: 'value1', section1: {'sub-section': {key2: 'value2'}, list1: ['item1', 'item2']}}

describe('VICI wire format', () => {
  it('encodes the documented example byte for byte', () => {
    assert.deepEqual(encodeMessage(README_TREE), README_EXAMPLE)
  })

  it('decodes the documented example', () => {
    assert.deepEqual(decodeMessage(README_EXAMPLE), README_TREE)
  })

  it('encodes numbers and booleans as charon wants them (strings, yes/no), leaves undefined out, keeps bytes as they are', () => {
    const msg = decodeMessage(encodeMessage({timeout: 5000, force: true, child: undefined, data: Buffer.from([0xde, 0xad]) as unknown as string, empty: []}))
    assert.deepEqual(Object.keys(msg), ['timeout', 'force', 'data', 'empty'])
    assert.equal(msg.timeout, '5000')
    assert.equal(msg.force, 'yes')
    assert.deepEqual(msg.empty, [])
    assert.deepEqual(encodeMessage({data: Buffer.from([0xde, 0xad])}), bytes(3, 4, 'data', 0, 2, 0xde, 0xad))
  })

  it('refuses what charon could not read: names over 255 bytes, values over 64 KiB', () => {
    assert.throws(() => encodeMessage({['k'.repeat(256)]: 'v'}), /name too long/)
    assert.throws(() => encodeMessage({k: 'v'.repeat(65_536)}), /value too long/)
  })

  it('refuses malformed messages instead of guessing', () => {
    assert.throws(() => decodeMessage(bytes(3, 4, 'key1', 0, 9, 'short')), /truncated/)
    assert.throws(() => decodeMessage(bytes(1, 1, 's')), /ends inside/)
    assert.throws(() => decodeMessage(bytes(2)), /without a start/)
    assert.throws(() => decodeMessage(bytes(5, 0, 1, 'x')), /outside a list/)
    assert.throws(() => decodeMessage(bytes(4, 1, 'l', 3, 1, 'k', 0, 1, 'v', 6)), /inside a list/)
    assert.throws(() => decodeMessage(bytes(9)), /unknown VICI element/)
  })

  it('frames packets: named requests, unnamed responses, split and joined segments', () => {
    assert.deepEqual(encodePacket(PACKET.CMD_REQUEST, 'get-conns'), SWANCTL_GET_CONNS)
    assert.deepEqual(decodePacket(SWANCTL_GET_CONNS.subarray(4)), {type: PACKET.CMD_REQUEST, name: 'get-conns'})
    const reply = encodePacket(PACKET.CMD_RESPONSE, undefined, {success: 'yes'})
    assert.deepEqual(reply, bytes(0, 0, 0, 15, 1, 3, 7, 'success', 0, 3, 'yes'))
    const both = Buffer.concat([encodePacket(PACKET.EVENT, 'log', {msg: 'hello'}), reply])
    const reader = new PacketReader()
    const got: Packet[] = []
    for (let i = 0; i < both.length; i += 5) got.push(...reader.push(both.subarray(i, i + 5)))
    assert.deepEqual(got, [
      {type: PACKET.EVENT, name: 'log', message: {msg: 'hello'}},
      {type: PACKET.CMD_RESPONSE, message: {success: 'yes'}},
    ])
    assert.deepEqual(new PacketReader().push(encodePacket(PACKET.EVENT_CONFIRM)), [{type: PACKET.EVENT_CONFIRM}])
  })

  it('sends a connection and its secret exactly as swanctl does, from the same file', () => {
    const tree = parseSettings(SWANCTL_PSK)
    const ike = 'netkit-192_0_2_1-192_0_2_2'
    assert.deepEqual(encodePacket(PACKET.CMD_REQUEST, 'load-conn', {[ike]: connMessage(section(tree, `connections.${ike}`)!)}), SWANCTL_LOAD_CONN)
    const secret = secretOf(`ike-${ike}`, section(tree, `secrets.ike-${ike}`)!)!
    assert.deepEqual(secret.owners, ['192.0.2.1', '192.0.2.2'])
    assert.deepEqual(
      encodePacket(PACKET.CMD_REQUEST, 'load-shared', {id: secret.id, type: secret.type, data: secret.data, owners: secret.owners}),
      SWANCTL_LOAD_SHARED,
    )
    // and what swanctl sent reads back as the file says
    const conn = decodePacket(SWANCTL_LOAD_CONN.subarray(4)).message![ike] as Record<string, any>
    assert.deepEqual(conn.proposals, ['aes256gcm16-prfsha384-x25519', 'aes256-sha256-modp2048'])
    assert.deepEqual(conn.children['netkit-site'].local_ts, ['10.1.0.0/24', '10.3.0.0/24'])
    assert.equal(conn.local.id, '192.0.2.1')
  })

  it("reads secrets in swanctl's three forms", () => {
    assert.equal(secretData('0sc2VjcmV0').toString(), 'secret')
    assert.equal(secretData('0x736563726574').toString(), 'secret')
    assert.equal(secretData('plain words').toString(), 'plain words')
  })

  it('reads certificate files into the message, relative ones from the swanctl directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'netkit-vici-'))
    try {
      mkdirSync(join(dir, 'x509ca'))
      writeFileSync(join(dir, 'x509ca', 'ca.pem'), 'CA PEM')
      writeFileSync(join(dir, 'me.pem'), 'MY PEM')
      const msg = connMessage({local: {certs: join(dir, 'me.pem')}, remote: {cacerts: 'ca.pem'}}, dir) as Record<string, any>
      assert.deepEqual(msg.local.certs, [Buffer.from('MY PEM')])
      assert.deepEqual(msg.remote.cacerts, [Buffer.from('CA PEM')])
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})

describe('strongSwan settings', () => {
  it('merges repeated sections, follows includes relative to the file, and finds the VICI socket', () => {
    const dir = mkdtempSync(join(tmpdir(), 'netkit-settings-'))
    try {
      mkdirSync(join(dir, 'strongswan.d', 'charon'), {recursive: true})
      writeFileSync(
        join(dir, 'strongswan.conf'),
        'charon {\n  load_modular = yes # comment\n  plugins {\n    include strongswan.d/charon/*.conf\n  }\n}\ninclude strongswan.d/*.conf\n',
      )
      writeFileSync(
        join(dir, 'strongswan.d', 'charon', 'vici.conf'),
        'vici {\n  load = yes\n  # socket = unix:///ignored\n  socket = "unix:///run/strongswan/charon.vici"\n}\n',
      )
      writeFileSync(join(dir, 'strongswan.d', 'charon', 'kernel-libipsec.conf'), 'kernel-libipsec { load = no }\n')
      writeFileSync(join(dir, 'strongswan.d', 'charon-systemd.conf'), 'charon-systemd {\n  journal {\n  }\n}\n')
      const tree = readSettings(join(dir, 'strongswan.conf'))
      assert.equal(setting(tree, 'charon.load_modular'), 'yes')
      assert.equal(setting(tree, 'charon.plugins.kernel-libipsec.load'), 'no')
      assert.equal(viciSocketOf(tree, 'charon'), '/run/strongswan/charon.vici')
      // charon-systemd reads its own section first, then charon's
      assert.equal(viciSocketOf(tree, 'charon-systemd'), '/run/strongswan/charon.vici')
      assert.equal(viciSocketOf(parseSettings('charon-systemd { plugins { vici { socket = unix:///x.vici } } }'), 'charon-systemd'), '/x.vici')
      assert.equal(viciSocketOf({}, 'charon-systemd'), '/var/run/charon.vici')
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })

  it('merges sections of one name across files, as swanctl does for the tunnels to one peer', () => {
    const tree = parseSettings('connections {\n  c {\n    version = 2\n    children {\n      a {\n        start_action = trap\n      }\n    }\n  }\n}\n')
    parseSettings('connections {\n  c {\n    version = 2\n    children {\n      b {\n        start_action = start\n      }\n    }\n  }\n}\n', undefined, tree)
    assert.deepEqual(Object.keys(section(tree, 'connections.c.children')!), ['a', 'b'])
  })
})

describe('VICI session', () => {
  it('loads and unloads by name, and says why charon refused', async () => {
    const charon = fakeCharon((name, msg) => {
      if (name === 'load-conn') return {response: Object.keys(msg)[0] === 'bad' ? {success: 'no', errmsg: 'invalid proposal'} : {success: 'yes'}}
      if (name === 'get-conns') return {response: {conns: ['operator', 'netkit-a']}}
      if (name === 'get-shared') return {response: {keys: ['ike-operator']}}
      return {response: {success: 'yes'}}
    })
    await withVici(charon.path, async (s) => {
      await loadConn(s, 'netkit-a', {version: 2, local_addrs: ['192.0.2.1']})
      await assert.rejects(loadConn(s, 'bad', {}), (e: Error) => e instanceof ViciError && /load-conn failed: invalid proposal/.test(e.message))
      await unloadConn(s, 'netkit-a')
      await loadShared(s, {id: 'ike-netkit-a', type: 'ike', data: 'k3y', owners: ['192.0.2.1']})
      assert.deepEqual(await getConns(s), ['operator', 'netkit-a'])
      assert.deepEqual(await getShared(s), ['ike-operator'])
    })
    const names = charon.seen.map((p) => p.name)
    assert.deepEqual(names, ['load-conn', 'load-conn', 'unload-conn', 'load-shared', 'get-conns', 'get-shared'])
    assert.deepEqual(charon.seen[2].message, {name: 'netkit-a'})
    assert.deepEqual(charon.seen[3].message, {id: 'ike-netkit-a', type: 'ike', data: 'k3y', owners: ['192.0.2.1']})
  })

  it("collects streamed events (list-sas, initiate's log) and unregisters after", async () => {
    const sa: ViciInput = {
      'netkit-x': {
        uniqueid: '3',
        state: 'ESTABLISHED',
        initiator: 'yes',
        'child-sas': {'netkit-t-1': {name: 'netkit-t', state: 'INSTALLED', 'bytes-in': '84', 'local-ts': ['10.1.0.0/24'], 'remote-ts': ['10.2.0.0/24']}},
      },
    }
    const charon = fakeCharon((name) => {
      if (name === 'list-sas') return {events: [['list-sa', sa]]}
      if (name === 'initiate')
        return {
          events: [['control-log', {group: 'IKE', level: '1', msg: 'establishing CHILD_SA netkit-t'}]],
          response: {success: 'no', errmsg: "establishing CHILD_SA 'netkit-t' failed"},
        }
      return {response: {}}
    })
    await withVici(charon.path, async (s) => {
      const [ike] = await listSas(s, 'netkit-x')
      assert.equal(ike.name, 'netkit-x')
      assert.equal(ike.uniqueId, 3)
      assert.deepEqual(
        ike.children.map((c) => [c.name, c.state, c.bytesIn, c.localTs]),
        [['netkit-t', 'INSTALLED', 84, ['10.1.0.0/24']]],
      )
      // the same shape as swanctl --raw gives
      assert.deepEqual(
        ike,
        parseListSas(
          `list-sa event {netkit-x {uniqueid=3 state=ESTABLISHED initiator=yes child-sas {netkit-t-1 {name=netkit-t state=INSTALLED bytes-in=84 local-ts=[10.1.0.0/24] remote-ts=[10.2.0.0/24]}}}}`,
        )[0],
      )
      const res = await initiate(s, {ike: 'netkit-x', child: 'netkit-t', timeoutMs: 1000})
      assert.equal(res.ok, false)
      assert.match(res.errmsg!, /failed/)
      assert.deepEqual(res.log, ['establishing CHILD_SA netkit-t'])
    })
    const kinds = charon.seen.map((p) => `${p.type}:${p.name ?? ''}`)
    assert.deepEqual(kinds, ['3:list-sa', '0:list-sas', '4:list-sa', '3:control-log', '0:initiate', '4:control-log'])
    assert.deepEqual(charon.seen[1].message, {ike: 'netkit-x', noblock: 'yes'})
    assert.deepEqual(charon.seen[4].message, {child: 'netkit-t', ike: 'netkit-x', timeout: '1000', loglevel: '1'})
  })

  it('says so when charon does not know a command or an event, or does not answer', async () => {
    const charon = fakeCharon((name) => (name === 'get-shared' ? {unknown: true} : name === 'stats' ? {silent: true} : {response: {}}))
    const s = await ViciSession.connect(charon.path, 300)
    try {
      await assert.rejects(getShared(s), /does not know the VICI command get-shared/)
      await assert.rejects(
        s.on('nosuch', () => {}),
        /no event nosuch/,
      )
      await assert.rejects(s.request('stats'), /did not answer stats within 300 ms/)
      // after a timeout the session cannot tell replies apart: it is not used again
      await assert.rejects(s.request('version'), /abandoned/)
    } finally {
      s.close()
    }
  })

  it('cannot connect where no charon listens, and says where it looked', async () => {
    await assert.rejects(ViciSession.connect('unix:///nonexistent/charon.vici', 500), /cannot connect to the VICI socket \/nonexistent\/charon.vici: ENOENT/)
  })
})

describe("netkit in the host's charon (syncConnections)", () => {
  const tunnelFile = (child: string, ts: string) => `# Written by netkit for tunnel ${child}
connections {
  netkit-peer {
    version = 2
    local_addrs = 192.0.2.1
    remote_addrs = 192.0.2.2
    children {
      netkit-${child} {
        local_ts = ${ts}
      }
    }
  }
}
secrets {
  ike-netkit-peer {
    id-local = "192.0.2.1"
    id-remote = "192.0.2.2"
    secret = 0sdG9wIHNlY3JldCBrZXkgb2YgbmV0a2l0
  }
}
`

  it("loads a connection from every tunnel file that adds to it, unloads it with its secret after the last, and names nothing but netkit's", async () => {
    const charon = fakeCharon((name) => (name === 'get-shared' ? {response: {keys: ['ike-office', 'ike-netkit-peer']}} : {response: {success: 'yes'}}))
    const dir = mkdtempSync(join(tmpdir(), 'netkit-swanctl-'))
    after(() => rmSync(dir, {recursive: true, force: true}))
    const sys: SystemCharon = {
      pid: 1,
      program: 'charon-systemd',
      conf: '/etc/strongswan.conf',
      socket: charon.path,
      swanctlDir: dir,
      confD: join(dir, 'conf.d'),
    }
    mkdirSync(sys.confD)
    writeFileSync(join(sys.confD, 'office.conf'), 'connections { office { version = 2 } }\n')
    writeFileSync(join(sys.confD, 'netkit-a.conf'), tunnelFile('a', '10.1.0.0/24'))
    writeFileSync(join(sys.confD, 'netkit-b.conf'), tunnelFile('b', '10.3.0.0/24'))
    const shown: string[] = []
    const runner = new Runner({sink: (l) => shown.push(l)})

    await syncConnections(runner, sys, ['netkit-peer'])
    let load = charon.seen.filter((p) => p.name === 'load-conn').at(-1)!.message!['netkit-peer'] as Record<string, any>
    assert.deepEqual(Object.keys(load.children), ['netkit-a', 'netkit-b'], "both tunnels' children, as swanctl merges the files")
    const shared = charon.seen.find((p) => p.name === 'load-shared')!.message!
    assert.deepEqual(shared, {id: 'ike-netkit-peer', type: 'ike', data: 'top secret key of netkit', owners: ['192.0.2.1', '192.0.2.2']})

    // Tunnel a goes (in a dry run its file is still there: "without" leaves it out).
    await syncConnections(runner, sys, ['netkit-peer'], {without: 'a'})
    load = charon.seen.filter((p) => p.name === 'load-conn').at(-1)!.message!['netkit-peer'] as Record<string, any>
    assert.deepEqual(Object.keys(load.children), ['netkit-b'])

    rmSync(join(sys.confD, 'netkit-a.conf'))
    rmSync(join(sys.confD, 'netkit-b.conf'))
    const before = charon.seen.length
    await syncConnections(runner, sys, ['netkit-peer'])
    assert.deepEqual(
      charon.seen.slice(before).map((p) => [p.name, p.message]),
      [
        ['unload-conn', {name: 'netkit-peer'}],
        ['get-shared', undefined],
        ['unload-shared', {id: 'ike-netkit-peer'}],
      ],
    )

    const named = charon.seen
      .flatMap((p) => [p.message?.name, p.message?.id, ...Object.keys(p.message ?? {}).filter((k) => k.startsWith('netkit') || k === 'office')])
      .filter((n): n is string => typeof n === 'string')
    assert.ok(
      named.every((n) => n.startsWith('netkit-') || n.startsWith('ike-netkit-')),
      `only netkit's names: ${named.join(', ')}`,
    )
    assert.ok(!charon.seen.some((p) => ['clear-creds', 'load-all', 'unload-key'].includes(p.name ?? '')), 'nothing wholesale')
    assert.ok(
      shown.every((l) => !l.includes('top secret')),
      'the key is never shown',
    )
    assert.ok(shown.includes(`[#] vici load-conn netkit-peer (unix://${charon.path})`), shown.join('\n'))
    await assert.rejects(syncConnections(runner, sys, ['office']), /not a netkit connection/)
  })

  it("loads a tunnel's private key before its connection: one that starts at once needs it for IKE_AUTH", async () => {
    const charon = fakeCharon(() => ({response: {success: 'yes', id: 'a1b2'}}))
    const dir = mkdtempSync(join(tmpdir(), 'netkit-swanctl-'))
    after(() => rmSync(dir, {recursive: true, force: true}))
    const sys: SystemCharon = {
      pid: 1,
      program: 'charon-systemd',
      conf: '/etc/strongswan.conf',
      socket: charon.path,
      swanctlDir: dir,
      confD: join(dir, 'conf.d'),
    }
    mkdirSync(sys.confD)
    mkdirSync(join(dir, 'private'))
    writeFileSync(join(sys.confD, 'netkit-a.conf'), tunnelFile('a', '10.1.0.0/24').replace(/secrets \{[^]*$/, ''))
    writeFileSync(join(dir, 'a.key'), '-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n', {mode: 0o600})
    symlinkSync(join(dir, 'a.key'), join(dir, 'private', 'netkit-a.key'))
    await syncConnections(new Runner({sink: () => {}}), sys, ['netkit-peer'])
    assert.deepEqual(
      charon.seen.map((p) => p.name).filter((n) => n === 'load-key' || n === 'load-conn'),
      ['load-key', 'load-conn'],
    )
  })
})
