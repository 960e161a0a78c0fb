import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {renderTemplate} from '../../src/lib/templates.js'
import {defineTunnel} from '../../src/lib/tunnel/define.js'
import {charonPlugins} from '../../src/lib/tunnel/ipsec/charon.js'
import {parseSettings, setting} from '../../src/lib/tunnel/ipsec/settings.js'
import {initiateFailure, parseListSas, parseViciRaw} from '../../src/lib/tunnel/ipsec/vici.js'
import {
  effectiveStartAction,
  ikeName,
  initiates,
  peerStarts,
  renderConnection,
  swanctlSecret,
  trafficSelectors,
  waitStep,
} from '../../src/lib/tunnel/ipsec/driver.js'
import {allowedIps, parseWgDump} from '../../src/lib/tunnel/wireguard/driver.js'
import {generatePrivateKey, publicKeyOf} from '../../src/lib/tunnel/wireguard/keys.js'
import {Recorder} from '../helpers/recorder.js'

// Recorded on this machine: `swanctl --list-sas --raw` with kernel-libipsec, one tunnel up.
const LIST_SAS = `list-sa event {netkit-site {uniqueid=1 version=2 state=ESTABLISHED local-host=192.0.2.2 local-port=4500 local-id=192.0.2.2 remote-host=192.0.2.1 remote-port=4500 remote-id=192.0.2.1 initiator=yes initiator-spi=8f1c5b0e2a3d4c11 responder-spi=0d3e2f1a5b6c7d80 nat-remote=yes nat-fake=yes nat-any=yes encr-alg=CHACHA20_POLY1305 encr-keysize=256 prf-alg=PRF_HMAC_SHA2_256 dh-group=CURVE_25519 established=3 rekey-time=13480 child-sas {netkit-site-1 {name=netkit-site uniqueid=1 reqid=1 state=INSTALLED mode=TUNNEL protocol=ESP encap=yes spi-in=c7a1b2c3 spi-out=c9d8e7f6 encr-alg=CHACHA20_POLY1305 encr-keysize=256 bytes-in=336 packets-in=4 use-in=1 bytes-out=336 packets-out=4 use-out=1 rekey-time=3300 life-time=3957 install-time=3 local-ts=[10.2.0.0/24] remote-ts=[10.1.0.0/24]}}}}
list-sas reply {}
`

describe('ipsec driver pieces', () => {
  it('parses swanctl --raw list-sas', () => {
    const [ike] = parseListSas(LIST_SAS)
    assert.equal(ike.name, 'netkit-site')
    assert.equal(ike.state, 'ESTABLISHED')
    assert.equal(ike.encrAlg, 'CHACHA20_POLY1305')
    assert.equal(ike.dhGroup, 'CURVE_25519')
    assert.equal(ike.established, 3)
    const [child] = ike.children
    assert.equal(child.state, 'INSTALLED')
    assert.equal(child.encap, true)
    assert.deepEqual([child.localTs, child.remoteTs], [['10.2.0.0/24'], ['10.1.0.0/24']])
    assert.equal(child.bytesIn, 336)
    assert.equal(child.lifeTime, 3957)
  })

  it('keeps values with spaces (DNs) whole', () => {
    const s = parseViciRaw('list-sa event {c {local-id=C=CH, O=netkit, CN=a remote-id=b state=ESTABLISHED child-sas {}}}')
    assert.deepEqual((s.c as any)['local-id'], 'C=CH, O=netkit, CN=a')
    assert.equal((s.c as any).state, 'ESTABLISHED')
  })

  it('says why an initiate failed', () => {
    assert.equal(initiateFailure('received AUTHENTICATION_FAILED notify error').kind, 'auth')
    assert.equal(initiateFailure('received NO_PROPOSAL_CHOSEN notify error').kind, 'proposal')
    assert.equal(initiateFailure('received TS_UNACCEPTABLE notify, no CHILD_SA built').kind, 'ts')
    assert.equal(initiateFailure('retransmit 2 of request with message ID 0').kind, 'unreachable')
    assert.equal(initiateFailure('something else').kind, 'unknown')
  })

  it("stores a PSK in strongSwan's encoded form, never as typed", () => {
    assert.equal(swanctlSecret('0sAAECAw=='), '0sAAECAw==')
    assert.equal(swanctlSecret('0xdeadbeef'), '0xdeadbeef')
    assert.equal(swanctlSecret('a "quoted" psk'), `0s${Buffer.from('a "quoted" psk').toString('base64')}`)
  })

  it('renders a connection with mirrored selectors, quoted identities and the secret', async () => {
    process.env.NETKIT_TEMPLATES_DIR ??= new URL('../../../templates', import.meta.url).pathname
    const rec = new Recorder().on('route get', {stdout: '[{"dev":"u0","prefsrc":"192.0.2.1"}]'})
    const {def} = await defineTunnel(
      {
        name: 'site',
        type: 'ipsec',
        remote: '192.0.2.2',
        localSubnet: ['10.1.0.0/24'],
        remoteSubnet: ['10.2.0.0/24'],
        proposals: 'aes256-sha256-x25519',
        espProposals: 'aes256-sha256-x25519',
      },
      rec.runner(),
    )
    const text = await renderConnection(def, 'correct horse battery staple', false)
    assert.match(text, /local_ts = 10\.1\.0\.0\/24\n\s+remote_ts = 10\.2\.0\.0\/24/)
    assert.match(text, /id = "192\.0\.2\.1"/)
    assert.match(text, /start_action = trap/)
    assert.match(text, /secret = 0s/)
    assert.ok(!text.includes('battery'))
    assert.deepEqual(trafficSelectors({...def, localSubnets: [], remoteSubnets: []}), {localTs: ['192.0.2.1/32'], remoteTs: ['192.0.2.2/32']})
  })
})

describe('ipsec: one IKE SA per pair of hosts', () => {
  const def = (local: string, remote: string, startAction: 'trap' | 'start' | 'none' = 'trap', ids?: [string, string]) =>
    ({
      name: 't',
      type: 'ipsec',
      local,
      remote,
      localSubnets: ['10.1.0.0/24'],
      remoteSubnets: ['10.2.0.0/24'],
      ipsec: {startAction, localId: ids?.[0] ?? local, remoteId: ids?.[1] ?? remote},
    }) as never

  it('only the end with the lower address starts the SA; the other answers (a trap on the kernel path)', () => {
    assert.equal(initiates(def('192.0.2.1', '192.0.2.2')), true)
    assert.equal(initiates(def('192.0.2.10', '192.0.2.9')), false, 'as numbers, not as text')
    assert.equal(initiates(def('2001:db8::1', '2001:db8::1:0')), true)
    const table = (local: string, remote: string) =>
      (['trap', 'start', 'none'] as const).map((a) => [
        a,
        effectiveStartAction(def(local, remote, a), true),
        effectiveStartAction(def(local, remote, a), false),
        peerStarts(def(local, remote, a), true),
        peerStarts(def(local, remote, a), false),
      ])
    // [asked, on kernel-libipsec, on the kernel path, the peer starts it (libipsec), (kernel)]
    assert.deepEqual(table('192.0.2.1', '192.0.2.2'), [
      ['trap', 'start', 'trap', false, false],
      ['start', 'start', 'start', false, false],
      ['none', 'none', 'none', false, false],
    ])
    assert.deepEqual(table('192.0.2.2', '192.0.2.1'), [
      ['trap', 'none', 'trap', true, false],
      ['start', 'none', 'trap', true, true],
      ['none', 'none', 'none', false, false],
    ])
  })

  it("takes an initiate refused as a duplicate for success when the peer's CHILD_SA gets installed (both ends started it at once)", async () => {
    let started = 0
    const sas = async () => (started && Date.now() - started > 300 ? ([{state: 'ESTABLISHED', children: [{state: 'INSTALLED'}]}] as never[]) : ([] as never[]))
    const io = {
      sas,
      log: () => '',
      knocked: () => false,
      initiate: async () => {
        started = Date.now()
        return {ok: false, timedOut: false, text: "not establishing CHILD_SA 't' due to existing duplicate"}
      },
    }
    const ctx = {runner: new Recorder().runner(), configDir: '/nonexistent', datapath: 'kernel', datapathReason: '', timeoutMs: 5000, wait: true}
    const step = waitStep(def('192.0.2.1', '192.0.2.2'), ctx as never, false, io)
    assert.equal(await step.apply(), false)
    // A refusal with no SA to show for it still fails, saying why.
    const refused = {
      ...io,
      sas: async () => [] as never[],
      initiate: async () => ({ok: false, timedOut: false, text: 'received AUTHENTICATION_FAILED notify error'}),
    }
    const ctx2 = {...ctx, timeoutMs: 1000}
    await assert.rejects(waitStep(def('192.0.2.1', '192.0.2.2'), ctx2 as never, false, refused).apply(), /authentication/i)
  })

  it('the tunnels between two hosts share one IKE connection, named for the pair (and the identities, when they are not the addresses)', async () => {
    assert.equal(ikeName(def('192.0.2.1', '192.0.2.2')), 'netkit-192_0_2_1-192_0_2_2')
    assert.equal(ikeName(def('2001:db8::1', '2001:db8::2')), 'netkit-2001_db8__1-2001_db8__2')
    assert.match(ikeName(def('192.0.2.1', '192.0.2.2', 'trap', ['a.example', 'b.example'])), /^netkit-192_0_2_1-192_0_2_2-[0-9a-f]{8}$/)
    assert.notEqual(
      ikeName(def('192.0.2.1', '192.0.2.2', 'trap', ['a.example', 'b.example'])),
      ikeName(def('192.0.2.1', '192.0.2.2', 'trap', ['a.example', 'c.example'])),
    )
    process.env.NETKIT_TEMPLATES_DIR ??= new URL('../../../templates', import.meta.url).pathname
    const rec = new Recorder().on('route get', {stdout: '[{"dev":"u0","prefsrc":"192.0.2.2"}]'})
    const {def: answering} = await defineTunnel(
      {name: 'site2', type: 'ipsec', remote: '192.0.2.1', localSubnet: ['10.2.9.0/24'], remoteSubnet: ['10.1.9.0/24']},
      rec.runner(),
    )
    const text = await renderConnection(answering, 'correct horse battery staple', false, true)
    assert.match(text, /^ {2}netkit-192_0_2_2-192_0_2_1 \{$/m, 'the shared IKE connection')
    assert.match(text, /^ {4}unique = replace$/m, 'a newer IKE SA replaces an older one')
    assert.match(text, /^ {6}netkit-site2 \{$/m, "the tunnel's own child")
    assert.match(text, /start_action = none\n/, 'the higher address answers')
    assert.match(text, /dpd_action = clear\n/)
    assert.doesNotMatch(text, /keyingtries|close_action/)
    assert.match(text, /^ {2}ike-netkit-192_0_2_2-192_0_2_1 \{$/m, 'one secret for the connection')
  })

  it('the initiator asks a silent peer again every 5 s at most: the answering end (kernel-libipsec) is reached soon after it comes up', async () => {
    process.env.NETKIT_TEMPLATES_DIR ??= new URL('../../../templates', import.meta.url).pathname
    const conf = await renderTemplate('strongswan/strongswan.conf.eta', {
      scope: 'namespace t',
      libipsec: true,
      socket: '/x/charon.vici',
      plugins: charonPlugins(true),
    })
    // strongSwan's default waits 4, 7, 13, 23, 42 s: a fleet host rolled out after its initiating peer waited up to a minute.
    assert.equal(setting(parseSettings(conf.replace(/^\s*include .*$/gm, '')), 'charon.retransmit_limit'), '5')
  })
})

describe('wireguard driver pieces', () => {
  it('makes keys wg agrees with (RFC 7748 test vector)', () => {
    // RFC 7748 section 6.1: Alice's private and public key.
    const priv = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex').toString('base64')
    const pub = Buffer.from('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a', 'hex').toString('base64')
    assert.equal(publicKeyOf(priv), pub)
    const k = generatePrivateKey()
    assert.equal(Buffer.from(k, 'base64').length, 32)
    assert.notEqual(generatePrivateKey(), k)
  })

  it('parses wg show dump and drops the private key', () => {
    const dump = 'PRIVATEKEYSHOULDNOTBEKEPT=\tPUB=\t51820\toff\nPEER=\t(none)\t192.0.2.2:51820\t10.2.0.0/24,10.99.0.0/24\t1763827973\t220\t308\toff\n'
    const d = parseWgDump(dump)!
    assert.ok(!JSON.stringify(d).includes('PRIVATEKEY'))
    assert.equal(d.listenPort, 51820)
    assert.equal(d.fwmark, null)
    assert.deepEqual(d.peers[0], {
      publicKey: 'PEER=',
      endpoint: '192.0.2.2:51820',
      allowedIps: ['10.2.0.0/24', '10.99.0.0/24'],
      latestHandshake: 1763827973,
      rxBytes: 220,
      txBytes: 308,
      keepalive: null,
    })
  })

  it('allows the remote subnets and the tunnel network', async () => {
    const rec = new Recorder().on('route get', {stdout: '[{"dev":"u0","prefsrc":"192.0.2.1"}]'})
    const {def} = await defineTunnel(
      {
        name: 'w',
        type: 'wireguard',
        remote: '192.0.2.2',
        peerPublicKey: 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=',
        address: '10.99.0.1/24',
        remoteSubnet: ['10.2.0.0/24'],
      },
      rec.runner(),
    )
    assert.deepEqual(allowedIps(def), ['10.2.0.0/24', '10.99.0.0/24'])
  })
})

describe('tunnel routes', () => {
  it('a tunnel table with IPv4 and IPv6 remote subnets: the IPv6 rules go with ip -6 (ip rule takes them for IPv4 otherwise)', async () => {
    const {routeSteps} = await import('../../src/lib/tunnel/routes.js')
    const rec = new Recorder().on('-N -j -batch', {stdout: '[]\n[]\n'})
    const runner = rec.runner({netns: 'h1'})
    const def = {name: 't6', type: 'wireguard', table: 120, remoteSubnets: ['10.2.0.0/24', 'fd02::/64'], wireguard: {ifname: 'wg-t6'}} as never
    const [step] = routeSteps(def, {runner, configDir: '/nonexistent/netkit'} as never, 'wg-t6')
    await step.apply()
    assert.deepEqual(
      rec.calls.map((c) => [c.args.join(' '), c.input]),
      [
        // What carries the subnets now, in every table (another device's route would be taken over: refused).
        ['-n h1 -N -j -batch -', 'route show table all exact 10.2.0.0/24\nroute show table all exact fd02::/64\n'],
        [
          '-n h1 -batch -',
          'route replace 10.2.0.0/24 dev wg-t6 proto 178 table 120\nroute replace fd02::/64 dev wg-t6 proto 178 table 120\nrule add to 10.2.0.0/24 table 120 priority 1000 protocol 178\n',
        ],
        ['-n h1 -6 -batch -', 'rule add to fd02::/64 table 120 priority 1000 protocol 178\n'],
      ],
    )
  })
})
