import assert from 'node:assert/strict'
import {copyFileSync, existsSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {after, describe, it} from 'node:test'

import {load} from 'js-yaml'

import {rawEvents} from '../../src/lib/tunnel/ipsec/vici.js'
import {filesUnder, skipUnlessRoot} from '../helpers/hosts.js'
import {KEY, Session} from '../helpers/pty.js'
import type {SimHost} from '../helpers/realhost.js'
import {pingUntil, twoHosts} from '../helpers/topology.js'

const parseYaml = (text: string): any => load(text)

/** Declines the safe-fix offer when it appears, so the tests change only what the wizard applies. */
async function skipFixOffer(s: Session): Promise<void> {
  await s.waitFor(/Apply the safe fixes|What are you setting up\?/)
  if (/Apply the safe fixes/.test(s.screen)) s.send(`n${KEY.enter}`)
}

describe('netkit wizard (integration, through a pseudo-terminal)', {skip: skipUnlessRoot}, () => {
  // A and B are simulated hosts (test/helpers/realhost.ts): netkit runs in them with its defaults, no --netns.
  const work = mkdtempSync(join(tmpdir(), 'netkit-wizard-'))
  after(() => rmSync(work, {recursive: true, force: true}))

  it('site to site: a wrong answer is corrected at the prompt, the review shows the files with the key redacted, and the peer set up from the printed answers gets the SA and a ping', async () => {
    const {CA, hA, hB} = twoHosts('wz')
    const peerFile = join(work, 'peer.yaml')
    const s = Session.inHost(hA, ['wizard', '--peer-answers', peerFile, '--save-answers', join(work, 'mine.yaml')])
    await skipFixOffer(s)
    await s.answer(/What are you setting up\?/, `2${KEY.enter}`)
    await s.answer(/Peer's address:/, `192.0.2.300${KEY.enter}`)
    await s.waitFor(/not an IP address/)
    s.send(KEY.backspace.repeat(11) + `192.0.2.2${KEY.enter}`)
    await s.answer(/Name for this tunnel:/, `site${KEY.enter}`)
    await s.answer(/This host's address/, KEY.enter)
    await s.answer(/Subnets behind this host/, KEY.enter)
    await s.answer(/Subnets behind the peer/, `10.2.0.0/24${KEY.enter}`)
    await s.answer(/How do the hosts authenticate\?/, KEY.enter)
    await s.answer(/Security profile:/, KEY.enter)
    await s.answer(/Rekey the ESP keys every/, KEY.enter)
    await s.answer(/Dead peer detection interval/, KEY.enter)
    await s.waitFor(/Go ahead\?/)
    assert.match(s.screen, /review: netkit will write\n\s+\/etc\/netkit\/ipsec\/swanctl\/conf\.d\/site\.conf \(mode 0600\)/)
    assert.match(s.screen, /local_ts = 10\.1\.0\.0\/24/, 'the local subnet came from the host')
    assert.match(s.screen, /secret = <redacted>/)
    assert.match(s.screen, /swanctl --load-all/)
    const reviewed = /start_action = (\w+)/.exec(s.screen)?.[1]
    assert.equal(filesUnder(hA.configDir).length, 0, 'nothing written before the review is accepted')
    s.send(KEY.enter)
    assert.equal(await s.exitCode(), 0, s.screen.slice(-2000))
    const written = readFileSync(join(hA.configDir, 'ipsec', 'swanctl', 'conf.d', 'site.conf'), 'utf8')
    assert.equal(/start_action = (\w+)/.exec(written)?.[1], reviewed, 'the review showed the file as written')
    assert.match(s.screen, /tunnel site: connecting/)
    assert.match(s.screen, /the generated pre-shared key is in \S+site\.psk \(mode 0600\)/)

    // The other side, from the printed answers and a copy of the key.
    const peer = parseYaml(readFileSync(peerFile, 'utf8'))
    assert.deepEqual([peer.local, peer.remote, peer.localSubnets, peer.remoteSubnets], ['192.0.2.2', '192.0.2.1', ['10.2.0.0/24'], ['10.1.0.0/24']])
    const psk = join(work, 'site.psk')
    copyFileSync(join(hA.configDir, 'secrets', 'site.psk'), psk)
    writeFileSync(peerFile, readFileSync(peerFile, 'utf8').replace(peer.auth.pskFile, psk))
    const b = hB.cli(['wizard', '--answers', peerFile, '--wait', '--json'])
    assert.equal(b.code, 0, b.stderr)
    assert.deepEqual(
      b.json.result.applied.map((x: any) => [x.tunnel, x.state]),
      [['site', 'up']],
    )
    const rerun = hB.cli(['wizard', '--answers', peerFile, '--wait'])
    assert.equal(rerun.code, 0, rerun.stderr)
    assert.match(rerun.stdout, /tunnel site: already set up as the answers say; nothing to do/, 'a re-run says it is a no-op')
    assert.ok(await pingUntil(CA, '10.2.0.2'), 'container A reaches container B')
    const mine = parseYaml(readFileSync(join(work, 'mine.yaml'), 'utf8'))
    assert.equal(mine.role, 'site-to-site')
    assert.ok(!readFileSync(join(work, 'mine.yaml'), 'utf8').includes(readFileSync(psk, 'utf8').trim()), 'no secret in the saved answers')
    for (const h of [hA, hB]) assert.equal(h.cli(['tunnel', 'del', 'site']).code, 0)
  })

  it('Ctrl-C midway leaves the host as it was', async () => {
    const {hA} = twoHosts('wc')
    const s = Session.inHost(hA, ['wizard'])
    await skipFixOffer(s)
    await s.answer(/What are you setting up\?/, `2${KEY.enter}`)
    await s.answer(/Peer's address:/, '192.0.')
    s.send(KEY.ctrlC)
    assert.notEqual(await s.exitCode(), 0)
    assert.match(s.screen, /interrupted.*nothing was written/s)
    assert.deepEqual(filesUnder(hA.configDir), [])
    assert.deepEqual(hA.processes(), [])
  })

  it('a mesh of two peers, saved as answers only; host to host reviewed and cancelled', async () => {
    const {hA} = twoHosts('wm')
    const saved = join(work, 'mesh.yaml')
    const s = Session.inHost(hA, ['wizard', '--save-answers', saved])
    await skipFixOffer(s)
    await s.answer(/What are you setting up\?/, `3${KEY.enter}`)
    await s.answer(/This host's address/, KEY.enter)
    await s.answer(/Subnets behind this host/, KEY.enter)
    await s.answer(/Peer 1 address:/, `192.0.2.2${KEY.enter}`)
    await s.answer(/Its name:/, `east${KEY.enter}`)
    await s.answer(/Subnets behind it/, `10.2.0.0/24${KEY.enter}`)
    await s.answer(/Add another peer\?/, `y${KEY.enter}`)
    await s.answer(/Peer 2 address:/, `192.0.2.3${KEY.enter}`)
    await s.answer(/Its name:\s*\(?[^\n]*\n[\s\S]*Its name:/, `west${KEY.enter}`).catch(async () => s.send(`west${KEY.enter}`))
    await s.answer(/Subnets behind it[\s\S]*Subnets behind it/, `10.3.0.0/24${KEY.enter}`)
    await s.answer(/Add another peer\?[\s\S]*Add another peer\?/, `n${KEY.enter}`)
    await s.answer(/How do the hosts authenticate\?/, KEY.enter)
    await s.answer(/Security profile:/, KEY.down + KEY.enter)
    await s.waitFor(/warning: the compatibility profile/)
    await s.answer(/Rekey the ESP keys every/, KEY.enter)
    await s.answer(/Dead peer detection interval/, KEY.enter)
    await s.answer(/Go ahead\?/, KEY.down + KEY.enter)
    assert.equal(await s.exitCode(), 0, s.screen.slice(-2000))
    const m = parseYaml(readFileSync(saved, 'utf8'))
    assert.deepEqual(m.peers, [
      {name: 'east', address: '192.0.2.2', subnets: ['10.2.0.0/24']},
      {name: 'west', address: '192.0.2.3', subnets: ['10.3.0.0/24']},
    ])
    assert.equal(m.profile, 'compat')
    assert.deepEqual(filesUnder(hA.configDir), [], 'save only: nothing else written')

    const h = Session.inHost(hA, ['wizard'])
    await skipFixOffer(h)
    if (!existsSync('/sys/module/esp4')) {
      // Host to host is not offered without ESP in the kernel (wizard-defects.test.ts); the rest is the same for site to site.
      await h.waitFor(/host to host \(this host and one peer\) \(not on this host: it needs ESP in the kernel/)
      h.send(KEY.ctrlC)
      await h.exitCode()
      return
    }
    await h.answer(/What are you setting up\?/, `1${KEY.enter}`)
    await h.answer(/Peer's address:/, `192.0.2.2${KEY.enter}`)
    await h.answer(/Name for this tunnel:/, KEY.enter)
    await h.answer(/This host's address/, KEY.enter)
    await h.answer(/How do the hosts authenticate\?/, KEY.enter)
    await h.answer(/Security profile:/, KEY.enter)
    await h.answer(/Rekey the ESP keys every/, KEY.enter)
    await h.answer(/Dead peer detection interval/, KEY.enter)
    await h.waitFor(/Go ahead\?/)
    assert.match(h.screen, /local_ts = 192\.0\.2\.1\/32/, 'host to host: the hosts themselves')
    h.send(KEY.down + KEY.down + KEY.enter)
    assert.equal(await h.exitCode(), 0)
    assert.match(h.screen, /cancelled: nothing was written/)
    assert.deepEqual(filesUnder(hA.configDir), [])
  })

  it('without a terminal it never prompts; bad answers files exit 2 naming the field', () => {
    const {hA} = twoHosts('wa')
    let r = hA.cli(['wizard'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /^error: the wizard needs a terminal .*--answers FILE/)
    const bad = join(work, 'bad.yaml')
    for (const [text, re] of [
      [
        'role: site-to-site\nname: s\nlocal: 192.0.2.1\nremote: 192.0.2.2\nauth: {method: psk-generate}\nremoteSubnets: [10.2.0.0/24]\n',
        /localSubnets: site to site needs the subnets behind this host/,
      ],
      ['role: host-to-host\nname: s\nlocal: 192.0.2.300\nremote: 192.0.2.2\nauth: {method: psk-generate}\n', /local: not an IP address/],
      ['role: host-to-host\nname: s\nlocal: 192.0.2.1\nauth: {method: psk-generate}\n', /remote: required for this role/],
      ['role: sideways\n', /role: /],
      ['role: [unclosed\n', /is not valid YAML/],
    ] as const) {
      writeFileSync(bad, text)
      r = hA.cli(['wizard', '--answers', bad])
      assert.equal(r.code, 2, r.stderr)
      assert.match(r.stderr, re)
      assert.equal(r.stderr.trim().split('\n').length, 1)
    }
    assert.deepEqual(filesUnder(hA.configDir), [])
  })
})

describe('netkit wizard: every configuration it can produce loads into a real charon', {skip: skipUnlessRoot}, () => {
  const work = mkdtempSync(join(tmpdir(), 'netkit-wizard-'))
  after(() => rmSync(work, {recursive: true, force: true}))
  /** The connections the host's charon has loaded, as swanctl on the host lists them (netkit's charon socket by default). */
  const loadedConns = (h: SimHost): string[] => {
    const out = h.sh('swanctl', ['--list-conns', '--raw', '--uri', 'unix:///etc/netkit/ipsec/charon.vici'])
    // The tunnels: each is a child of the IKE connection to its peer.
    return rawEvents(out, 'list-conn')
      .flatMap((ev) => Object.values(ev).flatMap((c) => Object.keys(((c as any).children ?? {}) as object)))
      .sort()
  }
  const run = (h: SimHost, yaml: string) => {
    const f = join(work, `${h.ns}.yaml`)
    writeFileSync(f, yaml)
    return h.cli(['wizard', '--answers', f, '--json'])
  }

  it('site to site with a PSK file and the compatibility profile', () => {
    const {hA} = twoHosts('la')
    const psk = join(work, 'k.psk')
    writeFileSync(psk, 'a pre-shared key of some length\n', {mode: 0o600})
    const r = run(
      hA,
      `role: site-to-site\nname: s\nlocal: 192.0.2.1\nremote: 192.0.2.2\nlocalSubnets: [10.1.0.0/24]\nremoteSubnets: [10.2.0.0/24]\nauth: {method: psk-file, pskFile: ${psk}}\nprofile: compat\n`,
    )
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.deepEqual(loadedConns(hA), ['netkit-s'])
    assert.equal(hA.cli(['tunnel', 'del', 's']).code, 0)
  })

  it("site to site with certificates made here (pki): a CA, this host's and the peer's", () => {
    const {CA, hA, hB} = twoHosts('lx')
    const r = run(
      hA,
      'role: site-to-site\nname: s\nlocal: 192.0.2.1\nremote: 192.0.2.2\nlocalSubnets: [10.1.0.0/24]\nremoteSubnets: [10.2.0.0/24]\nauth: {method: x509-generate}\n',
    )
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.deepEqual(loadedConns(hA), ['netkit-s'])
    const certs = r.json.result.certificates
    // The paths are the host's: its /etc/netkit is hA.configDir on this machine.
    const onA = (p: string) => {
      assert.match(p, /^\/etc\/netkit\//)
      return join(hA.configDir, p.slice('/etc/netkit/'.length))
    }
    assert.equal(statSync(onA(certs.peers[0].key)).mode & 0o777, 0o600)
    // The peer, with the files copied from here.
    const copied = (p: string) => {
      const to = join(work, `peer-${p.split('/').at(-1)}`)
      copyFileSync(onA(p), to)
      return to
    }
    const peer = parseYaml(r.json.result.peerAnswers)
    const b = run(
      hB,
      `${r.json.result.peerAnswers.replace(peer.auth.cert, copied(certs.peers[0].cert)).replace(peer.auth.key, copied(certs.peers[0].key)).replace(peer.auth.ca, copied(certs.ca))}`,
    )
    assert.equal(b.code, 0, b.stdout + b.stderr)
    return pingUntil(CA, '10.2.0.2', 20).then((ok) => {
      assert.ok(ok, 'the certificates made here authenticate both sides')
      for (const h of [hA, hB]) assert.equal(h.cli(['tunnel', 'del', 's']).code, 0)
    })
  })

  it('a host joining a mesh of two peers', () => {
    const {hA} = twoHosts('lm')
    const r = run(
      hA,
      'role: mesh\nlocal: 192.0.2.1\nlocalSubnets: [10.1.0.0/24]\npeers:\n  - {name: east, address: 192.0.2.2, subnets: [10.2.0.0/24]}\n  - {name: west, address: 192.0.2.3, subnets: [10.3.0.0/24]}\nauth: {method: psk-generate}\n',
    )
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.deepEqual(loadedConns(hA), ['netkit-east', 'netkit-west'])
    for (const t of ['east', 'west']) assert.equal(hA.cli(['tunnel', 'del', t]).code, 0)
  })

  it('host to host: loads where the kernel has ESP; on kernel-libipsec it is refused before anything changes', () => {
    const {hA} = twoHosts('lh')
    const r = run(hA, 'role: host-to-host\nname: h\nlocal: 192.0.2.1\nremote: 192.0.2.2\nauth: {method: psk-generate}\n')
    if (existsSync('/sys/module/esp4')) {
      assert.equal(r.code, 0, r.stdout + r.stderr)
      assert.deepEqual(loadedConns(hA), ['netkit-h'])
      assert.equal(hA.cli(['tunnel', 'del', 'h']).code, 0)
    } else {
      assert.equal(r.code, 2)
      assert.match(r.json.error.message, /host to host needs ESP in the kernel/)
      assert.deepEqual(filesUnder(hA.configDir), [])
    }
  })
})
