/**
 * link and bridge commands against real namespaces (made by hosts.ts, always removed).
 * Everything is read back with `ip -j -d link`, as a user would check it.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import type {CliResult} from '../helpers/cli.js'
import {skipUnlessRoot} from '../helpers/hosts.js'
import {hostForFile} from '../helpers/realhost.js'

describe('netkit link and bridge (integration)', {skip: skipUnlessRoot}, () => {
  // One simulated host (realhost.ts): netkit runs there with its defaults; the test's namespaces are the host's own.
  const {nk, sh, tryRun, ipj, dump, makeNs} = hostForFile('lk')
  const ok = (r: CliResult, what: string) => assert.equal(r.code, 0, `${what}: ${r.stderr}`)
  const link = (ns: string, name: string) => ipj(ns, ['-d', 'link', 'show', name])[0]
  const exists = (ns: string, name: string) => tryRun('ip', ['-n', ns, 'link', 'show', name]).code === 0
  const isUp = (ns: string, name: string) => (link(ns, name).flags as string[]).includes('UP')
  const nothingToDo = (r: CliResult, what: string) => {
    ok(r, what)
    assert.match(r.stdout, /already exists; nothing to do\n$/, what)
  }
  const conflict = (r: CliResult, name: string, differs: RegExp) => {
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, new RegExp(`^error: link ${name} already exists in namespace \\S+ and differs: `))
    assert.match(r.stderr, differs)
    assert.equal(r.stderr.trim().split('\n').length, 1)
  }
  /** --dry-run prints exactly these commands on stdout and changes nothing in the namespaces. */
  const dryRun = (args: string[], expected: string[], ...namespaces: string[]) => {
    const before = namespaces.map(dump)
    const r = nk(...args, '--dry-run')
    ok(r, `dry run of ${args.join(' ')}`)
    assert.equal(r.stdout, expected.map((l) => `${l}\n`).join(''))
    assert.deepEqual(namespaces.map(dump), before, 'a dry run changes nothing')
  }
  const delTwice = (ns: string, name: string) => {
    dryRun(['link', 'del', name, '--netns', ns], [`ip -n ${ns} link del ${name}`], ns)
    ok(nk('link', 'del', name, '--netns', ns), `del ${name}`)
    assert.equal(exists(ns, name), false, `${name} is gone`)
    const again = nk('link', 'del', name, '--netns', ns)
    ok(again, `del ${name} again`)
    assert.match(again.stdout, /already absent; nothing to do/)
  }

  it('veth with its peer in a second namespace: add, read back, re-add, conflict, dry run, list, del', () => {
    const A = makeNs('va')
    const B = makeNs('vb')
    const add = ['link', 'add', 'v0', '--type', 'veth', '--peer', 'v1', '--peer-netns', B, '--up', '--mtu', '1400', '--netns', A]
    dryRun(
      add,
      [
        `ip -n ${A} link add v0 mtu 1400 type veth peer name v1 mtu 1400 netns ${B}`,
        `ip -n ${A} link set v0 alias netkit`,
        `ip -n ${A} link set v0 up`,
        `ip -n ${B} link set v1 alias netkit`,
        `ip -n ${B} link set v1 up`,
      ],
      A,
      B,
    )
    const r = nk(...add)
    ok(r, 'add')
    assert.match(r.stdout, /^added veth link v0\n$/)
    const v0 = link(A, 'v0')
    const v1 = link(B, 'v1')
    assert.deepEqual([v0.linkinfo.info_kind, v0.ifalias, v0.mtu], ['veth', 'netkit', 1400])
    assert.deepEqual([v1.linkinfo.info_kind, v1.ifalias, v1.mtu], ['veth', 'netkit', 1400], 'both ends are marked, with the MTU')
    assert.deepEqual([v0.link_index, v1.link_index], [v1.ifindex, v0.ifindex], "they are each other's peer")
    assert.ok(isUp(A, 'v0') && isUp(B, 'v1'))

    nothingToDo(nk(...add), 're-add')
    conflict(nk('link', 'add', 'v0', '--type', 'veth', '--peer', 'v9', '--peer-netns', B, '--netns', A), 'v0', /its peer in namespace \S+ is not v9/)
    conflict(nk('link', 'add', 'v0', '--type', 'veth', '--peer', 'v1', '--netns', A), 'v0', /its peer is in namespace \S+, not here/)
    conflict(nk('link', 'add', 'v0', '--type', 'bridge', '--netns', A), 'v0', /it is a veth, not a bridge/)
    const peerTaken = nk('link', 'add', 'v2', '--type', 'veth', '--peer', 'v1', '--peer-netns', B, '--netns', A)
    assert.equal(peerTaken.code, 1)
    assert.match(peerTaken.stderr, /^error: link v1 \(the --peer\) already exists in namespace /)
    assert.equal(exists(A, 'v2'), false)

    const rows = nk('link', 'list', '--json', '--netns', A).json.result
    assert.deepEqual(
      rows.find((x: any) => x.name === 'v0'),
      {
        name: 'v0',
        type: 'veth',
        state: v0.operstate,
        up: true,
        mtu: 1400,
        mac: v0.address,
        master: null,
        owned: true,
        peer: null,
        peerNetns: B,
        lower: null,
        vni: null,
        remote: null,
        group: null,
        port: null,
        mode: null,
      },
    )
    const table = nk('link', 'list', '--owned', '--netns', A)
    ok(table, 'list')
    assert.match(table.stdout, /^NAME +TYPE +STATE +MTU +MAC +MASTER +OWNER *\n/)
    assert.match(table.stdout, /\nv0 +veth +\S+ +1400 +[0-9a-f:]{17} +- +netkit *\n?$/)

    delTwice(A, 'v0')
    assert.equal(exists(B, 'v1'), false, 'the peer went with it')
  })

  it('bridge: link add and bridge add, attach, detach (idempotent, conflict unless --force), list, del', () => {
    const A = makeNs('br')
    ok(nk('link', 'add', 'p0', '--type', 'veth', '--peer', 'p1', '--netns', A), 'ports')
    dryRun(
      ['link', 'add', 'br0', '--type', 'bridge', '--up', '--netns', A],
      [`ip -n ${A} link add br0 type bridge`, `ip -n ${A} link set br0 alias netkit`, `ip -n ${A} link set br0 up`],
      A,
    )
    ok(nk('link', 'add', 'br0', '--type', 'bridge', '--up', '--netns', A), 'add br0')
    assert.deepEqual([link(A, 'br0').linkinfo.info_kind, link(A, 'br0').ifalias, isUp(A, 'br0')], ['bridge', 'netkit', true])
    nothingToDo(nk('link', 'add', 'br0', '--type', 'bridge', '--netns', A), 're-add')
    nothingToDo(nk('bridge', 'add', 'br0', '--netns', A), 'bridge add of the same')
    conflict(nk('link', 'add', 'br0', '--type', 'bridge', '--mtu', '1400', '--netns', A), 'br0', /MTU 1500, not 1400/)
    ok(nk('bridge', 'add', 'br1', '--netns', A), 'bridge add')
    assert.deepEqual([link(A, 'br1').linkinfo.info_kind, link(A, 'br1').ifalias, isUp(A, 'br1')], ['bridge', 'netkit', true])

    dryRun(['bridge', 'attach', 'br0', 'p0', '--netns', A], [`ip -n ${A} link set p0 master br0`], A)
    ok(nk('bridge', 'attach', 'br0', 'p0', '--netns', A), 'attach')
    assert.equal(link(A, 'p0').master, 'br0')
    const again = nk('bridge', 'attach', 'br0', 'p0', '--netns', A)
    ok(again, 'attach again')
    assert.match(again.stdout, /p0 is already a port of br0; nothing to do/)
    const elsewhere = nk('bridge', 'attach', 'br1', 'p0', '--netns', A)
    assert.equal(elsewhere.code, 1)
    assert.match(elsewhere.stderr, /^error: link p0 is already a port of br0; .*--force/)
    assert.equal(link(A, 'p0').master, 'br0', 'left where it was')
    ok(nk('bridge', 'attach', 'br1', 'p0', '--force', '--netns', A), 'attach --force')
    assert.equal(link(A, 'p0').master, 'br1')
    ok(nk('bridge', 'attach', 'br0', 'p1', '--netns', A), 'attach p1')

    const list = nk('bridge', 'list', '--json', '--netns', A)
    ok(list, 'bridge list')
    assert.deepEqual(list.json.result, [
      {name: 'br0', owned: true, state: link(A, 'br0').operstate, ports: ['p1']},
      {name: 'br1', owned: true, state: link(A, 'br1').operstate, ports: ['p0']},
    ])
    sh('ip', ['-n', A, 'link', 'add', 'fbr', 'type', 'bridge'])
    assert.deepEqual(
      nk('bridge', 'list', '--owned', '--json', '--netns', A).json.result.map((b: any) => b.name),
      ['br0', 'br1'],
    )
    assert.match(
      nk('bridge', 'list', '--netns', A).stdout,
      /^NAME +STATE +OWNER +PORTS *\nbr0 +\S+ +netkit +p1 *\nbr1 +\S+ +netkit +p0 *\nfbr +\S+ +- +- *\n?$/,
    )

    dryRun(['bridge', 'detach', 'p0', '--netns', A], [`ip -n ${A} link set p0 nomaster`], A)
    ok(nk('bridge', 'detach', 'p0', '--netns', A), 'detach')
    assert.equal(link(A, 'p0').master, undefined)
    const noop = nk('bridge', 'detach', 'p0', '--netns', A)
    ok(noop, 'detach again')
    assert.match(noop.stdout, /p0 is not in a bridge; nothing to do/)

    const notBridge = nk('bridge', 'del', 'p0', '--netns', A)
    assert.equal(notBridge.code, 2)
    assert.match(notBridge.stderr, /^error: link p0 is a veth, not a bridge/)
    const foreign = nk('bridge', 'del', 'fbr', '--netns', A)
    assert.equal(foreign.code, 2)
    assert.match(foreign.stderr, /^error: link fbr was not created by netkit; .*--force/)
    assert.ok(exists(A, 'fbr'))
    ok(nk('bridge', 'del', 'br0', '--netns', A), 'bridge del')
    assert.equal(exists(A, 'br0'), false)
    assert.equal(link(A, 'p1').master, undefined, 'its port stays, detached')
    assert.match(nk('bridge', 'del', 'br0', '--netns', A).stdout, /already absent; nothing to do/)
    delTwice(A, 'br1')
  })

  it('vxlan: unicast and multicast, read back, re-add, conflict, dry run, del', () => {
    const A = makeNs('vx')
    ok(nk('link', 'add', 'u0', '--type', 'veth', '--peer', 'u1', '--up', '--netns', A), 'underlay')
    const add = ['link', 'add', 'vx42', '--type', 'vxlan', '--vni', '42', '--remote', '192.0.2.2', '--dev', 'u0', '--netns', A]
    dryRun(add, [`ip -n ${A} link add vx42 type vxlan id 42 remote 192.0.2.2 dev u0 dstport 4789`, `ip -n ${A} link set vx42 alias netkit`], A)
    ok(nk(...add), 'add')
    const vx = link(A, 'vx42')
    assert.deepEqual([vx.linkinfo.info_kind, vx.ifalias], ['vxlan', 'netkit'])
    assert.deepEqual(
      [vx.linkinfo.info_data.id, vx.linkinfo.info_data.remote, vx.linkinfo.info_data.port, vx.linkinfo.info_data.link],
      [42, '192.0.2.2', 4789, 'u0'],
    )
    nothingToDo(nk(...add), 're-add')
    conflict(nk('link', 'add', 'vx42', '--type', 'vxlan', '--vni', '43', '--remote', '192.0.2.2', '--dev', 'u0', '--netns', A), 'vx42', /VNI 42, not 43/)
    conflict(
      nk('link', 'add', 'vx42', '--type', 'vxlan', '--vni', '42', '--remote', '192.0.2.3', '--dev', 'u0', '--port', '4790', '--netns', A),
      'vx42',
      /remote 192\.0\.2\.2, not 192\.0\.2\.3; port 4789, not 4790/,
    )
    assert.equal(link(A, 'vx42').linkinfo.info_data.id, 42, 'the conflict changed nothing')

    const up = nk(...add, '--up')
    ok(up, 're-add --up')
    assert.match(up.stdout, /^brought up existing vxlan link vx42\n$/)
    assert.ok(isUp(A, 'vx42'))

    const mc = ['link', 'add', 'vx7', '--type', 'vxlan', '--vni', '16777215', '--group', '239.1.1.7', '--dev', 'u0', '--port', '8472', '--netns', A]
    ok(nk(...mc), 'multicast')
    const d = link(A, 'vx7').linkinfo.info_data
    assert.deepEqual([d.id, d.group, d.port, d.link, d.remote], [16777215, '239.1.1.7', 8472, 'u0', undefined])
    nothingToDo(nk(...mc), 're-add multicast')
    const row = nk('link', 'list', '--type', 'vxlan', '--json', '--netns', A).json.result.find((x: any) => x.name === 'vx7')
    assert.deepEqual([row.vni, row.group, row.remote, row.port, row.lower, row.owned], [16777215, '239.1.1.7', null, 8472, 'u0', true])

    // A second device with the same VNI and port: the kernel's refusal in plain words, nothing made.
    const before = dump(A)
    const same = nk('link', 'add', 'vx43', '--type', 'vxlan', '--vni', '42', '--remote', '192.0.2.9', '--dev', 'u0', '--netns', A)
    assert.equal(same.code, 1)
    assert.match(same.stderr, /^error: another VXLAN device in namespace \S+ already uses the VNI of link vx43/m)
    assert.equal(dump(A), before)

    delTwice(A, 'vx42')
    delTwice(A, 'vx7')
  })

  it('macvlan: add, read back, re-add, conflict, dry run, del', () => {
    const A = makeNs('mv')
    ok(nk('link', 'add', 'm0', '--type', 'veth', '--peer', 'm1', '--netns', A), 'parent')
    const add = ['link', 'add', 'mv0', '--type', 'macvlan', '--parent', 'm0', '--mode', 'private', '--netns', A]
    dryRun(add, [`ip -n ${A} link add mv0 link m0 type macvlan mode private`, `ip -n ${A} link set mv0 alias netkit`], A)
    ok(nk(...add), 'add')
    const mv = link(A, 'mv0')
    assert.deepEqual([mv.linkinfo.info_kind, mv.linkinfo.info_data.mode, mv.link, mv.ifalias], ['macvlan', 'private', 'm0', 'netkit'])
    nothingToDo(nk(...add), 're-add')
    conflict(nk('link', 'add', 'mv0', '--type', 'macvlan', '--parent', 'm0', '--netns', A), 'mv0', /mode private, not bridge/)
    conflict(nk('link', 'add', 'mv0', '--type', 'macvlan', '--parent', 'm1', '--mode', 'private', '--netns', A), 'mv0', /parent m0, not m1/)
    ok(nk('link', 'add', 'mv1', '--type', 'macvlan', '--parent', 'm0', '--netns', A), 'default mode')
    assert.equal(link(A, 'mv1').linkinfo.info_data.mode, 'bridge')
    delTwice(A, 'mv0')
    delTwice(A, 'mv1')
  })

  it('link set: --mtu, --master, --up, --down, --to-netns; only what differs; dry run', () => {
    const A = makeNs('sa')
    const B = makeNs('sb')
    ok(nk('link', 'add', 's0', '--type', 'veth', '--peer', 's1', '--netns', A), 'veth')
    ok(nk('bridge', 'add', 'sbr', '--netns', A), 'bridge')
    dryRun(['link', 'set', 's0', '--mtu', '1400', '--master', 'sbr', '--up', '--netns', A], [`ip -n ${A} link set s0 mtu 1400 master sbr up`], A)
    let r = nk('link', 'set', 's0', '--mtu', '1400', '--master', 'sbr', '--up', '--netns', A)
    ok(r, 'set')
    assert.match(r.stdout, /^changed link s0\n$/)
    assert.deepEqual([link(A, 's0').mtu, link(A, 's0').master, isUp(A, 's0')], [1400, 'sbr', true])
    r = nk('link', 'set', 's0', '--mtu', '1400', '--master', 'sbr', '--up', '--netns', A)
    ok(r, 'set again')
    assert.match(r.stdout, /^link s0 is already as asked; nothing to do\n$/)
    r = nk('link', 'set', 's0', '--mtu', '1500', '--master', 'sbr', '--up', '--netns', A, '--json')
    ok(r, 'only the MTU')
    assert.deepEqual(r.json.result.commands, [`ip -n ${A} link set s0 mtu 1500`])
    ok(nk('link', 'set', 's0', '--nomaster', '--down', '--netns', A), 'nomaster down')
    assert.deepEqual([link(A, 's0').master, isUp(A, 's0')], [undefined, false])

    dryRun(['link', 'set', 's1', '--to-netns', B, '--up', '--netns', A], [`ip -n ${A} link set s1 netns ${B} up`], A, B)
    r = nk('link', 'set', 's1', '--to-netns', B, '--up', '--netns', A)
    ok(r, 'move')
    assert.equal(exists(A, 's1'), false)
    assert.deepEqual([link(B, 's1').ifalias, isUp(B, 's1')], ['netkit', true], 'moved, marked and up there')
    r = nk('link', 'set', 's1', '--to-netns', B, '--up', '--netns', A)
    ok(r, 'move again')
    assert.match(r.stdout, /^link s1 \(in namespace \S+\) is already as asked; nothing to do\n$/)
    r = nk('link', 'set', 's1', '--to-netns', B, '--mtu', '1300', '--netns', A)
    ok(r, 'change after the move')
    assert.equal(link(B, 's1').mtu, 1300)

    for (const [args, message] of [
      [['s0', '--master', 's0'], /its own master/],
      [['s0', '--master', 'nobr'], /^error: link nobr \(the --master\) does not exist in namespace \S+; see "netkit link list --netns \S+"\n$/],
      [['s0', '--master', 'lo'], /^error: link lo is not a bridge/],
      [['s0', '--to-netns', 'nkt-no-such-ns'], /^error: network namespace nkt-no-such-ns \(--to-netns\) does not exist/],
      [['s0', '--to-netns', B, '--master', 'sbr'], /cannot be combined with --to-netns/],
      [['s0'], /^error: nothing to change/],
      [['s0', '--up', '--down'], /^error: /],
    ] as [string[], RegExp][]) {
      const before = [dump(A), dump(B)]
      const bad = nk('link', 'set', ...args, '--netns', A)
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`)
      assert.match(bad.stderr, message)
      assert.equal(bad.stderr.trim().split('\n').length, 1)
      assert.deepEqual([dump(A), dump(B)], before)
    }
    // The kernel takes the MTU, then refuses the bridge: the MTU is put back, and the refusal said plainly (exit 2).
    ok(nk('bridge', 'add', 's2', '--netns', A), 'a second bridge')
    const before = dump(A)
    const refused = nk('link', 'set', 's2', '--mtu', '1400', '--master', 'sbr', '--netns', A)
    assert.equal(refused.code, 2, refused.stderr)
    assert.match(refused.stderr, /^error: link s2 is a bridge, and a bridge cannot be a port of another bridge; join two bridges with a veth pair/m)
    assert.equal(dump(A), before, 'MTU as before')
  })

  it('a link made by ip itself (no alias) is refused by link del (exit 2) and left alone; --force deletes it', () => {
    const A = makeNs('fo')
    sh('ip', ['-n', A, 'link', 'add', 'f0', 'type', 'veth', 'peer', 'name', 'f1'])
    const before = dump(A)
    for (const name of ['f0', 'f1']) {
      const r = nk('link', 'del', name, '--netns', A)
      assert.equal(r.code, 2)
      assert.equal(r.stderr, `error: link ${name} was not created by netkit; netkit leaves other tools' links alone; pass --force to delete it anyway\n`)
    }
    assert.equal(dump(A), before)
    assert.deepEqual(nk('link', 'list', '--owned', '--json', '--netns', A).json.result, [])
    const same = nk('link', 'add', 'f0', '--type', 'veth', '--peer', 'f1', '--netns', A)
    nothingToDo(same, "the same link, not netkit's")
    assert.equal(same.stdout, 'veth link f0 (not created by netkit) already exists; nothing to do\n')
    assert.equal(link(A, 'f0').ifalias, undefined, 'not claimed by a re-add')
    ok(nk('link', 'del', 'f0', '--force', '--netns', A), 'del --force')
    assert.equal(exists(A, 'f0'), false)
  })

  it('bad input exits 2 with one line on stderr and changes nothing', () => {
    const A = makeNs('bd')
    sh('ip', ['-n', A, 'link', 'add', 'e0', 'type', 'veth', 'peer', 'name', 'e1'])
    const vx = (vni: string, ...rest: string[]) => ['link', 'add', 'vx1', '--type', 'vxlan', '--vni', vni, ...rest]
    const cases: [string[], RegExp][] = [
      [['link', 'add', 'a-name-of-16-chr', '--type', 'bridge'], /16 characters long; Linux allows at most 15/],
      [['link', 'add', 'a/b', '--type', 'bridge'], /has characters/],
      [['link', 'add', 'a b', '--type', 'bridge'], /has characters/],
      [['link', 'add', 'x;y', '--type', 'bridge'], /has characters/],
      [['link', 'add', 'b0', '--type', 'dummy'], /^error: /],
      [['link', 'add', 'v9', '--type', 'veth'], /needs --peer NAME/],
      [['link', 'add', 'v9', '--type', 'veth', '--peer', 'a-name-of-16-chr'], /at most 15/],
      [
        ['link', 'add', 'v9', '--type', 'veth', '--peer', 'v8', '--peer-netns', 'nkt-no-such-ns'],
        /network namespace nkt-no-such-ns \(--peer-netns\) does not exist/,
      ],
      [vx('0', '--remote', '192.0.2.2', '--dev', 'e0'), /VNI 0 is out of range/],
      [vx('16777216', '--remote', '192.0.2.2', '--dev', 'e0'), /VNI 16777216 is out of range/],
      [vx('5', '--dev', 'e0'), /exactly one of --remote IP and --group IP/],
      [vx('5', '--remote', '192.0.2.2', '--group', '239.1.1.1', '--dev', 'e0'), /exactly one/],
      [vx('5', '--group', '192.0.2.2', '--dev', 'e0'), /not a multicast address/],
      [vx('5', '--remote', '239.1.1.1', '--dev', 'e0'), /is a multicast address/],
      [vx('5', '--remote', '192.0.2.2'), /needs --dev IF/],
      [
        vx('5', '--remote', '192.0.2.2', '--dev', 'nope0'),
        /^error: link nope0 \(the --dev of the VXLAN\) does not exist in namespace \S+; see "netkit link list --netns \S+"\n$/,
      ],
      [vx('5', '--remote', '192.0.2.2', '--dev', 'e0', '--port', '70000'), /out of range/],
      [['link', 'add', 'mv1', '--type', 'macvlan', '--parent', 'nope0'], /^error: link nope0 \(the --parent of the macvlan\) does not exist/],
      [['link', 'add', 'mv1', '--type', 'macvlan'], /needs --parent IF/],
      [['link', 'add', 'mv1', '--type', 'macvlan', '--parent', 'e0', '--mode', 'sideways'], /^error: /],
      [['link', 'add', 'b1', '--type', 'bridge', '--vni', '5'], /--vni applies only to --type vxlan/],
      [['link', 'add', 'b1', '--type', 'bridge', '--mtu', '70000'], /MTU 70000 is out of range/],
      [['link', 'set', 'e0', '--mtu', '70000'], /MTU 70000 is out of range/],
      [['link', 'set', 'nope0', '--up'], /^error: link nope0 does not exist/],
      [['link', 'del', 'a/b'], /has characters/],
      [['bridge', 'attach', 'nobr', 'e0'], /^error: link nobr \(the bridge\) does not exist/],
      [['bridge', 'attach', 'e1', 'e0'], /^error: link e1 is not a bridge/],
      [['bridge', 'detach', 'nope0'], /^error: link nope0 does not exist/],
      [['bridge', 'add', 'x;y'], /has characters/],
    ]
    const before = dump(A)
    for (const [c, message] of cases) {
      const r = nk(...c, '--netns', A)
      assert.equal(r.code, 2, `${c.join(' ')}: ${r.stderr}`)
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${c.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, /^error: /)
      assert.match(r.stderr, message, c.join(' '))
      assert.equal(r.stdout, '')
    }
    assert.equal(dump(A), before, 'nothing changed')
  })
})
