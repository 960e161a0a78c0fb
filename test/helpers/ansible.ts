/**
 * Real Ansible (ansible-core from Debian) as the controller, run from the root
 * namespace against simulated hosts reached by ssh (sshhost.ts). Everything
 * Ansible writes (its config, temp files, control sockets) stays in the
 * world's folder: nothing of the machine's ~/.ansible is used.
 */
import {spawn, spawnSync} from 'node:child_process'
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {dump as dumpYaml} from 'js-yaml'

import {BIN} from './cli.js'
import {sshWorld, type SshWorld} from './sshhost.js'

export const ANSIBLE_DIR = fileURLToPath(new URL('../../../ansible', import.meta.url))
export const hasAnsible = spawnSync('ansible-playbook', ['--version']).status === 0 && spawnSync('/usr/sbin/sshd', ['-V']).status !== null
export const skipUnlessAnsible = hasAnsible ? false : 'needs ansible-core and openssh-server (scripts/setup.sh installs them)'

export interface TaskResult {
  task: string
  changed: boolean
  failed: boolean
  skipped: boolean
  unreachable: boolean
  msg?: string
  stdout?: string
  /** Seconds from the task's start to this host's result. */
  seconds?: number
}

export interface PlaybookRun {
  code: number
  seconds: number
  /** PLAY RECAP per host: ok, changed, failures, unreachable, skipped, rescued, ignored. */
  stats: Record<string, {ok: number; changed: number; failures: number; unreachable: number; skipped: number; rescued: number}>
  /** Every task's result per host, in order. */
  results: Record<string, TaskResult[]>
  /** The names of the tasks that changed something on a host. */
  changedTasks(host: string): string[]
  /** The first failure (or unreachable) message of a host. */
  failure(host: string): string | undefined
  /** Every task start (a task once per batch) and the seconds until its last host answered, in order. */
  tasks: Array<{task: string; seconds: number}>
  /** CPU seconds of ansible-playbook and the processes it waited for (its forks, ssh clients; not the hosts' side). */
  cpuSeconds: number
  stdout: string
  stderr: string
}

/** An Ansible callback that records every task result and the recap as JSON (ansible-core has no json callback). */
const RECORDER = `import json, os, resource, time
from ansible.plugins.callback import CallbackBase

class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'netkit_record'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.results = []
        self.started = {}
        self.tasks = []

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.started[task._uuid] = time.time()
        self.tasks.append({'task': task.get_name(), 'start': time.time(), 'end': time.time()})

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def _add(self, result, status):
        r = result._result
        self.results.append({'host': result._host.get_name(), 'task': result._task.get_name(), 'status': status,
                             'changed': bool(r.get('changed')), 'msg': str(r.get('msg', '')), 'stdout': str(r.get('stdout', '')),
                             'seconds': round(time.time() - self.started.get(result._task._uuid, time.time()), 2)})
        if self.tasks:
            self.tasks[-1]['end'] = time.time()

    def v2_runner_on_ok(self, result):
        self._add(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._add(result, 'ignored' if ignore_errors else 'failed')

    def v2_runner_on_skipped(self, result):
        self._add(result, 'skipped')

    def v2_runner_on_unreachable(self, result):
        self._add(result, 'unreachable')

    def v2_playbook_on_stats(self, stats):
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
        tasks = [{'task': t['task'], 'seconds': round(t['end'] - t['start'], 2)} for t in self.tasks]
        out = {'results': self.results, 'stats': {h: stats.summarize(h) for h in sorted(stats.processed.keys())},
               'tasks': tasks, 'cpuSeconds': round(cpu, 2)}
        with open(os.environ['NETKIT_TEST_RECORD'], 'w') as f:
            json.dump(out, f)
`

let runs = 0

/**
 * The controller's side of a world: ansible.cfg (the repository's role on the
 * roles path, the world's key, no host-key prompts, short ssh timeouts) and
 * a shared netkit the hosts and the controller run (the single binary when
 * NETKIT_BIN is set, else a wrapper that runs this checkout with node).
 * `strategy`: Ansible's strategy (default linear; the bench also runs
 * mitogen_linear, from Debian's ansible-mitogen, with `strategyPlugins` its folder).
 */
export function controller(world: SshWorld, opts: {strategy?: string; strategyPlugins?: string} = {}) {
  const dir = join(world.dir, 'controller')
  mkdirSync(join(dir, 'tmp'), {recursive: true})
  mkdirSync(join(dir, 'callback_plugins'))
  writeFileSync(join(dir, 'callback_plugins', 'netkit_record.py'), RECORDER)
  const netkit = process.env.NETKIT_BIN ?? join(dir, 'netkit')
  if (!process.env.NETKIT_BIN) writeFileSync(netkit, `#!/bin/sh\nexec ${process.execPath} ${BIN} "$@"\n`, {mode: 0o755})
  const sshArgs = world.sshArgs.filter((a) => !a.startsWith('-i') && !a.includes('id_ed25519')).join(' ')
  writeFileSync(
    join(dir, 'ansible.cfg'),
    `[defaults]
roles_path = ${join(ANSIBLE_DIR, 'roles')}
interpreter_python = /usr/bin/python3
host_key_checking = false
forks = 60
gathering = explicit
retry_files_enabled = false
local_tmp = ${join(dir, 'tmp')}
remote_tmp = /root/.ansible/tmp
callback_plugins = ${join(dir, 'callback_plugins')}
callbacks_enabled = netkit_record
deprecation_warnings = false
timeout = 10
${opts.strategy ? `strategy = ${opts.strategy}\n` : ''}${opts.strategyPlugins ? `strategy_plugins = ${opts.strategyPlugins}\n` : ''}
[ssh_connection]
pipelining = true
control_path_dir = ${join(dir, 'cp')}
ssh_args = -o ControlMaster=auto -o ControlPersist=120s ${sshArgs}
`,
  )

  /** Writes an inventory: group netkit_mesh with `hosts` (name -> host vars) and group `vars`. */
  const inventory = (name: string, hosts: Record<string, Record<string, unknown>>, vars: Record<string, unknown>): string => {
    const file = join(dir, `${name}.yml`)
    const all: Record<string, unknown> = {
      ansible_user: 'root',
      ansible_ssh_private_key_file: world.key,
      netkit_binary_src: netkit,
      netkit_controller_netkit: netkit,
      netkit_fleet_dir: join(dir, `fleet-${name}`),
      netkit_install_packages: false,
      ...vars,
    }
    writeFileSync(file, dumpYaml({netkit_mesh: {hosts, vars: all}}))
    return file
  }

  /** The inventory entry of a world's host: reached on its management address, peers use its underlay address. */
  const hostVars = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => {
    const h = world.hosts.find((x) => x.name === name)
    if (!h) throw new Error(`no host ${name}`)
    return {ansible_host: h.mgmt, netkit_address: h.address, ...extra}
  }

  /** Runs ansible-playbook (bounded) and reads its JSON report. */
  const playbook = async (inv: string, args: string[] = [], opts: {playbook?: string; timeoutMs?: number} = {}): Promise<PlaybookRun> => {
    const started = Date.now()
    const record = join(dir, `run-${++runs}.json`)
    const child = spawn('ansible-playbook', ['-i', inv, opts.playbook ?? join(ANSIBLE_DIR, 'site.yml'), ...args], {
      env: {
        ...process.env,
        ANSIBLE_CONFIG: join(dir, 'ansible.cfg'),
        ANSIBLE_HOME: join(dir, 'home'),
        ANSIBLE_NOCOLOR: '1',
        ANSIBLE_FORCE_COLOR: '0',
        NETKIT_TEST_RECORD: record,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 400_000)
    const code: number = await new Promise((resolve) => child.once('exit', (c) => resolve(c ?? -1)))
    clearTimeout(timer)
    let report: any = {results: [], stats: {}}
    try {
      report = JSON.parse(readFileSync(record, 'utf8'))
    } catch {
      // no record: ansible-playbook stopped before its end; stdout/stderr say why
    }
    const results: Record<string, TaskResult[]> = {}
    for (const r of report.results ?? []) {
      ;(results[r.host] ??= []).push({
        task: r.task,
        changed: r.changed,
        failed: r.status === 'failed',
        skipped: r.status === 'skipped',
        unreachable: r.status === 'unreachable',
        msg: r.msg,
        stdout: r.stdout,
        seconds: r.seconds,
      })
    }
    return {
      code,
      seconds: (Date.now() - started) / 1000,
      stats: report.stats ?? {},
      results,
      changedTasks: (h) => (results[h] ?? []).filter((r) => r.changed).map((r) => r.task),
      failure: (h) => (results[h] ?? []).find((r) => r.failed || r.unreachable)?.msg,
      tasks: report.tasks ?? [],
      cpuSeconds: report.cpuSeconds ?? 0,
      stdout,
      stderr,
    }
  }

  return {dir, netkit, inventory, hostVars, playbook}
}

/** A short account of a playbook run for assertion messages: the recap and every failure. */
export function explain(run: PlaybookRun): string {
  const lines = [`exit ${run.code} after ${run.seconds.toFixed(1)} s`]
  for (const [h, s] of Object.entries(run.stats))
    lines.push(`${h}: ok=${s.ok} changed=${s.changed} failed=${s.failures} unreachable=${s.unreachable} rescued=${s.rescued}`)
  for (const [h, rs] of Object.entries(run.results))
    for (const r of rs) if (r.failed || r.unreachable) lines.push(`${h} [${r.task}]: ${r.msg ?? ''} ${r.stdout ?? ''}`.trim())
  if (!Object.keys(run.stats).length) lines.push(run.stdout.slice(-3000), run.stderr.slice(-3000))
  return lines.join('\n')
}

/** The hosts a run reported changed, sorted. */
export function changedHosts(run: PlaybookRun): string[] {
  return Object.entries(run.stats)
    .filter(([, s]) => s.changed > 0)
    .map(([h]) => h)
    .sort()
}

/**
 * The simulated hosts of an Ansible test, booted once more from scratch when the first boot fails
 * (said in the output first: a before hook's failure is easy to lose among the cancelled tests).
 */
export function bootSshWorld(tag: string, names: string[]): SshWorld {
  try {
    return sshWorld(tag, names)
  } catch (error) {
    console.error(`# the simulated hosts did not come up, trying again once: ${(error as Error).message}`)
    return sshWorld(tag, names)
  }
}
