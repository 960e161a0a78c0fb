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
  return new UsageError(`host to host needs ESP in the kernel, and this host has only ${why}`, 'choose site to site (role site-to-site), with the subnets behind each side (localSubnets, remoteSubnets)', 'E_ANSWERS')
}

/** An error from the tunnel code, reworded for a person using the wizard (same code and exit status). */
export function inWizardTerms(error: unknown): unknown {
  if (!(error instanceof NetkitError)) return error
  const twin = /^tunnel (\S+) already joins (\S+) and (\S+): charon could not tell the two apart/.exec(error.what)
  if (twin) {
    const [, other, a, b] = twin
    return new UsageError(
      `tunnel ${other} already connects ${a} and ${b}, and charon cannot tell two tunnels between the same two addresses apart`,
      `to add subnets, run the wizard for ${other} (the same name) with the subnets of both, and let it replace ${other}; or delete ${other} first ("netkit tunnel del ${other}")`,
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
