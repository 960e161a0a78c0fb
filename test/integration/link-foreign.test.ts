/**
 * Links netkit did not create are another tool's: every change to one is
 * refused as `link del` refuses it (exit 2, one line naming --force, nothing
 * changed), and works with --force. Table-driven over the commands that
 * change a link, on a foreign veth and a foreign bridge, in a simulated host.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {dump, makeNs, skipUnlessRoot} from '../helpers/hosts.js'
import {bootHost, type SimHost} from '../helpers/realhost.js'

interface Row {
  /** The command line, without --force. */
  args: string[]
  /** What the refusal says would be done ("pass --force to VERB it anyway"). */
  verb: string
  /** The link the refusal names. */
  link: string
  /** Puts the host in the state the row starts from (run with `ip` in the host). */
  setup?: string[][]
  /** With --force: what the user then reads back. */
  forced: (h: SimHost) => void
}

const link = (h: SimHost, name: string, ns?: string) => h.ipj(['-d', 'link', 'show', name], ns)[0]
const up = (h: SimHost, name: string) => (link(h, name).flags as string[]).includes('UP')

const ROWS: Row[] = [
  {args: ['bridge', 'attach', 'nbr', 'f0'], verb: 'attach', link: 'f0', forced: (h) => assert.equal(link(h, 'f0').master, 'nbr')},
  {args: ['bridge', 'attach', 'fbr', 'f0'], verb: 'attach', link: 'f0', forced: (h) => assert.equal(link(h, 'f0').master, 'fbr')},
  {
    args: ['bridge', 'detach', 'f0'],
    verb: 'detach',
    link: 'f0',
    setup: [['link', 'set', 'f0', 'master', 'fbr']],
    forced: (h) => assert.equal(link(h, 'f0').master, undefined),
  },
  {args: ['link', 'set', 'f0', '--down'], verb: 'change', link: 'f0', setup: [['link', 'set', 'f0', 'up']], forced: (h) => assert.equal(up(h, 'f0'), false)},
  {args: ['link', 'set', 'f0', '--up'], verb: 'change', link: 'f0', setup: [['link', 'set', 'f0', 'down']], forced: (h) => assert.equal(up(h, 'f0'), true)},
  {args: ['link', 'set', 'f0', '--mtu', '1400'], verb: 'change', link: 'f0', forced: (h) => assert.equal(link(h, 'f0').mtu, 1400)},
  {args: ['link', 'set', 'fbr', '--mtu', '1400'], verb: 'change', link: 'fbr', forced: (h) => assert.equal(link(h, 'fbr').mtu, 1400)},
  {args: ['link', 'set', 'f0', '--master', 'nbr'], verb: 'change', link: 'f0', forced: (h) => assert.equal(link(h, 'f0').master, 'nbr')},
  {
    args: ['link', 'set', 'f0', '--nomaster'],
    verb: 'change',
    link: 'f0',
    setup: [['link', 'set', 'f0', 'master', 'fbr']],
    forced: (h) => assert.equal(link(h, 'f0').master, undefined),
  },
  {args: ['link', 'set', 'f1', '--to-netns', 'inner'], verb: 'change', link: 'f1', forced: (h) => assert.equal(link(h, 'f1', 'inner').ifname, 'f1')},
  {
    args: ['link', 'del', 'f0'],
    verb: 'delete',
    link: 'f0',
    forced: (h) =>
      assert.equal(
        h.ipj(['link', 'show']).some((l: any) => l.ifname === 'f0'),
        false,
      ),
  },
  {
    args: ['bridge', 'del', 'fbr'],
    verb: 'delete',
    link: 'fbr',
    forced: (h) =>
      assert.equal(
        h.ipj(['link', 'show']).some((l: any) => l.ifname === 'fbr'),
        false,
      ),
  },
]

describe('links netkit did not create are changed only with --force (integration, simulated host)', {skip: skipUnlessRoot}, () => {
  let h: SimHost
  /** Makes the foreign links afresh: a veth f0/f1 and a bridge fbr made by ip, and netkit's own bridge nbr. */
  const world = () => {
    for (const name of ['f0', 'fbr', 'nbr']) h.sh('sh', ['-c', `ip link del ${name} 2>/dev/null || true`])
    h.sh('sh', ['-c', 'ip -n inner link del f1 2>/dev/null || true'])
    h.sh('ip', ['link', 'add', 'f0', 'type', 'veth', 'peer', 'name', 'f1'])
    h.sh('ip', ['link', 'add', 'fbr', 'type', 'bridge'])
    const r = h.cli(['bridge', 'add', 'nbr'])
    assert.equal(r.code, 0, r.stderr)
  }
  before(() => {
    h = bootHost(makeNs('lf'))
    h.sh('ip', ['netns', 'add', 'inner'])
  })
  after(() => h?.stop())

  for (const row of ROWS) {
    it(`${row.args.join(' ')}: refused without --force (exit 2, nothing changed), done with it`, () => {
      world()
      for (const step of row.setup ?? []) h.sh('ip', step)
      const state = () => [dump(h.ns), h.sh('ip', ['-n', 'inner', '-j', 'link', 'show'])]
      const before = state()
      for (const extra of [[], ['--dry-run']]) {
        const r = h.cli([...row.args, ...extra])
        assert.equal(r.code, 2, `${[...row.args, ...extra].join(' ')}: ${r.stdout}${r.stderr}`)
        assert.equal(
          r.stderr,
          `error: link ${row.link} was not created by netkit; netkit leaves other tools' links alone; pass --force to ${row.verb} it anyway\n`,
        )
        assert.equal(r.stdout, '')
        assert.deepEqual(state(), before, 'nothing changed')
      }
      const forced = h.cli([...row.args, '--force'])
      assert.equal(forced.code, 0, forced.stderr)
      row.forced(h)
    })
  }

  it('a foreign link already as asked: nothing to do (exit 0), as for a link netkit made', () => {
    world()
    h.sh('ip', ['link', 'set', 'f0', 'up'])
    const before = dump(h.ns)
    const r = h.cli(['link', 'set', 'f0', '--up'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, 'link f0 is already as asked; nothing to do\n')
    const d = h.cli(['bridge', 'detach', 'f0'])
    assert.equal(d.code, 0, d.stderr)
    assert.equal(dump(h.ns), before)
  })

  it("netkit's own links need no --force", () => {
    world()
    assert.equal(h.cli(['link', 'add', 'n0', '--type', 'veth', '--peer', 'n1']).code, 0)
    for (const args of [
      ['bridge', 'attach', 'nbr', 'n0'],
      ['bridge', 'detach', 'n0'],
      ['bridge', 'attach', 'fbr', 'n0'],
      ['bridge', 'detach', 'n0'],
      ['link', 'set', 'n0', '--mtu', '1400', '--up'],
      ['link', 'set', 'n0', '--down'],
      ['link', 'del', 'n0'],
    ]) {
      const r = h.cli(args)
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
    }
  })
})
