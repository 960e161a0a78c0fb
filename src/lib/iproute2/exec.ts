/** Running a program inside a network namespace (`ip netns exec`). */
import {UsageError} from '../errors.js'
import type {Runner} from '../runner.js'
import {netnsExists} from './netns.js'

export async function execInNetns(runner: Runner, name: string, argv: string[]): Promise<number> {
  if (!netnsExists(name)) {
    throw new UsageError(`network namespace ${name} does not exist`, `create it with "netkit ns add ${name}", or check "netkit ns list"`, 'E_NO_NETNS')
  }
  if (argv.length === 0) throw new UsageError('no command given to run', `write it after --, e.g. netkit ns exec ${name} -- ip addr`)
  const [tool, ...args] = argv
  return runner.interactive({tool, args, netns: name})
}
