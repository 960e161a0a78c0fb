/**
 * apply, diff and export as a user runs them on a real host (the simulated
 * hosts of realhost.ts: netkit with its defaults, no NETKIT_* variables):
 * the defects of issues 14 and 15, each shown here the way a user would see
 * it (exit code, the one error line, the host read back with `ip -j`).
 */
import assert from 'node:assert/strict'
import {chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {dump, makeNs, sh, skipUnlessRoot, tryRun} from '../helpers/hosts.js'
import {BIN} from '../helpers/cli.js'
import {bootHost, type SimHost} from '../helpers/realhost.js'

/** netkit as the host runs it (the single binary when the suite drives one). */
const netkit = process.env.NETKIT_BIN ? [process.env.NETKIT_BIN] : [process.execPath, BIN]

const dir = mkdtempSync(join(tmpdir(), 'netkit-apply-defects-'))
const file = (name: string, text: string) => {
  const p = join(dir, name)
  writeFileSync(p, text)
  return p
}

/** A host with an underlay: u0 (192.0.2.1/24) up, its peer u1 left alone. */
function hostWithUnderlay(tag: string): SimHost {
  const h = bootHost(makeNs(tag))
  h.sh('ip', ['link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u1'])
  h.sh('ip', ['addr', 'add', '192.0.2.1/24', 'dev', 'u0'])
  h.sh('ip', ['link', 'set', 'u0', 'up'])
  return h
}

/** What a failed command must leave as it was: the kernel's state, and (files) netkit's files and its ledger. */
function snapshot(h: SimHost, opts: {files?: boolean} = {files: true}): string {
  if (!opts.files) return [dump(h.ns), h.sh('ip', ['netns', 'list'])].join('\n--\n')
  const files = ['rt_tables.d/netkit.conf'].map((f) => (existsSync(join(h.iproute2Dir, f)) ? readFileSync(join(h.iproute2Dir, f), 'utf8') : '-'))
  const ledger = existsSync(join(h.stateDir, 'owned.json')) ? readFileSync(join(h.stateDir, 'owned.json'), 'utf8') : '-'
  return [dump(h.ns), h.sh('ip', ['netns', 'list']), ...files, ledger].join('\n--\n')
}

/**
 * The snapshot once the kernel has settled: what it changes by itself shortly after a change
 * (a new bridge's operstate goes from UNKNOWN to UP when its port starts forwarding, about a
 * second later) is not what the next command did. Two snapshots 300 ms apart agree (bounded).
 */
function settledSnapshot(h: SimHost): string {
  let last = snapshot(h)
  for (let i = 0; i < 20; i++) {
    sh('sleep', ['0.3'])
    const now = snapshot(h)
    if (now === last) return now
    last = now
  }
  return last
}

/** The one line a refused command prints. */
function oneErrorLine(stderr: string): string {
  const lines = stderr.trim().split('\n')
  assert.equal(lines.length, 1, `one line of error, not:\n${stderr}`)
  assert.match(lines[0], /^error: /)
  return lines[0]
}

const espHere = existsSync('/sys/module/esp4') || tryRun('modprobe', ['-n', '-q', 'esp4']).code === 0

describe('apply, diff and export on a real host: defects of issues 14 and 15', {skip: skipUnlessRoot}, () => {
  after(() => rmSync(dir, {recursive: true, force: true}))

  it('makes a VXLAN link and an xfrm policy with a template but no reqid, verifies them, and re-applies as a no-op', () => {
    const h = hostWithUnderlay('dv')
    const f = file(
      'vx.yaml',
      `version: 1
links: [{name: vx0, type: vxlan, vni: 42, remote: 192.0.2.2, dev: u0}]
xfrmPolicies: [{src: 10.60.0.0/24, dst: 10.65.0.0/24, dir: out, tmplSrc: 192.0.2.1, tmplDst: 192.0.2.2}]
`,
    )
    const a = h.cli(['apply', '-f', f, '--json'])
    assert.equal(a.code, 0, a.stdout + a.stderr)
    assert.equal(a.json.result.verified, true)
    const [vx] = h.ipj(['-d', 'link', 'show', 'vx0'])
    assert.deepEqual([vx.linkinfo.info_data.id, vx.linkinfo.info_data.remote, vx.linkinfo.info_data.link, vx.ifalias], [42, '192.0.2.2', 'u0', 'netkit'])
    assert.match(
      h.sh('ip', ['xfrm', 'policy']),
      /src 10\.60\.0\.0\/24 dst 10\.65\.0\.0\/24 \n\tdir out priority 1780 [^\n]*\n\ttmpl src 192\.0\.2\.1 dst 192\.0\.2\.2\n\t\tproto esp reqid 0 mode tunnel/,
    )
    const again = h.cli(['apply', '-f', f, '--json'])
    assert.equal(again.code, 0, again.stdout + again.stderr)
    assert.equal(again.json.result.changed, false, 'a re-run finds both as the file says')
    assert.match(h.cli(['diff', '-f', f]).stdout, /^the host matches \S+ \(2 objects\)/m)
    // And what link list shows of it is what apply compared.
    const row = h.cli(['link', 'list', '--json']).json.result.find((r: any) => r.name === 'vx0')
    assert.deepEqual([row.lower, row.remote, row.vni, row.port], ['u0', '192.0.2.2', 42, 4789])
    h.stop()
  })

  it('applies 200,000 routes into a fresh host and re-applies them as a no-op', {timeout: 600_000}, () => {
    const h = bootHost(makeNs('dr'))
    const routes: string[] = []
    for (let i = 0; i < 200_000; i++) routes.push(`  - {to: 10.${(i >> 16) + 100}.${(i >> 8) & 255}.${i & 255}/32, dev: d0}`)
    const f = file('r200k.yaml', `version: 1\nlinks: [{name: d0, type: veth, peer: d1}]\nroutes:\n${routes.join('\n')}\n`)
    // The echo of 200,000 commands is more than a pipe buffer of spawnSync holds: it goes to a file.
    const log = join(dir, 'r200k.log')
    const apply = () => h.sh('sh', ['-c', `${[...netkit, 'apply', '-f', f].join(' ')} 2>${log}; echo "exit $?"`])
    const a = apply()
    assert.match(a, /^applied 200001 changes \(200001 added, 0 changed, 0 removed\), verified\nexit 0\n$/, readFileSync(log, 'utf8').slice(-2000))
    assert.equal(Number(h.sh('sh', ['-c', 'ip route show table main proto 178 | wc -l']).trim()), 200_000)
    const again = apply()
    assert.match(
      again,
      /^the host already matches \S+ \(200001 objects, exactly as the last verified apply left them\); nothing to do\nexit 0\n$/,
      readFileSync(log, 'utf8').slice(-2000),
    )
    h.stop()
  })

  it('a big file of bad entries exits 2 quickly, with one error line, and changes nothing', {timeout: 300_000}, () => {
    const h = hostWithUnderlay('db')
    const before = snapshot(h)
    // 250,000 good routes on a device that is nowhere: every entry is checked, then the device is named.
    const missing: string[] = []
    for (let i = 0; i < 250_000; i++) missing.push(`  - {to: 10.${(i >> 16) + 100}.${(i >> 8) & 255}.${i & 255}/32, dev: nosuch0}`)
    const f1 = file('missing.yaml', `version: 1\nroutes:\n${missing.join('\n')}\n`)
    let t0 = Date.now()
    const r1 = h.cli(['diff', '-f', f1], {timeoutMs: 120_000})
    const took1 = Date.now() - t0
    assert.equal(r1.code, 2, r1.stderr.slice(0, 500))
    assert.equal(
      oneErrorLine(r1.stderr),
      "error: the file's route 10.100.0.0/32 needs link nosuch0, which is neither in the file nor on this host; add nosuch0 to the file's links, or correct the name",
    )
    assert.ok(took1 < 20_000, `${took1} ms`)
    // 50 MB of routes that are each bad: the first one is named, at once.
    const bad = JSON.stringify({
      version: 1,
      routes: Array.from({length: 1_450_000}, (_, i) => ({to: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/24`, dev: 'u0'})),
    })
    assert.ok(bad.length > 50_000_000, `${bad.length} bytes`)
    const f2 = file('bad.json', bad)
    t0 = Date.now()
    const r2 = h.cli(['apply', '-f', f2], {timeoutMs: 120_000})
    const took2 = Date.now() - t0
    assert.equal(r2.code, 2)
    assert.equal(
      oneErrorLine(r2.stderr),
      `error: ${f2}: routes.1.to: route destination "10.0.0.1/24" has host bits set; fix that entry (see "netkit apply --help")`,
    )
    assert.ok(took2 < 20_000, `${took2} ms`)
    assert.equal(snapshot(h), before, 'nothing changed')
    h.stop()
  })

  it('every map of the host file takes __proto__, constructor, toString and hasOwnProperty as plain keys: checked, refused in one line or made', () => {
    const h = hostWithUnderlay('dp')
    const KEYS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty']
    // Each map of schema.ts, with an entry valid but for its key, what apply then makes, and how to see it.
    const MAPS: {map: string; value: unknown; ok: string[]; made: (key: string) => boolean}[] = [
      {
        map: 'tables',
        value: 7,
        ok: ['constructor', 'toString', 'hasOwnProperty'],
        made: (k) => h.cli(['table', 'list', '--json']).json.result.some((t: any) => t.name === k && t.id === 7),
      },
      {
        map: 'namespaces',
        value: {routes: [{to: '10.9.0.0/24', dev: 'lo'}]},
        ok: ['constructor', 'toString', 'hasOwnProperty'],
        made: (k) =>
          h
            .sh('ip', ['netns', 'list'])
            .split('\n')
            .some((l) => l.split(' ')[0] === k) && h.ipj(['route', 'show', '10.9.0.0/24'], k).length === 1,
      },
      {
        map: 'tunnels',
        value: {type: 'vxlan', remote: '192.0.2.2', vni: 5},
        ok: ['constructor', 'toString'],
        made: (k) => h.ipj(['link', 'show']).some((l: any) => l.ifname === `vx-${k}`),
      },
      {map: 'sysctls', value: '1', ok: [], made: () => false},
    ]
    for (const {map, value, ok, made} of MAPS) {
      for (const key of KEYS) {
        const what = `${map}.${key}`
        const f = file(`${map}-${key}.json`, `{"version": 1, "${map}": {${JSON.stringify(key)}: ${JSON.stringify(value)}}}`)
        const before = snapshot(h)
        const kernelBefore = snapshot(h, {files: false})
        const r = h.cli(['apply', '-f', f])
        if (!ok.includes(key)) {
          assert.equal(r.code, 2, `${what}: ${r.stdout}${r.stderr}`)
          const line = oneErrorLine(r.stderr)
          assert.ok(line.startsWith(`error: ${f}: ${map}.${key}: `), `${what}: ${line}`)
          assert.equal(snapshot(h), before, `${what}: nothing changed`)
          assert.equal(h.cli(['diff', '-f', f]).code, 2, `${what}: diff refuses it too`)
          continue
        }
        assert.equal(r.code, 0, `${what}: ${r.stdout}${r.stderr}`)
        assert.ok(made(key), `${what}: made`)
        assert.match(h.cli(['diff', '-f', f]).stdout, /^the host matches/m, `${what}: and found again`)
        const empty = h.cli(['apply', '-f', file('empty.yaml', 'version: 1\n')])
        assert.equal(empty.code, 0, `${what}: ${empty.stderr}`)
        assert.ok(!made(key), `${what}: removed again`)
        assert.equal(snapshot(h, {files: false}), kernelBefore, `${what}: the host as before`)
      }
    }
    h.stop()
  })

  it('export of a host apply built with veths (one end in a namespace of the file, both ends local, one inside a namespace) diffs as no change and applies as a no-op', () => {
    const h = hostWithUnderlay('de')
    const f = file(
      'veths.yaml',
      `version: 1
namespaces:
  c1:
    links: [{name: x1, type: veth, peer: x2, peerNetns: c2}]
    addresses: [{dev: wan1, address: 10.7.0.2/24}, {dev: x1, address: 10.5.0.1/24}]
  c2:
    addresses: [{dev: x2, address: 10.5.0.2/24}]
links:
  - {name: wan0, type: veth, peer: wan1, peerNetns: c1}
  - {name: vc0, type: veth, peer: vc1}
  - {name: br0, type: bridge}
  - {name: vb0, type: veth, peer: vb1, master: br0}
addresses: [{dev: wan0, address: 10.7.0.1/24}, {dev: vc0, address: 10.6.0.1/24}]
routes: [{to: 10.8.0.0/24, via: 10.7.0.2}]
`,
    )
    const a = h.cli(['apply', '-f', f])
    assert.equal(a.code, 0, a.stderr)
    const ex = h.cli(['export'])
    assert.equal(ex.code, 0, ex.stderr)
    for (const link of ['wan0', 'vc0', 'vb0', 'br0']) assert.match(ex.stdout, new RegExp(`^  - name: ${link}$`, 'm'), `the export has ${link}`)
    assert.match(ex.stdout, /^      - name: x1$/m, 'and the veth made inside c1')
    const exported = file('export.yaml', ex.stdout)
    const before = settledSnapshot(h)
    const d = h.cli(['diff', '-f', exported])
    assert.equal(d.code, 0, d.stderr)
    assert.match(d.stdout, /^the host matches \S+ \(13 objects\)/m)
    const again = h.cli(['apply', '-f', exported, '--json'])
    assert.equal(again.code, 0, again.stderr)
    assert.equal(again.json.result.changed, false)
    assert.equal(snapshot(h), before, 'applying the export changed nothing')
    h.stop()
  })

  it(
    'diff, apply --dry-run and apply refuse SAs alike on a kernel without ESP, and change nothing',
    {skip: espHere ? 'this kernel has ESP: the SAs would be made' : false},
    () => {
      const h = hostWithUnderlay('ds')
      const key = (name: string, bytes: number) => {
        const p = join(dir, name)
        writeFileSync(p, `${'ab'.repeat(bytes)}\n`)
        chmodSync(p, 0o600)
        return p
      }
      const enc = key('sa.enc', 16)
      const auth = key('sa.auth', 32)
      const f = file(
        'sa.yaml',
        `version: 1
xfrmStates:
  - {src: 192.0.2.1, dst: 192.0.2.2, spi: 0x100, enc: {alg: "cbc(aes)", keyFile: ${enc}}, auth: {alg: "hmac(sha256)", keyFile: ${auth}}}
  - {src: 192.0.2.2, dst: 192.0.2.1, spi: 0x101, enc: {alg: "cbc(aes)", keyFile: ${enc}}, auth: {alg: "hmac(sha256)", keyFile: ${auth}}}
`,
      )
      const before = snapshot(h)
      const runs = [
        ['diff', '-f', f],
        ['apply', '--dry-run', '-f', f],
        ['apply', '-f', f],
      ].map((args) => ({args, r: h.cli(args)}))
      const real = runs[2].r
      assert.equal(real.code, 1)
      const said = oneErrorLine(real.stderr)
      assert.match(said, /^error: the kernel has no ESP support \(CONFIG_INET_ESP\), so it cannot hold this SA; /)
      for (const {args, r} of runs) {
        assert.equal(r.code, real.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`)
        assert.equal(oneErrorLine(r.stderr), said, args.join(' '))
        assert.doesNotMatch(r.stdout, /change/, `${args.join(' ')} promises nothing`)
      }
      assert.equal(snapshot(h), before, 'nothing changed')
      assert.equal(h.sh('ip', ['xfrm', 'state']), '')
      h.stop()
    },
  )

  it('a plan refused for what the kernel would delete names each object once', () => {
    const h = bootHost(makeNs('dc'))
    const a = h.cli(['apply', '-f', file('c1.yaml', 'version: 1\nlinks: [{name: d0, type: veth, peer: d1}]\naddresses: [{dev: d0, address: 10.4.0.1/24}]\n')])
    assert.equal(a.code, 0, a.stderr)
    // Another tool's route through a gateway on d0: it goes with the link, and with the address the gateway is reached through.
    h.sh('ip', ['route', 'add', '10.9.9.0/24', 'via', '10.4.0.2', 'dev', 'd0'])
    const before = snapshot(h)
    const r = h.cli(['diff', '-f', file('c0.yaml', 'version: 1\n')])
    assert.equal(r.code, 1)
    const line = oneErrorLine(r.stderr)
    assert.match(line, /would also delete route 10\.9\.9\.0\/24 \(not netkit's\): the kernel deletes/)
    assert.equal(line.split('route 10.9.9.0/24').length - 1, 1, line)
    assert.equal(snapshot(h), before)
    h.stop()
  })

  it('an undo runs every line: a failing neigh line does not stop the route lines after it, and the host is as before', () => {
    const h = bootHost(makeNs('du'))
    h.sh('ip', ['link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1'])
    h.sh('ip', ['link', 'set', 'd0', 'up'])
    // A test double for ip: the kernel refuses proxy entry 10.5.0.53 (its line goes out with a device that is not there).
    const ipPath = sh('sh', ['-c', 'command -v ip']).trim()
    const wrap = join(dir, 'wrap')
    sh('mkdir', ['-p', wrap])
    writeFileSync(
      join(wrap, 'ip'),
      `#!/bin/sh
for a in "$@"; do [ "$a" = -batch ] && batch=1; done
if [ -n "$batch" ]; then
  sed 's/^neigh add proxy 10\\.5\\.0\\.53 dev [^ ]*/neigh add proxy 10.5.0.53 dev nkmissing0/' | ${ipPath} "$@"
  exit $?
fi
exec ${ipPath} "$@"
`,
    )
    chmodSync(join(wrap, 'ip'), 0o755)
    const f = file(
      'u.yaml',
      'version: 1\nroutes: [{to: 10.8.1.0/24, dev: d0}, {to: 10.8.2.0/24, dev: d0}]\nproxyArp: [{address: 10.5.0.52, dev: d0}, {address: 10.5.0.53, dev: d0}]\n',
    )
    const before = snapshot(h)
    const r = h.cli(['apply', '-f', f], {env: {PATH: `${wrap}:${process.env.PATH}`}})
    assert.notEqual(r.code, 0, r.stdout + r.stderr)
    // The undo: neigh del .53 fails (it was never made), and neigh del .52 and both route del still run.
    assert.deepEqual(h.ipj(['route', 'show', 'table', 'all', 'proto', '178']), [], 'no route apply made stays')
    assert.deepEqual(h.ipj(['neigh', 'show', 'proxy']), [], 'no proxy entry stays')
    assert.equal(snapshot(h), before, 'the host as before')
    assert.match(h.cli(['diff', '-f', f]).stdout, /^\+ route 10\.8\.1\.0\/24$/m, 'and diff says what is to do')
    h.stop()
  })
})
