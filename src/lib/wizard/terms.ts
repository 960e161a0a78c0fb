/**
 * The wizard speaks in its own terms: a person answered questions (or wrote
 * an answers file), so a refusal names the answer to change, never a flag of
 * "netkit tunnel add" that they did not type. Every error leaving the wizard
 * passes through `inWizardTerms`, in this one place.
 */
import {NetkitError, UsageError} from '../errors.js'

/** tunnel add's flags, as the wizard's questions and answers-file keys. The wizard's own flags (--replace, --timeout, ...) stay. */
const FLAGS: [RegExp, string][] = [
  [/--local-subnet\/--remote-subnet/g, 'the subnets behind each side (localSubnets, remoteSubnets)'],
  [/--local-subnet(?![\w-])/g, 'the subnets behind this host (localSubnets)'],
  [/--remote-subnet(?![\w-])/g, 'the subnets behind the peer (remoteSubnets)'],
  [/--local(?![\w-])/g, "this host's address (local)"],
  [/--remote(?![\w-])/g, "the peer's address (remote)"],
  [/--psk-file(?![\w-])/g, 'the PSK file (auth.pskFile)'],
  [/--cert(?![\w-])/g, "this host's certificate (auth.cert)"],
  [/--key(?![\w-])/g, 'its private key (auth.key)'],
  [/--ca(?![\w-])/g, 'the CA certificate (auth.ca)'],
  [/--rekey-time(?![\w-])/g, 'the rekey time (rekeyTime)'],
  [/--dpd(?![\w-])/g, 'the dead peer detection interval (dpd)'],
]

/** The settings tunnels sharing an IKE SA must agree on, as the driver names them, in the wizard's words. */
const SETTINGS: Record<string, string> = {
  '--cert/--psk-file': 'the authentication method (auth.method)',
  '--psk-file': 'the pre-shared key',
  '--proposals': 'the security profile (profile)',
  '--dpd': 'the dead peer detection interval (dpd)',
}

export function wizardWords(text: string): string {
  return FLAGS.reduce((t, [re, words]) => t.replace(re, words), text)
}

/** Host to host (no subnets on either side) needs ESP in the kernel; `why` says what this host has instead. */
export function hostToHostRefusal(why: string, peer?: string): UsageError {
  if (peer) {
    return new UsageError(
      `peer ${peer} has no subnets behind it and this host has none (localSubnets): a tunnel without subnets needs ESP in the kernel, and this host has only ${why}`,
      `give the subnets behind ${peer} or behind this host`,
      'E_ANSWERS',
    )
  }
  return new UsageError(
    `host to host needs ESP in the kernel, and this host has only ${why}`,
    'choose site to site (role site-to-site), with the subnets behind each side (localSubnets, remoteSubnets)',
    'E_ANSWERS',
  )
}

/** An error from the tunnel code, reworded for a person using the wizard (same code and exit status). */
export function inWizardTerms(error: unknown): unknown {
  if (!(error instanceof NetkitError)) return error
  // Tunnels between the same two hosts share one IKE SA, so they must be made alike (tunnel/ipsec/driver.ts).
  const sibling = /^tunnel (\S+) already joins (\S+) and (\S+), and the tunnels between two hosts share one IKE SA: this one differs in (.+)$/.exec(error.what)
  if (sibling) {
    const [, other, a, b, differ] = sibling
    const key = /its key is in (\S+?)\)/.exec(error.fix ?? '')?.[1]
    const what = differ.split(', ').map((flag) => SETTINGS[flag] ?? wizardWords(flag))
    return new UsageError(
      `tunnel ${other} already connects ${a} and ${b}, and tunnels between the same two hosts share one IKE SA: these answers differ from it in ${[...new Set(what)].join(', ')}`,
      key
        ? `authenticate with its pre-shared key: auth {method: psk-file, pskFile: ${key}} (in the questions: "a pre-shared key from a file", ${key})`
        : `answer as for ${other} (${[...new Set(what)].join(', ')})`,
      'E_ANSWERS',
    )
  }
  if (/^host-to-host IPsec needs the kernel data path/.test(error.what)) return hostToHostRefusal("strongSwan's kernel-libipsec")
  const what = wizardWords(error.what)
  const fix = error.fix === undefined ? undefined : wizardWords(error.fix)
  if (what === error.what && fix === error.fix) return error
  if (error instanceof UsageError) return new UsageError(what, fix, error.code)
  return new NetkitError(error.code, what, {fix, detail: error.detail, command: error.command, exit: error.exit, cause: error})
}
