/**
 * Links and bridges with a recording runner. The `ip -j -d link` replies are
 * real output (fixtures/ip-link.ts), recorded in two namespaces made with:
 *   A: v0 (veth, peer v1 in B, both aliased netkit, up), v2/v3 (veth, MTU 1400, aliased),
 *      br0 (bridge, aliased, up; v3 a port), vx42 (vxlan 42 remote 192.0.2.2 dev v2, aliased),
 *      vx43 (vxlan 43 group 239.1.1.1 dev v2 port 8472, not aliased),
 *      vx6 (vxlan 6 remote 2001:db8::2 dev v2, aliased), mv0 (macvlan private on v2, aliased),
 *      foreign0 (bridge, not aliased).
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {NetkitError} from '../../src/lib/errors.js'
import {attach, bridgeRows, detach, listBridges, planAttach} from '../../src/lib/iproute2/bridge.js'
import type {IpLink} from '../../src/lib/iproute2/json.js'
import {
  addArgs,
  addBatches,
  addLink,
  checkChange,
  checkSpec,
  decideAdd,
  delLink,
  linkDiff,
  linkRow,
  type LinkSpec,
  listLinks,
  planSet,
  setLink,
} from '../../src/lib/iproute2/link.js'
import {Recorder} from '../helpers/recorder.js'
import {LINKS_A, LINKS_B, NSIDS_A} from './fixtures/ip-link.js'

const A: IpLink[] = JSON.parse(LINKS_A)
const B: IpLink[] = JSON.parse(LINKS_B)
const get = (links: IpLink[], name: string) => links.find((l) => l.ifname === name)!

/** A recorder that answers reads from the recorded namespaces (hostA, hostB); every other ip call succeeds. */
function host(opts: {batch?: (input: string) => {exitCode: number; stderr?: string}} = {}): Recorder {
  const rec = new Recorder()
  rec.on(/^ip -n (\S+) -j -d link show$/, (c) => ({stdout: c.args[1] === 'hostB' ? LINKS_B : LINKS_A}))
  rec.on(/^ip -n (\S+) -j -d link show dev (\S+)$/, (c) => {
    const l = (c.args[1] === 'hostB' ? B : A).find((x) => x.ifname === c.args.at(-1))
    return l ? {stdout: JSON.stringify([l])} : {exitCode: 1, stderr: `Device "${c.args.at(-1)}" does not exist.`}
  })
  rec.on(/^ip -n hostA -j netns list-id$/, {stdout: NSIDS_A})
  if (opts.batch) rec.on(/-batch -$/, (c) => opts.batch!(c.input ?? ''))
  return rec
}
const mutations = (rec: Recorder) => rec.calls.filter((c) => c.args.includes('-batch')).map((c) => ({ns: c.args[1], script: c.input}))

async function rejects(p: Promise<unknown>, code: string, exit: number, message: RegExp): Promise<NetkitError> {
  try {
    await p
  } catch (error) {
    assert.ok(error instanceof NetkitError, String(error))
    assert.equal(error.code, code)
    assert.equal(error.exit, exit)
    assert.match(error.line, message)
    assert.equal(error.line.includes('\n'), false, 'one line')
    return error
  }
  assert.fail(`expected ${code}`)
}

describe('link: the commands built for each type', () => {
  it('ip link add arguments', () => {
    assert.deepEqual(addArgs({name: 'v0', kind: 'veth', peer: 'v1'}), ['link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1'])
    assert.deepEqual(addArgs({name: 'v0', kind: 'veth', peer: 'v1', peerNetns: 'hostB', mtu: 1400}), [
      'link',
      'add',
      'v0',
      'mtu',
      '1400',
      'type',
      'veth',
      'peer',
      'name',
      'v1',
      'mtu',
      '1400',
      'netns',
      'hostB',
    ])
    assert.deepEqual(addArgs({name: 'br0', kind: 'bridge'}), ['link', 'add', 'br0', 'type', 'bridge'])
    assert.deepEqual(addArgs({name: 'vx1', kind: 'vxlan', vni: 1, remote: '192.0.2.2', dev: 'eth0'}), [
      'link',
      'add',
      'vx1',
      'type',
      'vxlan',
      'id',
      '1',
      'remote',
      '192.0.2.2',
      'dev',
      'eth0',
      'dstport',
      '4789',
    ])
    assert.deepEqual(addArgs({name: 'vx1', kind: 'vxlan', vni: 16_777_215, group: '239.1.1.1', dev: 'eth0', port: 8472}), [
      'link',
      'add',
      'vx1',
      'type',
      'vxlan',
      'id',
      '16777215',
      'group',
      '239.1.1.1',
      'dev',
      'eth0',
      'dstport',
      '8472',
    ])
    assert.deepEqual(addArgs({name: 'mv0', kind: 'macvlan', parent: 'eth0'}), ['link', 'add', 'mv0', 'link', 'eth0', 'type', 'macvlan', 'mode', 'bridge'])
    assert.deepEqual(addArgs({name: 'mv0', kind: 'macvlan', parent: 'eth0', mode: 'vepa'}).slice(-2), ['mode', 'vepa'])
  })

  it('create, alias (both veth ends) and up in one batch; a peer in another namespace is marked there', async () => {
    const rec = new Recorder()
    const r = rec.runner({netns: 'hostA'})
    const one = addBatches(r, {name: 'va', kind: 'veth', peer: 'vb', up: true})
    assert.equal(one.length, 1)
    assert.deepEqual(
      one[0][1].map((l) => l.args.join(' ')),
      ['link add va type veth peer name vb', 'link set va alias netkit', 'link set vb alias netkit', 'link set va up', 'link set vb up'],
    )
    const two = addBatches(r, {name: 'va', kind: 'veth', peer: 'vb', peerNetns: 'hostB', up: true})
    assert.deepEqual(
      two.map(([runner, lines]) => [runner.netns, lines.map((l) => l.args.join(' '))]),
      [
        ['hostA', ['link add va type veth peer name vb netns hostB', 'link set va alias netkit', 'link set va up']],
        ['hostB', ['link set vb alias netkit', 'link set vb up']],
      ],
    )
  })

  it("addLink sends exactly one ip -batch for a new link, in the runner's namespace", async () => {
    for (const [spec, script] of [
      [
        {name: 'vx9', kind: 'vxlan', vni: 9, remote: '192.0.2.9', dev: 'v2', up: true},
        'link add vx9 type vxlan id 9 remote 192.0.2.9 dev v2 dstport 4789\nlink set vx9 alias netkit\nlink set vx9 up\n',
      ],
      [{name: 'mv9', kind: 'macvlan', parent: 'v2', mode: 'passthru'}, 'link add mv9 link v2 type macvlan mode passthru\nlink set mv9 alias netkit\n'],
      // A bridge's MTU is set after it is made: given to "link add", it would yield to its first port's.
      [{name: 'br9', kind: 'bridge', mtu: 9000}, 'link add br9 type bridge\nlink set br9 mtu 9000\nlink set br9 alias netkit\n'],
      [{name: 'va', kind: 'veth', peer: 'vb'}, 'link add va type veth peer name vb\nlink set va alias netkit\nlink set vb alias netkit\n'],
    ] as [LinkSpec, string][]) {
      const rec = host()
      assert.deepEqual(await addLink(rec.runner({netns: 'hostA'}), spec), {outcome: 'created', owned: true})
      assert.deepEqual(mutations(rec), [{ns: 'hostA', script}], spec.name)
    }
  })

  it('a dry run reads, prints the commands and runs no change', async () => {
    const rec = host()
    assert.deepEqual(await addLink(rec.runner({netns: 'hostA', dryRun: true}), {name: 'br9', kind: 'bridge', up: true}), {outcome: 'created', owned: true})
    assert.deepEqual(mutations(rec), [])
    assert.deepEqual(rec.echoed, ['ip -n hostA link add br9 type bridge', 'ip -n hostA link set br9 alias netkit', 'ip -n hostA link set br9 up'])
  })

  it('undoes the link when a later line of the batch fails, and not when the add itself failed', async () => {
    let rec = host({
      batch: (input) =>
        input.startsWith('link add') ? {exitCode: 1, stderr: 'RTNETLINK answers: Operation not permitted\nCommand failed -:2'} : {exitCode: 0},
    })
    await assert.rejects(addLink(rec.runner({netns: 'hostA'}), {name: 'br9', kind: 'bridge'}))
    assert.deepEqual(
      mutations(rec).map((m) => m.script),
      ['link add br9 type bridge\nlink set br9 alias netkit\n', 'link del br9\n'],
    )
    rec = host({batch: () => ({exitCode: 2, stderr: 'RTNETLINK answers: Operation not supported\nCommand failed -:1'})})
    await assert.rejects(addLink(rec.runner({netns: 'hostA'}), {name: 'br9', kind: 'bridge'}))
    assert.equal(mutations(rec).length, 1, 'nothing was made, nothing to undo')
  })
})

describe('link: parsing ip -j -d link', () => {
  it('rows with a stable shape for every kind', () => {
    const names = new Map([[0, 'hostB']])
    const rows = Object.fromEntries(A.map((l) => [l.ifname, linkRow(l, names)]))
    const keys = ['name', 'type', 'state', 'up', 'mtu', 'mac', 'master', 'owned', 'peer', 'peerNetns', 'lower', 'vni', 'remote', 'group', 'port', 'mode']
    for (const r of Object.values(rows)) assert.deepEqual(Object.keys(r), keys)
    const pick = (n: string, ...k: string[]) => Object.fromEntries(k.map((x) => [x, (rows[n] as unknown as Record<string, unknown>)[x]]))
    assert.deepEqual(pick('lo', 'type', 'owned', 'peer'), {type: 'loopback', owned: false, peer: null})
    assert.deepEqual(pick('v0', 'type', 'owned', 'up', 'peer', 'peerNetns'), {type: 'veth', owned: true, up: true, peer: null, peerNetns: 'hostB'})
    assert.deepEqual(pick('v2', 'peer', 'mtu', 'master'), {peer: 'v3', mtu: 1400, master: null})
    assert.deepEqual(pick('v3', 'peer', 'mtu', 'master'), {peer: 'v2', mtu: 1400, master: 'br0'})
    assert.deepEqual(pick('vx42', 'type', 'vni', 'remote', 'group', 'port', 'lower', 'owned'), {
      type: 'vxlan',
      vni: 42,
      remote: '192.0.2.2',
      group: null,
      port: 4789,
      lower: 'v2',
      owned: true,
    })
    assert.deepEqual(pick('vx43', 'vni', 'remote', 'group', 'port', 'owned'), {vni: 43, remote: null, group: '239.1.1.1', port: 8472, owned: false})
    assert.deepEqual(pick('vx6', 'remote'), {remote: '2001:db8::2'})
    assert.deepEqual(pick('mv0', 'type', 'mode', 'lower', 'mtu'), {type: 'macvlan', mode: 'private', lower: 'v2', mtu: 1400})
    assert.deepEqual(pick('br0', 'type', 'owned', 'vni', 'mode'), {type: 'bridge', owned: true, vni: null, mode: null})
    assert.match(String(rows.v0.mac), /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/)
  })

  it("listLinks filters by owner and type and names a veth peer's namespace", async () => {
    const rec = host()
    const r = rec.runner({netns: 'hostA'})
    assert.deepEqual(
      (await listLinks(r, {owned: true})).map((x) => x.name),
      ['v0', 'v3', 'v2', 'br0', 'vx42', 'vx6', 'mv0'],
    )
    assert.deepEqual(
      (await listLinks(r, {kind: 'vxlan'})).map((x) => x.name),
      ['vx42', 'vx43', 'vx6'],
    )
    assert.equal((await listLinks(r)).find((x) => x.name === 'v0')!.peerNetns, 'hostB')
  })

  it('bridges with their ports', async () => {
    assert.deepEqual(bridgeRows(A), [
      {name: 'br0', owned: true, state: get(A, 'br0').operstate, ports: ['v3']},
      {name: 'foreign0', owned: false, state: 'DOWN', ports: []},
    ])
    assert.deepEqual(
      (await listBridges(host().runner({netns: 'hostA'}), {owned: true})).map((b) => b.name),
      ['br0'],
    )
  })
})

describe('link: idempotence and conflicts', () => {
  const same: [string, LinkSpec][] = [
    ['v2', {name: 'v2', kind: 'veth', peer: 'v3', mtu: 1400}],
    ['br0', {name: 'br0', kind: 'bridge', up: true}],
    ['vx42', {name: 'vx42', kind: 'vxlan', vni: 42, remote: '192.0.2.2', dev: 'v2'}],
    ['vx43', {name: 'vx43', kind: 'vxlan', vni: 43, group: '239.1.1.1', dev: 'v2', port: 8472}],
    ['vx6', {name: 'vx6', kind: 'vxlan', vni: 6, remote: '2001:db8::2', dev: 'v2'}],
    ['mv0', {name: 'mv0', kind: 'macvlan', parent: 'v2', mode: 'private'}],
  ]

  it('the same link is a no-op', () => {
    for (const [n, spec] of same) assert.deepEqual(decideAdd(get(A, n), spec), {action: 'none', owned: n !== 'vx43'}, n)
    assert.deepEqual(decideAdd(undefined, same[0][1]), {action: 'create'})
  })

  it('a veth whose peer is in another namespace is the same only if that is the peer asked for', () => {
    const spec: LinkSpec = {name: 'v0', kind: 'veth', peer: 'v1', peerNetns: 'hostB', up: true}
    assert.deepEqual(decideAdd(get(A, 'v0'), spec, {netns: 'hostB', link: get(B, 'v1')}), {action: 'none', owned: true})
    assert.deepEqual(linkDiff(get(A, 'v0'), spec, {netns: 'hostC'}), ['its peer is in namespace hostC, not in hostB'])
    assert.deepEqual(linkDiff(get(A, 'v0'), {...spec, peer: 'v9'}, {netns: 'hostB', link: undefined}), ['its peer in namespace hostB is not v9'])
    assert.deepEqual(linkDiff(get(A, 'v0'), {name: 'v0', kind: 'veth', peer: 'v1'}, {netns: 'hostB'}), ['its peer is in namespace hostB, not here'])
    assert.deepEqual(linkDiff(get(A, 'v2'), {name: 'v2', kind: 'veth', peer: 'v3', peerNetns: 'hostB'}), [
      'its peer is v3 in this namespace, not v3 in namespace hostB',
    ])
  })

  it('an identical link that is down is brought up when --up is asked', () => {
    assert.deepEqual(decideAdd(get(A, 'vx42'), {...same[2][1], up: true}), {action: 'up', owned: true})
  })

  it('a different link is a conflict that says what differs', () => {
    const diff = (n: string, spec: LinkSpec) => linkDiff(get(A, n), spec)
    assert.deepEqual(diff('vx42', {name: 'vx42', kind: 'vxlan', vni: 43, remote: '192.0.2.3', dev: 'v0', port: 4790}), [
      'VNI 42, not 43',
      'remote 192.0.2.2, not 192.0.2.3',
      'port 4789, not 4790',
      'device v2, not v0',
    ])
    assert.deepEqual(diff('vx43', {name: 'vx43', kind: 'vxlan', vni: 43, remote: '192.0.2.2', dev: 'v2', port: 8472}), [
      'remote none, not 192.0.2.2',
      'group 239.1.1.1, not none',
    ])
    assert.deepEqual(diff('mv0', {name: 'mv0', kind: 'macvlan', parent: 'v3', mode: 'bridge', mtu: 1500}), [
      'parent v2, not v3',
      'mode private, not bridge',
      'MTU 1400, not 1500',
    ])
    assert.deepEqual(diff('v2', {name: 'v2', kind: 'veth', peer: 'v9'}), ['its peer is v3, not v9'])
    assert.deepEqual(diff('br0', {name: 'br0', kind: 'vxlan', vni: 1, remote: '192.0.2.1', dev: 'v2'}), ['it is a bridge, not a vxlan'])
    assert.equal(decideAdd(get(A, 'lo'), {name: 'lo', kind: 'bridge'}).action, 'conflict')
  })

  it('addLink: re-adding changes nothing; a conflict names the link and what differs (exit 1)', async () => {
    for (const [, spec] of same) {
      const rec = host()
      assert.deepEqual(await addLink(rec.runner({netns: 'hostA'}), spec), {outcome: 'exists', owned: spec.name !== 'vx43'})
      assert.deepEqual(mutations(rec), [])
    }
    let rec = host()
    const e = await rejects(
      addLink(rec.runner({netns: 'hostA'}), {name: 'vx42', kind: 'vxlan', vni: 7, remote: '192.0.2.2', dev: 'v2'}),
      'E_CONFLICT',
      1,
      /^link vx42 already exists in namespace hostA and differs: VNI 42, not 7; delete it first \("netkit link del vx42 --netns hostA"\)/,
    )
    assert.doesNotMatch(e.line, /--force/)
    await rejects(
      addLink(rec.runner({netns: 'hostA'}), {name: 'foreign0', kind: 'vxlan', vni: 7, remote: '192.0.2.2', dev: 'v2'}),
      'E_CONFLICT',
      1,
      /link foreign0 .*it is a bridge, not a vxlan; .*--force/,
    )
    await rejects(
      addLink(rec.runner({netns: 'hostA'}), {name: 'vnew', kind: 'veth', peer: 'v2'}),
      'E_CONFLICT',
      1,
      /^link v2 \(the --peer\) already exists in namespace hostA/,
    )
    assert.deepEqual(mutations(rec), [])
    rec = host()
    assert.deepEqual(await addLink(rec.runner({netns: 'hostA'}), {...same[2][1], up: true}), {outcome: 'brought-up', owned: true})
    assert.deepEqual(mutations(rec), [{ns: 'hostA', script: 'link set vx42 up\n'}])
    rec = host()
    assert.deepEqual(await addLink(rec.runner({netns: 'hostA'}), {...same[0][1], up: true}), {outcome: 'brought-up', owned: true})
    assert.deepEqual(mutations(rec), [{ns: 'hostA', script: 'link set v2 up\nlink set v3 up\n'}], 'both ends of a veth')
  })
})

describe('link: validation (exit 2, nothing read or changed)', () => {
  const bad: [LinkSpec, RegExp][] = [
    [{name: 'v0', kind: 'veth'}, /^a veth pair needs --peer NAME/],
    [{name: 'v0', kind: 'veth', peer: 'v0'}, /different names/],
    [{name: 'b0', kind: 'bridge', vni: 4}, /^--vni applies only to --type vxlan/],
    [{name: 'b0', kind: 'bridge', peer: 'x'}, /^--peer applies only to --type veth/],
    [{name: 'v0', kind: 'veth', peer: 'v1', parent: 'eth0'}, /^--parent applies only to --type macvlan/],
    [{name: 'x', kind: 'vxlan', remote: '192.0.2.1', dev: 'eth0'}, /needs --vni/],
    [{name: 'x', kind: 'vxlan', vni: 0, remote: '192.0.2.1', dev: 'eth0'}, /--vni 0 is out of range/],
    [{name: 'x', kind: 'vxlan', vni: 16_777_216, remote: '192.0.2.1', dev: 'eth0'}, /out of range/],
    [{name: 'x', kind: 'vxlan', vni: 1, dev: 'eth0'}, /exactly one of --remote IP and --group IP/],
    [{name: 'x', kind: 'vxlan', vni: 1, remote: '192.0.2.1', group: '239.1.1.1', dev: 'eth0'}, /exactly one/],
    [{name: 'x', kind: 'vxlan', vni: 1, remote: '192.0.2.1'}, /needs --dev IF/],
    [{name: 'x', kind: 'macvlan'}, /needs --parent IF/],
  ]
  it('refuses bad combinations', () => {
    for (const [spec, message] of bad) {
      assert.throws(
        () => checkSpec(spec),
        (e: NetkitError) => e.exit === 2 && message.test(e.line),
        JSON.stringify(spec),
      )
    }
  })

  it('refuses a missing lower device or namespace before any change', async () => {
    const rec = host()
    const r = rec.runner({netns: 'hostA'})
    await rejects(
      addLink(r, {name: 'vx1', kind: 'vxlan', vni: 5, remote: '192.0.2.2', dev: 'nope0'}),
      'E_NO_LINK',
      2,
      /^link nope0 \(the --dev of the VXLAN\) does not exist in namespace hostA; see "netkit link list --netns hostA"$/,
    )
    await rejects(addLink(r, {name: 'mv1', kind: 'macvlan', parent: 'nope0'}), 'E_NO_LINK', 2, /^link nope0 \(the --parent of the macvlan\) does not exist/)
    await rejects(
      addLink(r, {name: 'va', kind: 'veth', peer: 'vb', peerNetns: 'nkt-no-such-ns-x'}),
      'E_NO_NETNS',
      2,
      /^network namespace nkt-no-such-ns-x \(--peer-netns\) does not exist/,
    )
    assert.deepEqual(mutations(rec), [])
  })
})

describe('link set and del', () => {
  it('plans only what differs', () => {
    const v3 = get(A, 'v3')
    assert.deepEqual(planSet(v3, {mtu: 1400, master: 'br0'}), [])
    assert.deepEqual(
      planSet(v3, {mtu: 1500, master: 'br0', up: true}).map((l) => l.args.join(' ')),
      ['link set v3 mtu 1500 up'],
    )
    assert.deepEqual(
      planSet(v3, {nomaster: true, down: true}).map((l) => l.args.join(' ')),
      ['link set v3 nomaster'],
    )
    assert.deepEqual(
      planSet(get(A, 'v0'), {down: true}).map((l) => l.args.join(' ')),
      ['link set v0 down'],
    )
    assert.deepEqual(planSet(get(A, 'v0'), {up: true}), [])
    // A moved link arrives down: --up is sent with the move even if it is up now.
    assert.deepEqual(
      planSet(get(A, 'v0'), {toNetns: 'hostC', up: true}, {move: true}).map((l) => l.args.join(' ')),
      ['link set v0 netns hostC up'],
    )
  })

  it('refuses contradictions and empty changes', () => {
    for (const [change, message] of [
      [{}, /^nothing to change/],
      [{up: true, down: true}, /--up and --down/],
      [{master: 'br0', nomaster: true}, /--master and --nomaster/],
      [{master: 'v3'}, /its own master/],
      [{toNetns: 'x', master: 'br0'}, /cannot be combined with --to-netns/],
    ] as const) {
      assert.throws(
        () => checkChange('v3', change),
        (e: NetkitError) => e.exit === 2 && message.test(e.line),
      )
    }
  })

  it('setLink: no-op, change, unknown link or master (exit 2), master that is not a bridge', async () => {
    let rec = host()
    const r = rec.runner({netns: 'hostA'})
    assert.deepEqual(await setLink(r, 'v3', {mtu: 1400, master: 'br0'}), {changed: false, netns: 'hostA'})
    assert.deepEqual(await setLink(r, 'v2', {mtu: 1450, master: 'br0', up: true}), {changed: true, netns: 'hostA'})
    assert.deepEqual(mutations(rec), [{ns: 'hostA', script: 'link set v2 mtu 1450 master br0 up\n'}])
    rec = host()
    await rejects(
      setLink(rec.runner({netns: 'hostA'}), 'nope0', {up: true}),
      'E_NO_LINK',
      2,
      /^link nope0 does not exist in namespace hostA; see "netkit link list --netns hostA"$/,
    )
    await rejects(setLink(rec.runner({netns: 'hostA'}), 'v2', {master: 'nobr'}), 'E_NO_LINK', 2, /^link nobr \(the --master\) does not exist/)
    await rejects(setLink(rec.runner({netns: 'hostA'}), 'v2', {master: 'vx42'}), 'E_USAGE', 2, /^link vx42 is not a bridge/)
    assert.deepEqual(mutations(rec), [])
  })

  it("delLink: netkit's link goes, a foreign one is refused unless forced, an absent one is a no-op", async () => {
    const rec = host()
    const r = rec.runner({netns: 'hostA'})
    assert.equal(await delLink(r, 'vx42'), true)
    await rejects(delLink(r, 'vx43'), 'E_NOT_OWNED', 2, /^link vx43 was not created by netkit; .*--force/)
    assert.equal(await delLink(r, 'vx43', {force: true}), true)
    assert.equal(await delLink(r, 'gone0'), false)
    await rejects(delLink(r, 'v2', {kind: 'bridge'}), 'E_USAGE', 2, /^link v2 is a veth, not a bridge/)
    assert.deepEqual(
      mutations(rec).map((m) => m.script),
      ['link del vx42\n', 'link del vx43\n'],
    )
  })
})

describe('bridge attach and detach', () => {
  it('attach: already there is a no-op, elsewhere is a conflict unless forced', () => {
    assert.deepEqual(planAttach(get(A, 'br0'), get(A, 'v3')), [])
    assert.deepEqual(
      planAttach(get(A, 'br0'), get(A, 'v2')).map((l) => l.args.join(' ')),
      ['link set v2 master br0'],
    )
    assert.throws(
      () => planAttach(get(A, 'foreign0'), get(A, 'v3')),
      (e: NetkitError) => e.code === 'E_CONFLICT' && e.exit === 1 && /^link v3 is already a port of br0; .*--force/.test(e.line),
    )
    assert.deepEqual(
      planAttach(get(A, 'foreign0'), get(A, 'v3'), {force: true}).map((l) => l.args.join(' ')),
      ['link set v3 master foreign0'],
    )
    assert.throws(
      () => planAttach(get(A, 'foreign0'), get(A, 'v3'), {netns: 'hostA'}),
      (e: NetkitError) => e.line.includes('"netkit bridge detach v3 --netns hostA"'),
    )
  })

  it('attach and detach through the runner', async () => {
    const rec = host()
    const r = rec.runner({netns: 'hostA'})
    assert.equal(await attach(r, 'br0', 'v3'), false)
    assert.equal(await attach(r, 'br0', 'v2'), true)
    await rejects(attach(r, 'vx42', 'v2'), 'E_USAGE', 2, /^link vx42 is not a bridge/)
    await rejects(attach(r, 'nobr', 'v2'), 'E_NO_LINK', 2, /^link nobr \(the bridge\) does not exist/)
    await rejects(attach(r, 'br0', 'nope0'), 'E_NO_LINK', 2, /^link nope0 does not exist/)
    assert.deepEqual(await detach(r, 'v2'), {changed: false})
    assert.deepEqual(await detach(r, 'v3'), {changed: true, bridge: 'br0'})
    assert.deepEqual(
      mutations(rec).map((m) => m.script),
      ['link set v2 master br0\n', 'link set v3 nomaster\n'],
    )
  })
})
