/**
 * The wizard's questions (asked through prompt.ts), in the order a person answers them:
 * role, addresses, authentication, security profile. Every answer is
 * validated as it is typed; defaults come from the host.
 */
import {existsSync, statSync} from 'node:fs'

import {UsageError} from '../errors.js'
import type {Runner} from '../runner.js'
import * as v from '../validate.js'
import type {Answers} from './answers.js'
import {localAddressFor, localSubnets} from './facts.js'
import {PROFILES} from './plan.js'
import type {HostAbility, Prompt} from './run.js'

const check = (fn: () => unknown): true | string => {
  try {
    fn()
    return true
  } catch (error) {
    return error instanceof UsageError ? error.line : String(error)
  }
}

const list = (s: string): string[] =>
  s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean)

const validNetworks = (s: string): true | string => check(() => list(s).forEach((n) => v.network(n, 'subnet')))

const validSecretFile = (path: string): true | string => {
  if (!existsSync(path)) return `${path} does not exist`
  const mode = statSync(path).mode & 0o777
  if (mode & 0o077) return `${path} can be read by others (mode ${mode.toString(8)}): run chmod 600 ${path}`
  return true
}

const validFile = (path: string): true | string => (existsSync(path) ? true : `${path} does not exist`)

/** A second address for the same tunnel: of the same family as the first, and not the same. */
const otherEnd = (s: string, first: string | undefined, what: string, firstWhat: string): true | string =>
  check(() => {
    const a = v.ipAddress(s, what)
    if (!first) return
    const b = v.ipAddress(first)
    v.sameFamily(a, b, `${what} ${a.ip} and ${firstWhat} ${b.ip}`)
    if (a.ip === b.ip) throw new UsageError(`${what} ${a.ip} is ${firstWhat}`, 'give another address')
  })

/** One question, answered as T. */
type Ask = <T>(q: Record<string, unknown>) => Promise<T>

/** The answers so far, filled in question by question. */
type Draft = Partial<Answers> & {role: Answers['role']}

/** A tunnel or peer name: 1 to 12 letters, digits, - or _. */
const validName = (s: string): true | string => /^[a-z0-9][a-z0-9_-]{0,11}$/i.test(s) || 'use 1 to 12 letters, digits, - or _'

/** The default name for a peer at this address: peer-LASTPART. */
const defaultName = (address: string): string => `peer-${address.split(/[.:]/).pop()}`.slice(0, 12)

/** Asks the questions. Only what this host can do is offered: host to host, when it cannot, is shown with the reason and cannot be chosen. */
export async function askAnswers(runner: Runner, prompt: Prompt, log: (l: string) => void, ability: HostAbility = {hostToHost: true}): Promise<Answers> {
  const ask: Ask = async <T>(q: Record<string, unknown>): Promise<T> => (await prompt({name: 'value', ...q})) as T

  const role = await askRole(ask, ability)
  const answers: Draft = {role, peers: [], localSubnets: [], remoteSubnets: []}
  if (role !== 'mesh') await askPeer(answers, runner, ask, log)
  answers.local = await askLocal(answers.remote, runner, ask)
  if (role !== 'host-to-host') answers.localSubnets = await askLocalSubnets(answers.local, runner, ask)
  if (role === 'site-to-site') answers.remoteSubnets = await askRemoteSubnets(answers.localSubnets ?? [], ask)
  if (role === 'mesh') {
    do {
      answers.peers!.push(await askMeshPeer(answers, ask, ability))
    } while (await ask<boolean>({type: 'confirm', message: 'Add another peer?', default: false}))
  }
  answers.auth = await askAuth(ask)
  answers.profile = await askProfile(ask, log)
  answers.rekeyTime = await askRekeyTime(ask)
  answers.dpd = await askDpd(ask)
  answers.version = 1
  answers.apply = true
  return answers as Answers
}

/** Host to host, site to site or mesh; host to host disabled, with the reason, where this host cannot do it. */
async function askRole(ask: Ask, ability: HostAbility): Promise<Answers['role']> {
  return ask<Answers['role']>({
    type: 'select',
    message: 'What are you setting up?',
    choices: [
      {
        name: 'host to host (this host and one peer)',
        value: 'host-to-host',
        ...(ability.hostToHost === true
          ? {}
          : {disabled: `(not on this host: it needs ESP in the kernel, and this host has only ${ability.hostToHost}; choose site to site)`}),
      },
      {name: 'site to site (subnets behind each side)', value: 'site-to-site'},
      {name: 'a host joining a mesh of several peers', value: 'mesh'},
    ],
  })
}

/** The one peer's address (pinged once: a note when it does not answer) and the tunnel's name. */
async function askPeer(answers: Draft, runner: Runner, ask: Ask, log: (l: string) => void): Promise<void> {
  answers.remote = await ask<string>({type: 'input', message: "Peer's address:", validate: (s: string) => check(() => v.ipAddress(s, 'peer address'))})
  answers.remote = v.ipAddress(answers.remote!).ip
  const reach = await runner.probe({tool: 'ping', args: ['-c', '1', '-W', '1', answers.remote!]})
  if (reach.exitCode !== 0) log(`note: ${answers.remote} does not answer ping from here (it may still accept IKE)`)
  answers.name = await ask<string>({
    type: 'input',
    message: 'Name for this tunnel:',
    default: defaultName(answers.remote!),
    validate: validName,
  })
}

/** This host's address, by default the one the route to the peer leaves from. */
async function askLocal(remote: string | undefined, runner: Runner, ask: Ask): Promise<string> {
  const local = (await localAddressFor(runner, remote)) ?? ''
  return v.ipAddress(
    await ask<string>({
      type: 'input',
      message: "This host's address (the tunnel's local end):",
      default: local || undefined,
      validate: (s: string) => otherEnd(s, remote, 'local address', "the peer's address"),
    }),
  ).ip
}

/** The subnets behind this host, by default those found on it. */
async function askLocalSubnets(local: string, runner: Runner, ask: Ask): Promise<string[]> {
  const found = await localSubnets(runner, local)
  return list(
    await ask<string>({
      type: 'input',
      message: 'Subnets behind this host (comma-separated):',
      default: found.join(', ') || undefined,
      validate: validNetworks,
    }),
  )
}

/** The subnets behind the peer: at least one, none overlapping a local subnet. */
async function askRemoteSubnets(localSubnets: string[], ask: Ask): Promise<string[]> {
  return list(
    await ask<string>({
      type: 'input',
      message: 'Subnets behind the peer (comma-separated):',
      validate: (s: string) => {
        const ok = validNetworks(s)
        if (ok !== true) return ok
        for (const r of list(s)) for (const l of localSubnets) if (v.overlaps(l, r)) return `${r} overlaps local subnet ${l}`
        return list(s).length > 0 || 'give at least one subnet'
      },
    }),
  )
}

/** One mesh peer: its address, a name no other peer has, and its subnets (required when this host can only do subnets and has none). */
async function askMeshPeer(answers: Draft, ask: Ask, ability: HostAbility): Promise<Answers['peers'][number]> {
  const address = v.ipAddress(
    await ask<string>({
      type: 'input',
      message: `Peer ${answers.peers!.length + 1} address:`,
      validate: (s: string) => otherEnd(s, answers.local, 'peer address', "this host's address"),
    }),
  ).ip
  const taken = new Set(answers.peers!.map((p) => p.name))
  const name = await ask<string>({
    type: 'input',
    message: 'Its name:',
    default: defaultName(address),
    validate: (s: string) => (taken.has(s) ? `${s} is the name of another peer` : validName(s)),
  })
  const needSubnets = ability.hostToHost !== true && (answers.localSubnets ?? []).length === 0
  const subnets = list(
    await ask<string>({
      type: 'input',
      message: `Subnets behind it (comma-separated${needSubnets ? '' : ', empty for none'}):`,
      default: '',
      validate: (s: string) => {
        const ok = validNetworks(s)
        if (ok !== true) return ok
        return (
          !needSubnets ||
          list(s).length > 0 ||
          `give at least one: this host has no subnets behind it, and without ESP in the kernel (${ability.hostToHost}) a tunnel needs subnets on one side`
        )
      },
    }),
  )
  return {name, address, subnets}
}

/** How the hosts authenticate, and the files that needs. */
async function askAuth(ask: Ask): Promise<Answers['auth']> {
  const method = await ask<'psk-generate' | 'psk-file' | 'x509' | 'x509-generate'>({
    type: 'select',
    message: 'How do the hosts authenticate?',
    choices: [
      {name: 'a pre-shared key netkit generates (256 bits)', value: 'psk-generate'},
      {name: 'a pre-shared key from a file', value: 'psk-file'},
      {name: 'X.509 certificates I have', value: 'x509'},
      {name: "X.509 certificates made here (a new CA, with strongSwan's pki)", value: 'x509-generate'},
    ],
  })
  if (method === 'psk-file') {
    return {method, pskFile: await ask<string>({type: 'input', message: 'PSK file (mode 0600):', validate: validSecretFile})}
  }
  if (method === 'x509') {
    const cert = await ask<string>({type: 'input', message: "This host's certificate:", validate: validFile})
    const key = await ask<string>({type: 'input', message: 'Its private key (mode 0600):', validate: validSecretFile})
    const ca = await ask<string>({type: 'input', message: 'The CA certificate:', validate: validFile})
    return {method, cert, key, ca}
  }
  return {method}
}

/** The security profile; a warning for compat. */
async function askProfile(ask: Ask, log: (l: string) => void): Promise<Answers['profile']> {
  const profile = await ask<Answers['profile']>({
    type: 'select',
    message: 'Security profile:',
    choices: [
      {name: PROFILES.secure.label, value: 'secure'},
      {name: PROFILES.compat.label, value: 'compat'},
    ],
  })
  if (profile === 'compat') log(`warning: ${PROFILES.compat.warning}`)
  return profile
}

/** How often the ESP keys are renewed (seconds). */
async function askRekeyTime(ask: Ask): Promise<number> {
  return Number(
    await ask<string>({
      type: 'input',
      message: 'Rekey the ESP keys every (seconds):',
      default: '3600',
      validate: (s: string) => check(() => v.integer(s, 'rekey time', 60, 604800)),
    }),
  )
}

/** The dead peer detection interval (seconds, 0 for off). */
async function askDpd(ask: Ask): Promise<number> {
  return Number(
    await ask<string>({
      type: 'input',
      message: 'Dead peer detection interval (seconds, 0 for off):',
      default: '30',
      validate: (s: string) => check(() => v.integer(s, 'DPD interval', 0, 86400)),
    }),
  )
}
