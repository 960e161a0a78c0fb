/**
 * Two netkit commands at once on one host: one lock discipline (src/lib/lock.ts)
 * for every command that changes the host.
 */
import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {exitOf, stderrUntil} from '../helpers/cli.js'
import {filesUnder, ipj, sh, skipUnlessRoot} from '../helpers/hosts.js'
import {pingUntil, twoHosts} from '../helpers/topology.js'

describe('two netkit commands at once on one host (integration)', {skip: skipUnlessRoot}, () => {
  const scratch = mkdtempSync(join(tmpdir(), 'netkit-test-'))
  after(() => rmSync(scratch, {recursive: true, force: true}))
  const psk = join(scratch, 'site.psk')
  writeFileSync(psk, 'correct horse battery staple 2026\n', {mode: 0o600})

  it('two IPsec adds at once: one charon, both tunnels defined, and del of both leaves nothing', async () => {
    const {hA} = twoHosts('cc')
    const add = (name: string, n: number) =>
      hA.cliStart([
        'tunnel',
        'add',
        name,
        '--type',
        'ipsec',
        '--remote',
        '192.0.2.2',
        '--psk-file',
        psk,
        '--local-subnet',
        `10.1.${n}.0/24`,
        '--remote-subnet',
        `10.2.${n}.0/24`,
        '--local-id',
        `a${n}`,
        '--remote-id',
        `b${n}`,
        '--no-wait',
        '--json',
      ])
    const one = add('one', 1)
    const two = add('two', 2)
    const [c1, c2] = await Promise.all([exitOf(one), exitOf(two)])
    assert.deepEqual([c1, c2], [0, 0], 'both were added, one after the other')
    const charons = hA.processes().filter((p) => p.endsWith(' charon'))
    assert.equal(charons.length, 1, `one charon in the host: ${hA.processes().join(', ')}`)
    assert.deepEqual(
      hA
        .cli(['tunnel', 'list', '--json'])
        .json.result.map((t: any) => t.name)
        .sort(),
      ['one', 'two'],
    )
    for (const name of ['one', 'two']) assert.equal(hA.cli(['tunnel', 'del', name]).code, 0)
    assert.deepEqual(hA.processes(), [], 'no charon left')
    assert.deepEqual(ipj(hA.ns, ['route', 'show', 'table', 'all', 'proto', '178']), [])
    assert.deepEqual(
      filesUnder(hA.configDir).filter((f) => !f.includes('/secrets/')),
      [],
      'no tunnel config left',
    )
  })

  it('apply refuses at once while another change runs, naming it; tunnel commands wait for it', async () => {
    const {hA} = twoHosts('cw')
    const key = hA.cli(['tunnel', 'pubkey', 'wg1']).stdout.trim()
    assert.match(key, /^[A-Za-z0-9+/]{43}=$/)
    // A WireGuard add that waits for a handshake that will not come holds the lock meanwhile.
    const slow = hA.cliStart([
      'tunnel',
      'add',
      'wg1',
      '--type',
      'wireguard',
      '--remote',
      '192.0.2.2',
      '--peer-public-key',
      key,
      '--address',
      '10.99.0.1/24',
      '--timeout',
      '6',
    ])
    const slowExit = exitOf(slow)
    await stderrUntil(slow, /\[#\] .*wg set wg-wg1/)
    const apply = hA.cli(['apply', '-f', '-', '--json'], {input: 'version: 1\nlinks: [{name: br9, type: bridge}]\n'})
    assert.equal(apply.code, 1, apply.stderr)
    assert.equal(apply.json.error.code, 'E_BUSY')
    assert.match(apply.json.error.message, /^another netkit command is changing this host \(pid \d+: netkit tunnel add wg1, since \d\d:\d\d:\d\d UTC\)$/)
    assert.deepEqual(
      ipj(hA.ns, ['link', 'show']).filter((l: any) => l.ifname === 'br9'),
      [],
      'apply changed nothing',
    )
    const t0 = Date.now()
    const del = hA.cli(['tunnel', 'del', 'wg1'])
    assert.equal(await slowExit, 1, 'the add failed (no handshake) and undid itself')
    assert.equal(del.code, 0, del.stderr)
    assert.match(del.stderr, /^waiting for another netkit command to finish \(pid \d+: netkit tunnel add wg1/m)
    assert.match(del.stdout, /nothing to do/, `it ran after the add was over and undone: ${del.stdout}`)
    assert.ok(Date.now() - t0 < 20_000)
  })

  it('two wizards at once (answers files): one charon, both tunnels work; the same tunnel asked differently twice: one refused in one line; del leaves nothing', async () => {
    const {A, B, hA, hB, CA} = twoHosts('cz')
    // Each gateway has an address in its second subnet (charon routes from it).
    sh('ip', ['-n', A, 'addr', 'add', '10.1.2.1/24', 'dev', 'c0'])
    sh('ip', ['-n', B, 'addr', 'add', '10.2.2.1/24', 'dev', 'c0'])
    const answers = (name: string, n: number, local: string, remote: string, mine: string, theirs: string) => {
      const f = join(scratch, `${name}-${n}-${local}.yaml`)
      writeFileSync(
        f,
        `role: site-to-site\nname: ${name}\nlocal: ${local}\nremote: ${remote}\nlocalSubnets: [${mine}]\nremoteSubnets: [${theirs}]\nauth: {method: psk-file, pskFile: ${psk}}\n`,
      )
      return f
    }
    // The peer, set up first (one tunnel per subnet pair, as on A).
    const nets = (n: number, side: number) => (n === 1 ? `10.${side}.0.0/24` : `10.${side}.${n}.0/24`)
    for (const n of [1, 2]) assert.equal(hB.cli(['wizard', '--answers', answers(`w${n}`, n, '192.0.2.2', '192.0.2.1', nets(n, 2), nets(n, 1))]).code, 0)
    const one = hA.cliStart(['wizard', '--answers', answers('w1', 1, '192.0.2.1', '192.0.2.2', nets(1, 1), nets(1, 2)), '--wait', '--json'])
    const two = hA.cliStart(['wizard', '--answers', answers('w2', 2, '192.0.2.1', '192.0.2.2', nets(2, 1), nets(2, 2)), '--wait', '--json'])
    const [c1, c2] = await Promise.all([exitOf(one), exitOf(two)])
    assert.deepEqual([c1, c2], [0, 0], 'both wizards set their tunnel up, one after the other')
    assert.equal(hA.processes().filter((p) => p.endsWith(' charon')).length, 1, `one charon: ${hA.processes().join(', ')}`)
    assert.deepEqual(
      hA
        .cli(['tunnel', 'list', '--json'])
        .json.result.map((t: any) => [t.name, t.state])
        .sort(),
      [
        ['w1', 'up'],
        ['w2', 'up'],
      ],
    )
    assert.ok(await pingUntil(CA, '10.2.0.2', 20), 'the containers talk through the tunnel')

    // The same tunnel, asked for twice at once with different subnets: one sets it up, the other is refused in one line.
    const a = hA.cliStart(['wizard', '--answers', answers('w3', 3, '192.0.2.1', '192.0.2.2', '10.1.3.0/24', '10.2.3.0/24')])
    const b = hA.cliStart(['wizard', '--answers', answers('w3', 4, '192.0.2.1', '192.0.2.2', '10.1.4.0/24', '10.2.4.0/24')])
    const errs = ['', '']
    a.stderr!.on('data', (d) => (errs[0] += d))
    b.stderr!.on('data', (d) => (errs[1] += d))
    const codes = await Promise.all([exitOf(a), exitOf(b)])
    assert.deepEqual([...codes].sort(), [0, 1], `one set it up, one was refused: ${errs.join(' | ')}`)
    const refused = errs[codes.indexOf(1)].split('\n').filter((l) => l.startsWith('error:'))
    assert.equal(refused.length, 1)
    assert.match(refused[0], /^error: tunnel w3 already exists with a different definition \((local-subnet|local subnets|localSubnets)/)
    assert.equal(hA.processes().filter((p) => p.endsWith(' charon')).length, 1)

    for (const name of ['w1', 'w2', 'w3']) assert.equal(hA.cli(['tunnel', 'del', name]).code, 0)
    assert.deepEqual(hA.processes(), [], 'no charon left')
    assert.deepEqual(ipj(hA.ns, ['route', 'show', 'table', 'all', 'proto', '178']), [])
    assert.deepEqual(
      ipj(hA.ns, ['rule', 'show']).filter((r: any) => r.table === '220'),
      [],
      'no rule of charon left',
    )
    assert.deepEqual(
      ipj(hA.ns, ['link', 'show']).filter((l: any) => l.ifname === 'ipsec0'),
      [],
      'no ipsec0 left',
    )
    assert.deepEqual(
      filesUnder(hA.configDir).filter((f) => !f.includes('/secrets/')),
      [],
      'no tunnel config left',
    )
    for (const n of [1, 2]) hB.cli(['tunnel', 'del', `w${n}`])
  })
})
