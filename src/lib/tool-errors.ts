/**
 * What the wrapped tools say, in plain words: each rule matches a tool's
 * stderr and says what went wrong and what to do. The original message stays
 * on the error (`detail`) for --verbose.
 */
import {ExitCode, NetkitError} from './errors.js'
import {inNamespace, netnsFlag} from './wording.js'

export interface ToolFailure {
  tool: string
  args: string[]
  object?: string
  netns?: string
  command: string
  exitCode: number
  stderr: string
  timedOut?: boolean
}

interface Rule {
  code: string
  match: RegExp
  tool?: string | RegExp
  /** Only when the command's arguments contain this word (e.g. 'xfrm'). */
  when?: (f: ToolFailure) => boolean
  exit?: 1 | 2
  message: (f: ToolFailure, m: RegExpExecArray) => string
  fix: (f: ToolFailure, m: RegExpExecArray) => string | undefined
}

const what = (f: ToolFailure, fallback = 'the object'): string => f.object ?? fallback
const inNs = (f: ToolFailure): string => inNamespace(f.netns)
const has = (word: string) => (f: ToolFailure) => f.args.includes(word)

const RULES: Rule[] = [
  {
    // A wrapper (ip netns exec, nsenter) that could not start the tool: it is missing, not some object.
    code: 'E_TOOL_MISSING',
    match: /(?:failed to execute|exec of) "?([^":\s]+)"?(?: failed)?: No such file or directory/i,
    message: (_f, m) => `${m[1]} is not installed`,
    fix: (_f, m) =>
      PACKAGES[m[1]] ? `apt-get install --no-install-recommends ${PACKAGES[m[1]]}` : `install the package that provides ${m[1]} (see "netkit doctor")`,
  },
  {
    code: 'E_NO_ESP',
    match: /Requested type not found|Protocol not supported/i,
    when: (f) => f.args.includes('xfrm') && f.args.includes('state'),
    message: () => 'the kernel has no ESP support (CONFIG_INET_ESP is not built or loaded)',
    fix: () => 'load it with "modprobe esp4 esp6", or use the userspace data path (netkit tunnel add --datapath userspace, strongSwan kernel-libipsec)',
  },
  {
    code: 'E_NO_ALGO',
    match: /Requested (AEAD|ENC|AUTH|COMP)? ?algorithm not found|algorithm not found/i,
    message: (f, m) => `the kernel does not provide the ${m[1]?.toLowerCase() ?? 'requested'} algorithm for ${what(f, 'this SA')}`,
    fix: () => 'pick an algorithm listed in /proc/crypto (for example cbc(aes) with hmac(sha256)), or load the crypto module',
  },
  {
    code: 'E_NO_WIREGUARD',
    match: /Unknown device type|Error: Unknown device type/i,
    when: has('wireguard'),
    message: () => 'the kernel has no WireGuard module',
    fix: () => 'use the userspace data path (wireguard-go), which netkit picks by itself with --datapath auto',
  },
  {
    code: 'E_NO_LINK_TYPE',
    match: /Unknown device type/i,
    message: (f) => `the kernel does not support the link type of ${what(f, 'this link')}`,
    fix: () => 'load the module for that link type (modprobe), or choose another --type',
  },
  {
    code: 'E_VNI_IN_USE',
    match: /VXLAN device with the specified VNI already exists/i,
    message: (f) => `another VXLAN device${inNs(f)} already uses the VNI of ${what(f, 'this link')} (on the same port)`,
    fix: () => 'give another --vni, or remove that device (netkit link list shows them)',
  },
  {
    code: 'E_BRIDGE_PORT',
    match: /Can not enslave a bridge to a bridge/i,
    exit: ExitCode.usage,
    message: (f) => `${what(f)} is a bridge, and a bridge cannot be a port of another bridge`,
    fix: () => 'join two bridges with a veth pair (one end in each), or give a veth, vxlan or macvlan as the port',
  },
  {
    code: 'E_NOT_LOCAL_SRC',
    match: /Invalid prefsrc address/i,
    exit: ExitCode.usage,
    message: (f) => `the source address of ${what(f, 'the route')} is not an address of this host${inNs(f)}`,
    fix: () => 'give one of its own addresses as --src (netkit addr list shows them)',
  },
  {
    code: 'E_EXISTS',
    match: /File exists|already exists/i,
    message: (f) => `${what(f)} already exists${inNs(f)} and differs from what was asked`,
    fix: () => 'delete it first, or change the request to match it (netkit ... list shows what is there)',
  },
  {
    code: 'E_NOT_FOUND_DEV',
    match: /Cannot find device "([^"]+)"|Device "([^"]+)" does not exist|cannot find device/i,
    exit: ExitCode.usage,
    message: (f, m) => `link ${m[1] ?? m[2] ?? ''} does not exist${inNs(f)}`.replace('link  ', 'link '),
    fix: (f) => `check the name with "netkit link list${netnsFlag(f.netns)}"`,
  },
  {
    code: 'E_NO_NETNS',
    match: /Cannot open network namespace "([^"]+)"|No such file or directory.*netns|Invalid netns value/i,
    exit: ExitCode.usage,
    message: (_f, m) => `network namespace ${m[1] ?? ''} does not exist`.replace('namespace  ', 'namespace '),
    fix: (_f, m) => `create it with "netkit ns add ${m[1] ?? 'NAME'}", or check "netkit ns list"`,
  },
  {
    code: 'E_UNREACHABLE_GW',
    match: /Nexthop has invalid gateway|Network is unreachable/i,
    message: (f) => `the gateway of ${what(f, 'this route')} is not reachable${inNs(f)}`,
    fix: () => 'add an address on the same subnet as the gateway to the outgoing link first, or pass --dev',
  },
  {
    code: 'E_NO_SUCH_OBJECT',
    match: /No such process|No such file or directory|Cannot assign requested address|does not exist/i,
    message: (f) => `${what(f)} does not exist${inNs(f)}`,
    fix: () => 'nothing to remove; check the current state with the matching list command',
  },
  {
    code: 'E_BUSY',
    match: /Device or resource busy/i,
    message: (f) => `${what(f)} is busy${inNs(f)}`,
    fix: () => 'it is in use by something else: remove what uses it first, or wait and try again',
  },
  {
    code: 'E_PERMISSION',
    match: /Operation not permitted|Permission denied/i,
    message: (f) => `not permitted to change ${what(f)}`,
    fix: () => 'run netkit as root (or with CAP_NET_ADMIN)',
  },
  {
    code: 'E_IKE_CONFIG',
    tool: 'swanctl',
    // "loading connection 'x' failed: invalid value for: proposals, config discarded"
    match: /loading connection [^\n]* failed(?:: invalid value for: ([A-Za-z_]+))?|invalid value for: ([A-Za-z_]+)|parsing [^\n]* failed/i,
    exit: ExitCode.usage,
    message: (f, m) =>
      `charon refused ${what(f, 'the connection')}${(m[1] ?? m[2]) ? `: its ${(m[1] ?? m[2]).replace(/_/g, ' ')} setting is not valid` : ' as invalid'}${inNs(f)}`,
    fix: (_f, m) =>
      /proposals/.test(m[1] ?? m[2] ?? '')
        ? 'give proposals strongSwan knows, e.g. aes256gcm16-prfsha256-ecp256 (see "swanctl --list-algs")'
        : "check the tunnel's options (run with --verbose for what swanctl said)",
  },
  {
    code: 'E_INVALID',
    match: /Invalid argument|invalid|Error: argument .* is wrong|Garbage instead of arguments|is not a valid/i,
    message: (f) => `the kernel refused ${what(f, 'the request')} as invalid${inNs(f)}`,
    fix: () => "check the values (run with --verbose to see the tool's own words)",
  },
  {
    code: 'E_TOOL_MISSING',
    match: /command not found|ENOENT/i,
    message: (f) => `${f.tool} is not installed`,
    fix: (f) =>
      PACKAGES[f.tool] ? `apt-get install --no-install-recommends ${PACKAGES[f.tool]}` : `install the package that provides ${f.tool} (see "netkit doctor")`,
  },
]

/** The Debian package of each tool netkit runs. */
const PACKAGES: Record<string, string> = {
  ip: 'iproute2',
  sysctl: 'procps',
  swanctl: 'strongswan-swanctl',
  pki: 'strongswan-pki',
  wg: 'wireguard-tools',
  'wireguard-go': 'wireguard-go',
  tcpdump: 'tcpdump',
  ping: 'iputils-ping',
}

export function translateFailure(f: ToolFailure): NetkitError {
  if (f.timedOut) {
    return new NetkitError('E_TIMEOUT', `${f.tool} did not finish in time${f.object ? ` while working on ${f.object}` : ''}`, {
      fix: 'check that the system is not overloaded and that the tool is not waiting on something, then try again',
      detail: f.stderr,
      command: f.command,
    })
  }
  for (const rule of RULES) {
    if (rule.tool && !(typeof rule.tool === 'string' ? rule.tool === f.tool : rule.tool.test(f.tool))) continue
    if (rule.when && !rule.when(f)) continue
    const m = rule.match.exec(f.stderr)
    if (!m) continue
    return new NetkitError(rule.code, rule.message(f, m), {
      fix: rule.fix(f, m),
      detail: f.stderr,
      command: f.command,
      exit: rule.exit ?? ExitCode.failed,
    })
  }
  const first = f.stderr.split('\n').find((l) => l.trim()) ?? `exit status ${f.exitCode}`
  return new NetkitError('E_TOOL', `${f.tool} failed${f.object ? ` on ${f.object}` : ''}: ${first.trim()}`, {
    fix: 'run with --verbose to see the full command and output',
    detail: f.stderr,
    command: f.command,
  })
}
