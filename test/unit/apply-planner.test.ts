/**
 * The apply planner (desired state, live read, guards, comparison) on a host
 * recorded from a real namespace (fixtures/apply-host.ts), without root: for
 * every object kind an add, a change, a no-op and a delete, and each guard's
 * refusal. The recorded host holds what this file applied:
 *   table fxvpn 100; bridge br0 with 10.1.0.1/24; veth v0 (peer v1) on br0;
 *   route 10.2.0.0/24 via 10.1.0.254; default dev br0 in fxvpn; rule from
 *   10.1.0.0/24 to fxvpn (priority 1000); proxy 10.1.0.50 on br0; an out
 *   policy 10.1.0.0/24 -> 10.2.0.0/24 (reqid 7)
 * and what netkit did not make: a veth eth9/eth9p with 192.0.2.1/24, route
 * 10.3.0.0/24 dev eth9 (static), route 10.6.0.0/24 dev br0 (static), a rule
 * from 10.9.0.0/24 to table 100 (priority 2000).
 */
import assert from 'node:assert/strict'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {release} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {steady} from '../../src/lib/apply/live.js'
import {planHost} from '../../src/lib/apply/plan.js'
import {NetkitError} from '../../src/lib/errors.js'
import {recordMany, ROOT_SCOPE} from '../../src/lib/ownership.js'
import {APPLIED, IP4_READS, recordedHost, recordedHostState} from './fixtures/apply-host.js'

const readIfThere = (path: string) => {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

/** The file with `edit` applied to its text. */
const file = (edit: (text: string) => string = (t) => t) => ({text: edit(APPLIED), source: 'host.yaml', version: 'test'})

const host = recordedHost

async function plan(edit?: (text: string) => string) {
  const p = await planHost(host().runner(), file(edit))
  return p.changes.map((c) => `${c.action} ${c.desc}`)
}

async function refusal(edit: (text: string) => string): Promise<NetkitError> {
  try {
    await planHost(host().runner(), file(edit))
  } catch (error) {
    assert.ok(error instanceof NetkitError, String(error))
    return error
  }
  assert.fail('the plan was not refused')
}

describe('the apply planner on a recorded host', () => {
  // A name another tool gave a table number.
  const stateDir = recordedHostState('netkit-planner-', (iproute2) => writeFileSync(join(iproute2, 'rt_tables.d', 'other.conf'), '102\tsomeone\n'))

  it('the file as applied: no change of any kind', async () => {
    assert.deepEqual(await plan(), [])
  })

  it('adds one of each kind', async () => {
    const changes = await plan((t) =>
      t
        .replace('tables: {fxvpn: 100}', 'tables: {fxvpn: 100, fxb: 101}')
        .replace('  - {name: v0,', '  - {name: br1, type: bridge}\n  - {name: v0,')
        .replace('addresses: [', 'addresses: [{dev: br1, address: 10.7.0.1/24}, ')
        .replace('routes:\n', 'routes:\n  - {to: 10.4.0.0/24, via: 10.1.0.254}\n')
        .replace('rules: [', 'rules: [{from: 10.1.1.0/24, table: fxb}, ')
        .replace('proxyArp: [', 'proxyArp: [{address: 10.1.0.51, dev: br0}, ')
        .replace('xfrmPolicies:\n', 'xfrmPolicies:\n  - {src: 10.2.0.0/24, dst: 10.1.0.0/24, dir: in, tmplSrc: 192.0.2.2, tmplDst: 192.0.2.1, reqid: 7}\n'),
    )
    assert.deepEqual(
      changes.filter((c) => !c.startsWith('add ')),
      [],
      'only additions',
    )
    for (const what of ['table fxb', 'br1', '10.7.0.1/24', '10.4.0.0/24', '10.1.1.0/24', '10.1.0.51', '10.2.0.0/24 -> 10.1.0.0/24']) {
      assert.ok(
        changes.some((c) => c.includes(what)),
        `${what} is added: ${changes.join('; ')}`,
      )
    }
    assert.equal(changes.length, 7)
  })

  it('changes each kind that can change in place', async () => {
    const changes = await plan((t) =>
      t
        .replace('{name: br0, type: bridge}', '{name: br0, type: bridge, mtu: 1400}')
        .replace('{to: 10.2.0.0/24, via: 10.1.0.254}', '{to: 10.2.0.0/24, via: 10.1.0.253}')
        .replace('reqid: 7}', 'reqid: 7, priority: 1700}'),
    )
    assert.deepEqual(
      changes.map((c) => c.split(' ')[0]),
      ['change', 'change', 'change'],
      changes.join('; '),
    )
    for (const what of ['link br0', 'route 10.2.0.0/24', 'policy 10.1.0.0/24 -> 10.2.0.0/24'])
      assert.ok(
        changes.some((c) => c.includes(what)),
        `${what} changes: ${changes.join('; ')}`,
      )
  })

  it('removes what it made and the file no longer lists, one of each kind', async () => {
    const changes = await plan((t) =>
      t
        .replace('tables: {fxvpn: 100}\n', '')
        .replace('  - {to: default, dev: br0, table: fxvpn}\n', '')
        .replace('rules: [{from: 10.1.0.0/24, table: fxvpn}]\n', '')
        .replace('proxyArp: [{address: 10.1.0.50, dev: br0}]\n', '')
        .replace(/xfrmPolicies:\n.*\n/, '')
        .replace('  - {name: v0, type: veth, peer: v1, master: br0}\n', ''),
    )
    assert.deepEqual(
      changes.filter((c) => !c.startsWith('remove ')),
      [],
      `only removals: ${changes.join('; ')}`,
    )
    for (const what of ['fxvpn', 'v0', 'default', '10.1.0.0/24', '10.1.0.50', '10.1.0.0/24 -> 10.2.0.0/24']) {
      assert.ok(
        changes.some((c) => c.includes(what)),
        `${what} is removed: ${changes.join('; ')}`,
      )
    }
  })

  it('never removes what it did not make: the foreign objects are not in any plan', async () => {
    // Everything but br0 (which carries a foreign route, see the guard below) goes.
    const changes = await plan(() => 'version: 1\nlinks: [{name: br0, type: bridge}]\n')
    assert.ok(changes.length >= 8, changes.join('; '))
    for (const foreign of ['eth9', '192.0.2.1/24', '10.3.0.0/24', '10.6.0.0/24', '10.9.0.0/24']) {
      assert.ok(!changes.some((c) => c.includes(foreign)), `${foreign} is left alone: ${changes.join('; ')}`)
    }
  })

  it('guard: an object of another tool in the way is a conflict that names it, before anything changes', async () => {
    const route = await refusal((t) => t.replace('routes:\n', 'routes:\n  - {to: 10.3.0.0/24, via: 10.1.0.254}\n'))
    assert.equal(route.code, 'E_CONFLICT')
    assert.match(route.message, /10\.3\.0\.0\/24/)
    const link = await refusal((t) => t.replace('  - {name: v0,', '  - {name: eth9, type: bridge}\n  - {name: v0,'))
    assert.equal(link.code, 'E_CONFLICT')
    assert.match(link.message, /eth9/)
  })

  it("guard: removing a link refuses to take another tool's route on it along", async () => {
    // An empty file removes all apply made, br0 with it: the kernel would take 10.6.0.0/24 (static) along.
    const e = await refusal(() => 'version: 1\n')
    assert.equal(e.code, 'E_CONFLICT')
    assert.match(e.message, /10\.6\.0\.0\/24/)
  })

  it('guard: a device that is neither in the file nor on the host is bad input', async () => {
    await assert.rejects(
      planHost(
        host().runner(),
        file((t) => t.replace('routes:\n', 'routes:\n  - {to: 10.8.0.0/24, dev: nosuch0}\n')),
      ),
      /nosuch0/,
    )
  })
  it('sysctls: set when the value differs, a no-op when it is the same, put back when the file drops one apply set', async () => {
    const withSysctl = (t: string) => `${t}sysctls: {ip_forward: 1}\n`
    const differs = host().on('sysctl -n net/ipv4/ip_forward', {stdout: '0\n'})
    assert.deepEqual(
      (await planHost(differs.runner(), file(withSysctl))).changes.map((c) => `${c.action} ${c.desc}`),
      ['change sysctl net.ipv4.ip_forward = 1'],
    )
    const same = host().on('sysctl -n net/ipv4/ip_forward', {stdout: '1\n'})
    assert.deepEqual((await planHost(same.runner(), file(withSysctl))).changes, [])
    recordMany(ROOT_SCOPE, [{kind: 'applied', key: 'sysctl:net/ipv4/ip_forward', meta: {original: '0'}}], [])
    assert.deepEqual(
      (await planHost(same.runner(), file())).changes.map((c) => `${c.action} ${c.desc}`),
      ['remove sysctl net.ipv4.ip_forward = 1'],
    )
  })

  it('namespaces: one the file adds is made (with what it holds); one apply made and the file drops is removed', async () => {
    const changes = await plan((t) => `${t}namespaces:\n  hk-planner-ns:\n    links: [{name: b9, type: bridge}]\n`)
    assert.deepEqual(changes, ['add namespace hk-planner-ns', 'add bridge link b9'])
  })

  it('guard: the same object twice in the file is bad input, before anything is read', async () => {
    const e = await refusal((t) => t.replace('routes:\n', 'routes:\n  - {to: 10.2.0.0/24, via: 10.1.0.253}\n'))
    assert.equal(e.code, 'E_FILE')
    assert.match(e.message, /lists route 10\.2\.0\.0\/24 twice/)
  })

  it('guard: a table number another name has on this host is bad input', async () => {
    const e = await refusal((t) => t.replace('tables: {fxvpn: 100}', 'tables: {fxvpn: 100, fxc: 102}'))
    assert.equal(e.code, 'E_FILE')
    assert.match(e.message, /tables\.fxc: table 102 is already named someone/)
  })

  it('guard: a sysctl that does not exist here (and is not of a link the file makes) is bad input', async () => {
    const missing = host().on('sysctl -n', {exitCode: 255, stderr: 'sysctl: cannot stat /proc/sys/net/ipv4/conf/nosuch0/forwarding: No such file or directory'})
    await assert.rejects(
      planHost(
        missing.runner(),
        file((t) => `${t}sysctls: {net.ipv4.conf.nosuch0.forwarding: 1}\n`),
      ),
      (e: unknown) => e instanceof NetkitError && e.code === 'E_FILE' && /net\.ipv4\.conf\.nosuch0\.forwarding does not exist/.test(e.message),
    )
  })

  // ESP loaded or built in on the machine that runs the test: there is no host without it to record.
  const espHere = existsSync('/sys/module/esp4') || /\/esp4\.ko/.test(readIfThere(`/lib/modules/${release()}/modules.builtin`))
  it("guard: an SA needs the kernel's ESP, refused by the plan when the host has none", {skip: espHere && 'this kernel has ESP'}, async () => {
    const keyFile = join(stateDir(), 'sa.key')
    writeFileSync(keyFile, `0x${'11'.repeat(20)}\n`, {mode: 0o600})
    const noEsp = host().on('modprobe -n -q esp4', {exitCode: 1, stderr: 'modprobe: FATAL: Module esp4 not found'})
    await assert.rejects(
      planHost(
        noEsp.runner(),
        file(
          (t) =>
            `${t}xfrmStates:\n  - {src: 192.0.2.1, dst: 192.0.2.2, spi: 0x1000, reqid: 1, aead: {alg: 'rfc4106(gcm(aes))', keyFile: ${keyFile}, icv: 128}}\n`,
        ),
      ),
      (e: unknown) => e instanceof NetkitError && e.code === 'E_NO_ESP',
    )
  })

  it('guard: removing the last address of a subnet refuses to take the routes through its gateway along', async () => {
    const e = await refusal((t) => t.replace('addresses: [{dev: br0, address: 10.1.0.1/24}]\n', ''))
    assert.equal(e.code, 'E_CONFLICT')
    assert.match(e.message, /removing address 10\.1\.0\.1\/24 on br0 would also delete route 10\.2\.0\.0\/24 \(the file keeps it\)/)
  })

  it("guard: removing a primary address refuses to take another tool's secondary of its subnet along", async () => {
    const secondary = IP4_READS.map((t, i) =>
      i === 1
        ? t.replace(
            '"local":"10.1.0.1","prefixlen":24',
            '"local":"10.1.0.1","prefixlen":24},{"family":"inet","local":"10.1.0.9","prefixlen":24,"secondary":true',
          )
        : t,
    )
    assert.notDeepEqual(secondary, IP4_READS, 'the fixture has the primary address')
    const r = host().on(/-d -j -batch -/, {stdout: `${secondary.join('\n')}\n`})
    await assert.rejects(
      planHost(
        r.runner(),
        file((t) => t.replace('addresses: [{dev: br0, address: 10.1.0.1/24}]', 'addresses: [{dev: br0, address: 10.1.0.2/24}]')),
      ),
      (e: unknown) => e instanceof NetkitError && e.code === 'E_CONFLICT' && /would delete 10\.1\.0\.9\/24 too/.test(e.message),
    )
  })

  it('a read that fails is an error, never an empty host; a host without IPv6 has no IPv6 rules', async () => {
    // ip ends a batch at a failing command: apply then reads one by one to find it.
    const broken = host()
      .on(/-d -j -batch -/, {exitCode: 1, stderr: 'Error: something broke'})
      .on(/ip -d -j link show/, {exitCode: 1, stderr: 'Cannot open network namespace "gone": No such file or directory'})
    await assert.rejects(planHost(broken.runner(), file()), (e: unknown) => e instanceof NetkitError && /link show/.test(`${e.message} ${e.command ?? ''}`))
    const noIpv6 = host().on(/-6 -d -j -batch -/, {exitCode: 2, stderr: 'RTNETLINK answers: Address family not supported by protocol'})
    noIpv6.on(/-6 -d -j rule show/, {exitCode: 2, stderr: 'RTNETLINK answers: Address family not supported by protocol'})
    assert.deepEqual((await planHost(noIpv6.runner(), file())).changes, [])
  })

  it("the live read looks only at the file's and the ledger's namespaces: others' coming and going is no change (the memo stays valid)", async () => {
    recordMany(ROOT_SCOPE, [{kind: 'applied', key: 'netns:gone'}], [])
    const p = await planHost(
      host().runner(),
      file((t) => `${t}namespaces: {inner: {}}\n`),
    )
    assert.deepEqual(p.reads.recipes[0].namespaces, ['gone', 'inner'])
    const none = await planHost(host().runner(), file())
    assert.deepEqual(none.reads.recipes[0].namespaces, ['gone'])
  })

  it("the no-op shortcut's digest leaves out only what changes by itself (timers, lifetimes, tentative)", () => {
    assert.equal(steady('[{"ifname":"br0","info_data":{"hello_timer":1.5,"stp_state":0}}]'), '[{"ifname":"br0","info_data":{"stp_state":0}}]')
    assert.equal(steady('[{"local":"fe80::1","tentative":true,"valid_life_time":4294967295}]'), '[{"local":"fe80::1",}]')
    assert.equal(steady('[{"dst":"10.1.0.0/24","expires":300,"dev":"v0"}]'), '[{"dst":"10.1.0.0/24","dev":"v0"}]')
    const routes = '[{"dst":"10.1.0.0/24","dev":"v0","protocol":"178","flags":[]}]'
    assert.equal(steady(routes), routes)
  })
})
