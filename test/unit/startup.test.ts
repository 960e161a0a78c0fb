import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'

// dist/test/unit/ -> the package root
const root = new URL('../../../', import.meta.url)
const read = (p: string) => readFileSync(new URL(p, root), 'utf8')

describe('start-up: what the bundle carries (docs/performance.md)', () => {
  it("sorts the commands the same by code point as oclif's localeCompare did", () => {
    const ids = Object.keys(JSON.parse(read('oclif.manifest.json')).commands as Record<string, unknown>)
    const byLocale = [...ids].sort((a, b) => a.localeCompare(b))
    const byCodePoint = [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    assert.deepEqual(byCodePoint, byLocale)
    assert.doesNotMatch(read('dist/bundle/netkit.cjs'), /a\.id\.localeCompare\(b\.id\)/)
  })

  it('keeps the large libraries out of the main bundle: each in dist/bundle/lazy/, with its code cache', () => {
    const meta = JSON.parse(read('dist/meta.json')) as {inputs: Record<string, unknown>}
    const inMain = Object.keys(meta.inputs).filter((f) => /node_modules\/(zod|execa|js-yaml|listr2|inquirer|eta|table|iconv-lite|rxjs)\//.test(f))
    assert.deepEqual(inMain, [])
    const lazy = readdirSync(new URL('dist/bundle/lazy/', root)).sort()
    for (const pkg of ['eta', 'execa', 'inquirer', 'js-yaml', 'listr2', 'table', 'zod']) {
      assert.ok(lazy.includes(`${pkg}.cjs`) && lazy.includes(`${pkg}.cjs.cache`), `${pkg} in ${lazy.join(' ')}`)
    }
  })

  it('is ASCII (one other character makes V8 hold the whole file as two-byte text)', () => {
    assert.doesNotMatch(read('dist/bundle/netkit.cjs'), /[^\x00-\x7f]/)
  })

  // Runs netkit with ARGS and returns its exit status and the bundles it compiled (each goes through
  // vm.Script: bin/load.js, the lazy loader).
  const loaded = (args: string[], env: NodeJS.ProcessEnv = process.env) => {
    const bin = new URL('bin/run.js', root).pathname
    const code = `const vm = require('node:vm'), path = require('node:path'), Script = vm.Script, seen = new Set();
      vm.Script = function (source, options) { seen.add(path.basename(options.filename)); return new Script(source, options) };
      process.on('exit', () => process.stderr.write('LOADED ' + [...seen].sort().join(' ') + '\\n'));
      process.argv = [process.argv[0], ${JSON.stringify(bin)}, ...${JSON.stringify(args)}];
      import(${JSON.stringify(bin)});`
    const r = spawnSync(process.execPath, ['-e', code], {encoding: 'utf8', env})
    return {status: r.status, stderr: r.stderr, stdout: r.stdout, loaded: /^LOADED (.*)$/m.exec(r.stderr)?.[1]}
  }

  it('answers a list command from the main bundle and the table package alone', () => {
    const r = loaded(['ns', 'list'])
    assert.equal(r.status, 0, r.stderr)
    // (the table package only when there are namespaces to list)
    assert.match(r.loaded ?? '', /^netkit\.cjs( table\.cjs)?$/)
  })

  it("reads a fleet's host file (a WireGuard interface with peers, sysctls) without the schema library", () => {
    const dir = mkdtempSync(join(tmpdir(), 'netkit-startup-'))
    try {
      const peers = Array.from({length: 3}, (_, i) => [
        `      n${i + 2}:`,
        `        publicKey: ${String(i).padStart(2, '0')}${'A'.repeat(41)}=`,
        `        endpoint: 192.0.2.${i + 2}:51820`,
        `        allowedIps: [10.99.0.${i + 2}/32]`,
      ])
      const file = join(dir, 'host.yaml')
      writeFileSync(
        file,
        [
          'version: 1',
          'sysctls: {ip_forward: 1}',
          'tunnels:',
          '  mesh:',
          '    type: wireguard',
          '    address: 10.99.0.1/24',
          '    peers:',
          ...peers.flat(),
          '',
        ].join('\n'),
      )
      const env = {...process.env, NETKIT_STATE_DIR: join(dir, 'state'), NETKIT_CONFIG_DIR: join(dir, 'config'), NETKIT_IPROUTE2_DIR: join(dir, 'iproute2')}
      const r = loaded(['apply', '-f', file, '--dry-run', '--json'], env)
      assert.equal(r.status, 0, r.stderr)
      assert.match(r.stdout, /"add",\s+"kind": "tunnel"/)
      assert.doesNotMatch(r.loaded ?? '', /zod/)
      assert.match(r.loaded ?? '', /js-yaml\.cjs/)
      // The same file with one field the quick check leaves to the schema.
      writeFileSync(file, readFileSync(file, 'utf8').replace('    type: wireguard', '    type: wireguard\n    fwmark: 51820'))
      assert.match(loaded(['apply', '-f', file, '--dry-run', '--json'], env).loaded ?? '', /zod\.cjs/)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
