import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {NetkitError} from '../../src/lib/errors.js'
import {Runner, Secret} from '../../src/lib/runner.js'
import {Recorder} from '../helpers/recorder.js'

describe('runner', () => {
  it('runs ip inside a namespace with -n and other tools with ip netns exec', async () => {
    const rec = new Recorder()
    const r = rec.runner({netns: 'a'})
    await r.run({tool: 'ip', args: ['link', 'set', 'lo', 'up']})
    await r.run({tool: 'sysctl', args: ['-w', 'net/ipv4/ip_forward=1']})
    assert.deepEqual(rec.lines, ['ip -n a link set lo up', 'ip netns exec a sysctl -w net/ipv4/ip_forward=1'])
    assert.deepEqual(rec.echoed, ['[#] ip -n a link set lo up', '[#] ip netns exec a sysctl -w net/ipv4/ip_forward=1'])
  })

  it('in dry-run prints mutations, runs nothing that mutates, and still reads', async () => {
    const rec = new Recorder().on('-j route', {stdout: '[]'})
    const r = rec.runner({dryRun: true})
    assert.equal(await r.read({tool: 'ip', args: ['-j', 'route', 'show']}), '[]')
    await r.run({tool: 'ip', args: ['route', 'add', '10.0.0.0/24', 'dev', 'x']})
    await r.batch([{args: ['route', 'add', '10.1.0.0/24', 'dev', 'x']}])
    assert.deepEqual(rec.lines, ['ip -j route show'])
    assert.deepEqual(rec.echoed, ['ip route add 10.0.0.0/24 dev x', 'ip route add 10.1.0.0/24 dev x'])
  })

  it('sends many changes as one ip -batch over stdin', async () => {
    const rec = new Recorder()
    const r = rec.runner({netns: 'n1'})
    await r.batch([{args: ['route', 'add', '10.0.0.0/24', 'dev', 'a']}, {args: ['rule', 'add', 'to', '10.0.0.0/24', 'table', '100']}])
    assert.equal(rec.calls.length, 1)
    assert.deepEqual(rec.calls[0].args, ['-n', 'n1', '-batch', '-'])
    assert.equal(rec.calls[0].input, 'route add 10.0.0.0/24 dev a\nrule add to 10.0.0.0/24 table 100\n')
  })

  it("echoes a batch's lines in one call of sinkLines, in order, each in the journal", async () => {
    const rec = new Recorder()
    const calls: string[][] = []
    const r = new Runner({exec: rec.exec, sink: () => assert.fail('one line at a time'), sinkLines: (ls) => calls.push(ls)})
    await r.batch([{args: ['route', 'add', '10.0.0.0/24', 'dev', 'a']}, {args: ['route', 'add', '10.0.1.0/24', 'dev', 'a']}])
    assert.deepEqual(calls, [['[#] ip route add 10.0.0.0/24 dev a', '[#] ip route add 10.0.1.0/24 dev a']])
    assert.deepEqual(r.journal, ['ip route add 10.0.0.0/24 dev a', 'ip route add 10.0.1.0/24 dev a'])
  })

  it('quotes a batch as word by word: plain lines taken whole, the others quoted, secrets redacted only when shown', async () => {
    const rec = new Recorder()
    const r = rec.runner({netns: 'n1'})
    const lines = [
      {args: ['route', 'add', '10.0.0.0/24', 'dev', 'a', 'proto', '178', 'table', '254']},
      // A word with a space would read as two words if taken whole; an empty one, as none.
      {args: ['link', 'set', 'x y', 'alias', "it's"]},
      {args: ['link', 'set', 'v0', 'alias', '']},
      {args: ['link', 'set', 'v0', 'alias', '#x', 'mtu', '1400']},
      {args: ['xfrm', 'state', 'add', 'enc', 'cbc(aes)', new Secret('0x0011223344556677')]},
    ]
    await r.batch(lines)
    assert.equal(
      rec.calls[0].input,
      'route add 10.0.0.0/24 dev a proto 178 table 254\nlink set "x y" alias "it\'s"\nlink set v0 alias ""\nlink set v0 alias "#x" mtu 1400\nxfrm state add enc cbc(aes) 0x0011223344556677\n',
    )
    assert.deepEqual(r.journal, [
      'ip -n n1 route add 10.0.0.0/24 dev a proto 178 table 254',
      "ip -n n1 link set 'x y' alias 'it'\\''s'",
      "ip -n n1 link set v0 alias ''",
      "ip -n n1 link set v0 alias '#x' mtu 1400",
      "ip -n n1 xfrm state add enc 'cbc(aes)' <redacted>",
    ])
    // A value the runner knows as secret is redacted inside a plain word too (shown), never in the script.
    const known = rec.runner()
    known.addSecret('s3cr3tvalue')
    await known.batch([{args: ['link', 'set', 'v0', 'alias', 'key-s3cr3tvalue']}])
    assert.equal(rec.calls[1].input, 'link set v0 alias key-s3cr3tvalue\n')
    assert.deepEqual(known.journal, ["ip link set v0 alias 'key-<redacted>'"])
  })

  it('runs lines that need -6 (IPv6 rules) in their own ip -6 -batch, after the others, and shows them as such', async () => {
    const rec = new Recorder().on(/-6 -batch/, {exitCode: 1, stderr: 'Error: Invalid source address.\nCommand failed -:2\n'})
    const r = rec.runner({netns: 'n1'})
    const lines = [
      {args: ['rule', 'add', 'from', 'fd00::/64', 'table', '7'], family: 6 as const},
      {args: ['route', 'add', '10.0.0.0/24', 'dev', 'a']},
      {args: ['rule', 'add', 'fwmark', '0x5', 'table', '7'], family: 6 as const},
    ]
    await assert.rejects(r.batch(lines), (e: unknown) => {
      assert.equal((e as {failedIndex?: number}).failedIndex, 2, 'the index is the failed line in the lines given')
      assert.equal((e as {command?: string}).command, 'ip -n n1 -6 rule add fwmark 0x5 table 7')
      return true
    })
    assert.deepEqual(
      rec.calls.map((c) => [c.args.join(' '), c.input]),
      [
        ['-n n1 -batch -', 'route add 10.0.0.0/24 dev a\n'],
        ['-n n1 -6 -batch -', 'rule add from fd00::/64 table 7\nrule add fwmark 0x5 table 7\n'],
      ],
    )
    assert.deepEqual(r.journal, [
      'ip -n n1 route add 10.0.0.0/24 dev a',
      'ip -n n1 -6 rule add from fd00::/64 table 7',
      'ip -n n1 -6 rule add fwmark 0x5 table 7',
    ])
  })

  it('never puts a secret on an argv: ip with a secret goes through stdin, and it is redacted when shown', async () => {
    const rec = new Recorder()
    const r = rec.runner()
    const key = new Secret('0x00112233445566778899aabbccddeeff')
    await r.run({tool: 'ip', args: ['xfrm', 'state', 'add', 'enc', 'cbc(aes)', key]})
    assert.equal(rec.calls.length, 1)
    assert.ok(!rec.calls[0].args.join(' ').includes('00112233'), 'key on argv')
    assert.ok(rec.calls[0].input?.includes('0x00112233445566778899aabbccddeeff'))
    assert.deepEqual(rec.echoed, ["[#] ip xfrm state add enc 'cbc(aes)' <redacted>"])
    assert.throws(() => r.argv({tool: 'wg', args: ['set', key]}), /secret/)
  })

  it('translates a failure into one line, keeps the raw message, and redacts secrets in it', async () => {
    const rec = new Recorder().on('route add', {exitCode: 2, stderr: 'RTNETLINK answers: File exists\n'})
    const r = rec.runner({netns: 'n1'})
    await assert.rejects(r.run({tool: 'ip', args: ['route', 'add', '10.0.0.0/24', 'dev', 'a'], object: 'route 10.0.0.0/24'}), (e: NetkitError) => {
      assert.equal(e.code, 'E_EXISTS')
      assert.match(e.line, /route 10\.0\.0\.0\/24 already exists in namespace n1/)
      assert.equal(e.detail, 'RTNETLINK answers: File exists')
      assert.equal(e.exit, 1)
      return true
    })
  })

  it('says which tool failed when a wrapper ran it (nsenter, unshare), not the wrapper', async () => {
    const rec = new Recorder()
      .on('persistent-keepalive', {exitCode: 1, stderr: 'Unable to modify interface: Resource temporarily unavailable\n'})
      .on('wireguard-go', {exitCode: 1, stderr: 'ERROR: (wg-x) Failed to create TUN device\n'})
      .on('nosuchtool', {exitCode: 127, stderr: 'nsenter: failed to execute nosuchtool: No such file or directory\n'})
    const r = rec.runner({netns: 'n1'})
    const failure = async (args: string[], tool = 'nsenter') =>
      (await r.run({tool, args, object: 'WireGuard device wg-x'}).then(
        () => assert.fail('no error'),
        (e) => e,
      )) as NetkitError
    const wg = await failure(['-t', '4242', '-m', 'wg', 'set', 'wg-x', 'peer', 'K=', 'persistent-keepalive', '0'])
    assert.equal(wg.what, 'wg failed on WireGuard device wg-x: Unable to modify interface: Resource temporarily unavailable')
    assert.match(wg.command ?? '', /^ip netns exec n1 nsenter -t 4242 -m wg set/, 'the full command stays on the error')
    const go = await failure(
      ['--mount', '--propagation', 'private', 'sh', '-c', 'mount ... && exec "$@"', 'netkit-wg', 'wireguard-go', '-f', 'wg-x'],
      'unshare',
    )
    assert.match(go.what, /^wireguard-go failed on WireGuard device wg-x: ERROR/)
    const missing = await failure(['-t', '4242', '-m', 'nosuchtool', 'show'])
    assert.equal(missing.code, 'E_TOOL_MISSING')
    assert.equal(missing.what, 'nosuchtool is not installed')
  })

  it('reports which batch line failed', async () => {
    const rec = new Recorder().on('-batch', {exitCode: 1, stderr: 'Error: Nexthop has invalid gateway.\nCommand failed -:2\n'})
    const r = rec.runner()
    await assert.rejects(
      r.batch([
        {args: ['route', 'add', '10.0.0.0/24', 'dev', 'a'], object: 'first'},
        {args: ['route', 'add', '10.1.0.0/24', 'via', '1.2.3.4'], object: 'route 10.1.0.0/24'},
      ]),
      (e: NetkitError & {failedIndex: number}) => {
        assert.equal(e.failedIndex, 1)
        assert.equal(e.code, 'E_UNREACHABLE_GW')
        assert.match(e.message, /route 10\.1\.0\.0\/24/)
        return true
      },
    )
  })

  it('names missing ESP support when an SA cannot be added', async () => {
    const rec = new Recorder().on('-batch', {exitCode: 2, stderr: 'RTNETLINK answers: Requested type not found\nCommand failed -:1\n'})
    const r = rec.runner()
    await assert.rejects(
      r.run({tool: 'ip', args: ['xfrm', 'state', 'add', 'proto', 'esp', 'enc', 'cbc(aes)', new Secret('0x0011223344')]}),
      (e: NetkitError) => {
        assert.equal(e.code, 'E_NO_ESP')
        assert.match(e.line, /CONFIG_INET_ESP/)
        assert.match(e.line, /userspace/)
        return true
      },
    )
  })
  it('warn: redacts secrets, reaches the command and is shared by runners of other namespaces', () => {
    const seen: string[] = []
    const r = new Runner({warn: (m) => seen.push(m)})
    r.addSecret('s3cr3t-key')
    r.in('other').warn('the key s3cr3t-key is weak')
    assert.deepEqual(seen, ['the key <redacted> is weak'])
    assert.deepEqual(r.warnings, ['the key <redacted> is weak'])
  })
})
