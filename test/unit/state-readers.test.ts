/**
 * The readers that let `tunnel list` and the doctor start (almost) no process
 * per run (issue 16): wireguard-go's state over its control socket, the
 * kernel's module index instead of `modprobe -n`, and only the sysctls asked
 * for, in one `sysctl -e`.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {loadable} from '../../src/lib/kernel.js'
import {readSysctls} from '../../src/lib/sysctl.js'
import {parseWgDump} from '../../src/lib/tunnel/wireguard/driver.js'
import {generatePrivateKey, publicKeyOf} from '../../src/lib/tunnel/wireguard/keys.js'
import {parseUapi} from '../../src/lib/tunnel/wireguard/uapi.js'
import {Recorder} from '../helpers/recorder.js'

const hex = (b64: string) => Buffer.from(b64, 'base64').toString('hex')

describe("wireguard-go's control socket", () => {
  it('says what `wg show IF dump` says of the device, without the private key', () => {
    const priv = generatePrivateKey()
    const peerA = publicKeyOf(generatePrivateKey())
    const peerB = publicKeyOf(generatePrivateKey())
    const uapi = [
      `private_key=${hex(priv)}`,
      'listen_port=51001',
      `public_key=${hex(peerA)}`,
      `preshared_key=${'0'.repeat(64)}`,
      'protocol_version=1',
      'endpoint=192.0.2.101:51820',
      'last_handshake_time_sec=1764661000',
      'last_handshake_time_nsec=5',
      'tx_bytes=92',
      'rx_bytes=148',
      'persistent_keepalive_interval=25',
      'allowed_ip=10.99.1.0/24',
      'allowed_ip=10.98.0.0/16',
      `public_key=${hex(peerB)}`,
      'last_handshake_time_sec=0',
      'last_handshake_time_nsec=0',
      'tx_bytes=0',
      'rx_bytes=0',
      'persistent_keepalive_interval=0',
      'errno=0',
      '',
      '',
    ].join('\n')
    const dump = [
      `${priv}\t${publicKeyOf(priv)}\t51001\toff`,
      `${peerA}\t(none)\t192.0.2.101:51820\t10.99.1.0/24,10.98.0.0/16\t1764661000\t148\t92\t25`,
      `${peerB}\t(none)\t(none)\t(none)\t0\t0\t0\toff`,
    ].join('\n')
    const got = parseUapi(uapi)
    assert.deepEqual(got, parseWgDump(dump))
    assert.ok(!JSON.stringify(got).includes(priv) && !JSON.stringify(got).includes(hex(priv)))
  })

  it('a device that reports an error is not read', () => {
    assert.equal(parseUapi('errno=19\n\n'), undefined)
  })
})

describe('the module index (what modprobe -n reads)', () => {
  const dep = 'kernel/net/ipv4/esp4.ko.zst: kernel/net/xfrm/xfrm_algo.ko.zst\nkernel/drivers/net/wireguard/wireguard.ko:\n'
  const alias = 'alias xfrm-type-2-50 esp4\nalias net-pf-16-proto-16-family-wireguard wireguard\n'
  it('finds a module by its file or an alias, and knows one that is in neither', () => {
    assert.equal(loadable('esp4', {dep, alias, dir: true, conf: ''}), true)
    assert.equal(loadable('xfrm-type-2-50', {dep, alias, dir: true, conf: ''}), true)
    assert.equal(loadable('esp6', {dep, alias, dir: true, conf: ''}), false)
  })
  it('no index for the running kernel: nothing can be loaded; a modprobe.d rule naming it or an unreadable index: modprobe decides', () => {
    assert.equal(loadable('esp4', {dir: false, conf: ''}), false)
    assert.equal(loadable('esp4', {dir: false, conf: 'install esp4 /bin/true\n'}), undefined)
    assert.equal(loadable('esp4', {dir: true, conf: ''}), undefined)
  })
})

describe('sysctls read by key', () => {
  it('in another namespace: one sysctl -e with the keys asked for, a missing one absent', async () => {
    const rec = new Recorder().on(/^ip netns exec n1 sysctl -e /, {stdout: 'net.ipv4.ip_forward = 1\nnet.ipv4.conf.all.rp_filter = 2\n'})
    const got = await readSysctls(rec.runner({netns: 'n1'}), ['net/ipv4/ip_forward', 'net/ipv4/conf/all/rp_filter', 'net/ipv4/conf/wg-x/rp_filter'])
    assert.deepEqual(Object.fromEntries(got), {'net.ipv4.ip_forward': '1', 'net.ipv4.conf.all.rp_filter': '2'})
    assert.deepEqual(
      rec.calls.map((c) => c.line),
      ['ip netns exec n1 sysctl -e net/ipv4/ip_forward net/ipv4/conf/all/rp_filter net/ipv4/conf/wg-x/rp_filter'],
    )
  })
})
