/**
 * `tunnel list` and the doctor read each daemon's and the kernel's state once
 * per run, whatever the number of tunnels (issue 16): one VICI list-sas (no
 * swanctl), one wg show, one ip link (with the addresses), one modprobe, one
 * ip route get batch, and only the sysctls the checks look at.
 */
import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {Runner} from '../../src/lib/runner.js'
import {runDoctor} from '../../src/lib/doctor/run.js'
import {defineTunnel} from '../../src/lib/tunnel/define.js'
import {charonScope} from '../../src/lib/tunnel/ipsec/charon.js'
import {charonSas} from '../../src/lib/tunnel/ipsec/driver.js'
import {listTunnels} from '../../src/lib/tunnel/service.js'
import {saveDef} from '../../src/lib/tunnel/store.js'
import {Recorder} from '../helpers/recorder.js'
import {fakeCharon} from '../helpers/fake-charon.js'
import type {ViciInput} from '../../src/lib/tunnel/ipsec/vici-wire.js'

const sa = (i: number) =>
  `list-sa event {netkit-192_0_2_1-192_0_2_1${i} {uniqueid=${i} state=ESTABLISHED local-host=192.0.2.1 remote-host=192.0.2.1${i} established=5 child-sas {ips${i}-1 {name=ips${i} state=INSTALLED local-ts=[10.1.${i}.0/24] remote-ts=[10.2.${i}.0/24]}}}}`

describe('state read once per run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nk-readonce-'))
  const state = join(dir, 'run')
  const conf = join(dir, 'etc')
  const saved = process.env.NETKIT_STATE_DIR

  before(async () => {
    process.env.NETKIT_STATE_DIR = state
    const rec = new Recorder().on('modprobe', {exitCode: 1}).on('route get', {stdout: JSON.stringify([{dst: '192.0.2.11', dev: 'u0', prefsrc: '192.0.2.1'}])})
    const scope = charonScope(conf)
    mkdirSync(scope.confD, {recursive: true})
    for (let i = 1; i <= 3; i++) {
      const ips = (
        await defineTunnel(
          {name: `ips${i}`, type: 'ipsec', remote: `192.0.2.1${i}`, localSubnet: [`10.1.${i}.0/24`], remoteSubnet: [`10.2.${i}.0/24`]},
          rec.runner(),
        )
      ).def
      saveDef(new Runner(), conf, ips)
      writeFileSync(join(scope.confD, `ips${i}.conf`), '# Written by netkit\n')
      const key = '4VvwNdBuspPTokG2EEJt7DXhTD6gM507dQA/iXWVelE='
      saveDef(
        new Runner(),
        conf,
        (
          await defineTunnel(
            {name: `wg${i}`, type: 'wireguard', remote: `192.0.2.10${i}`, peerPublicKey: key, address: `10.99.${i}.1/24`, listenPort: 51000 + i},
            rec.runner(),
          )
        ).def,
      )
    }
  })
  after(() => {
    if (saved === undefined) delete process.env.NETKIT_STATE_DIR
    else process.env.NETKIT_STATE_DIR = saved
    rmSync(dir, {recursive: true, force: true})
  })

  const recorder = () => {
    const links = [1, 2, 3].map((i) => ({ifname: `wg-wg${i}`, mtu: 1420, flags: ['UP'], operstate: 'UNKNOWN', linkinfo: {info_kind: 'tun'}}))
    return new Recorder()
      .on('modprobe', {exitCode: 1})
      .on(/^ip -j -d addr show$/, {stdout: JSON.stringify(links)})
      .on(/^ip -j( -N)? route/, {stdout: '[]'})
      .on('--list-sas', {stdout: [1, 2, 3].map(sa).join('\n') + '\n'})
      .on('wg show all dump', {
        stdout:
          [1, 2, 3]
            .map(
              (i) =>
                `wg-wg${i}\tpriv\tpub${i}\t${51000 + i}\toff\nwg-wg${i}\t4VvwNdBuspPTokG2EEJt7DXhTD6gM507dQA/iXWVelE=\t(none)\t192.0.2.10${i}:51820\t10.99.${i}.0/24\t0\t0\t0\toff`,
            )
            .join('\n') + '\n',
      })
  }
  const count = (rec: Recorder, re: RegExp) => rec.calls.filter((c) => re.test(c.line)).length

  it('tunnel list with 3 IPsec and 3 WireGuard tunnels runs wg once, ip link once and modprobe at most once per module', async () => {
    const rec = recorder()
    const rows = await listTunnels({runner: rec.runner(), configDir: conf})
    assert.equal(rows.length, 6)
    assert.deepEqual(
      rows.filter((r) => r.type === 'wireguard').map((r) => r.state),
      ['connecting', 'connecting', 'connecting'],
    )
    assert.equal(count(rec, /^wg /), 1, rec.lines.join('\n'))
    assert.equal(count(rec, /^ip -j -d addr show$/), 1, rec.lines.join('\n'))
    assert.equal(count(rec, /link show|^swanctl /), 0, rec.lines.join('\n'))
    assert.equal(count(rec, /modprobe -n -q esp4/), 1)
    // The WireGuard devices are there and say their own data path: the module is not looked for.
    assert.equal(count(rec, /modprobe -n -q wireguard/), 0)
  })

  it('the doctor with the same tunnels runs wg once and routes every peer and subnet in one ip -batch', async () => {
    const rec = recorder()
    const report = await runDoctor({runner: rec.runner(), configDir: conf})
    assert.ok(report.findings.length > 0)
    assert.equal(count(rec, /^wg show/), 1, rec.lines.join('\n'))
    assert.equal(count(rec, /route get/), 0, rec.lines.join('\n'))
    assert.equal(count(rec, /^ip -j -force -batch -/), 1)
    // One read of the links and their addresses serves every check and tunnel; the sysctls are the checks' own keys, not all of them.
    assert.equal(count(rec, /^ip -j -d addr show$/), 1, rec.lines.join('\n'))
    assert.equal(count(rec, /link show|^ip -j addr/), 0, rec.lines.join('\n'))
    const sysctl = rec.calls.filter((c) => /^sysctl /.test(c.line) && !/--version/.test(c.line))
    assert.equal(sysctl.length, 1, rec.lines.join('\n'))
    assert.ok(!sysctl[0].args.includes('-a') && sysctl[0].args.includes('net/ipv4/conf/wg-wg1/rp_filter'), sysctl[0].line)
    // (The doctor's own kernel checks look for the module.)
    assert.equal(count(rec, /modprobe -n -q wireguard/), 1)
  })

  it('the SAs of every IPsec tunnel come from one VICI list-sas (no swanctl), each tunnel taking its own', async () => {
    const rec = recorder()
    const runner = rec.runner().withReadCache()
    const scope = charonScope(conf)
    const saMessage = (i: number): ViciInput => ({
      [`netkit-192_0_2_1-192_0_2_1${i}`]: {
        uniqueid: String(i),
        state: 'ESTABLISHED',
        'local-host': '192.0.2.1',
        'remote-host': `192.0.2.1${i}`,
        established: '5',
        'child-sas': {[`ips${i}-1`]: {name: `ips${i}`, state: 'INSTALLED', 'local-ts': [`10.1.${i}.0/24`], 'remote-ts': [`10.2.${i}.0/24`]}},
      },
    })
    const charon = fakeCharon(
      (name) => (name === 'list-sas' ? {events: [1, 2, 3].map((i) => ['list-sa', saMessage(i)] as [string, ViciInput]), response: {}} : {unknown: true}),
      scope.socket,
    )
    const mine = await Promise.all([1, 2, 3].map(async (i) => (await charonSas(runner, scope)).filter((s) => s.remoteHost === `192.0.2.1${i}`)))
    assert.deepEqual(
      mine.map((m) => m.map((s) => s.children[0].name)),
      [['ips1'], ['ips2'], ['ips3']],
    )
    assert.equal(charon.seen.filter((p) => p.name === 'list-sas').length, 1)
    assert.equal(count(rec, /^swanctl /), 0)
  })
})
