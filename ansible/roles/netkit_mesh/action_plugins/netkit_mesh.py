# -*- coding: utf-8 -*-
"""netkit_mesh: the role's steps on one host, each one shell on the host in one round trip, the
script on the shell's standard input ("/bin/sh -s" or "/bin/bash -s"): never on a command line (IPsec
bundles hold pre-shared keys: ps on the host shows every argument) and never in a file on the host.
No Python is started on the host. A connection that cannot send data on a command's standard input
(Ansible's paramiko) is refused, naming it.

step: apply
  Runs the host's apply script (the role's render wrote it on the controller: files/apply-bundle.sh
  with the host's bundle inside). Options: script (on the controller), host_dir (netkit_host_dir),
  netkit (netkit_bin), try_seconds. On stdout, the report of netkit's waiter, which the script starts
  as "netkit apply --try --detach" would (one netkit process fewer per host; src/lib/apply/pending.ts):
  one line of JSON, {"pending": true, ...} when a change is pending (Ansible's "changed": it must be
  confirmed with netkit apply --confirm; the waiter's pid is the result's waiter_pid, for the keep
  step), {"pending": false, ...} when the host already matched, or
  {"error": {"code", "message", "fix", ...}} when netkit refused or the apply failed (undone): the
  task fails with netkit's message. The waiter's warnings are Ansible's warnings.

step: check | keep | verify
  files/mesh-checks.sh (static: no Jinja) after a few shell variables made here, in Python, from
  the play: which peers this host pings and in which order. Rendering that per host with Jinja
  templates cost Ansible about 0.3 s of CPU per host and task on a 50-host mesh (each worker
  compiles every template it meets again). check: the overlay reaches the peers rolled out so far,
  then netkit_check_command (option command); skipped when there is neither. keep: the change
  confirmed, told to the waiter the apply started (its pid, waiter_pid in the apply's result: the answer
  netkit apply --confirm would give, without starting netkit; netkit itself when that cannot be),
  and in the last batch the verification (the waiter then also runs the doctor's checks). verify: "netkit doctor" and
  every peer pings. Options: me, present (false: the host leaves the mesh), netkit, seconds,
  wireguard, doctor, command, checked (keep: this host's check ran, and its peers then are not
  pinged again). Read from the play as they are: the render's facts netkit__peers_of,
  netkit__overlay_of and netkit__names, and netkit__checking (the hosts of this batch whose apply
  changed something).
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shlex

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

STEPS = ('apply', 'check', 'keep', 'verify')


def reach(v, me, inventory_hostname, peers_of, overlay_of, names, checking):
    """This host's peers rolled out so far in this play (the hosts of earlier batches and of this one,
    still in it: a host that failed is no longer; batches are slices of the play's hosts, in order), in
    two lists for netkit_reach: "first", the ones this host starts the handshake with (after it in the
    play's order, or running no check: nothing changed there), and "awaited", the ones that start theirs
    with this host (before it, checking too)."""
    every = v['ansible_play_hosts_all']
    play = set(v['ansible_play_hosts'])
    index = {h: i for i, h in enumerate(every)}
    mine = set(peers_of.get(me) or [])
    checking = set(checking or [])
    upto = every[:index[v['ansible_play_batch'][-1]] + 1]
    first, awaited = [], []
    for h in upto:
        if h == inventory_hostname or h not in play:
            continue
        n = names.get(h, h)
        if n not in mine:
            continue
        (awaited if index[h] < index[inventory_hostname] and h in checking else first).append(overlay_of[n])
    return first, awaited


def verify_peers(v, me, inventory_hostname, peers_of, overlay_of, names, skip):
    """Every peer of this host ([name, address]); "first", the addresses of those after this host in the
    play's order or not in the play (this host starts their handshakes), "awaited", those before it;
    without the ones in skip (the peers this host's check reached moments before), counted in "checked"."""
    every = v['ansible_play_hosts_all']
    play = set(v['ansible_play_hosts'])
    earlier = set(names.get(h, h) for h in every[:every.index(inventory_hostname)] if h in play)
    skip = set(skip)
    out = {'all': [], 'first': [], 'awaited': [], 'checked': 0}
    for n in peers_of.get(me) or []:
        a = overlay_of[n]
        out['all'].append([n, a])
        if a in skip:
            out['checked'] += 1
        else:
            (out['awaited'] if n in earlier else out['first']).append(a)
    return out


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('step', 'script', 'host_dir', 'netkit', 'try_seconds', 'me', 'seconds', 'wireguard', 'doctor', 'command',
                             'checked', 'present'))

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = self._task.args
        step = args.get('step', 'apply')
        if step not in STEPS:
            raise AnsibleActionFail('netkit_mesh: step must be one of %s, not %r' % (', '.join(STEPS), step))
        if self._play_context.check_mode and step in ('apply', 'keep'):
            result['skipped'] = True
            result['msg'] = 'netkit_mesh %s changes the host: skipped in check mode (see "netkit diff")' % step
            return result
        if not self._connection.has_pipelining:
            raise AnsibleActionFail(
                'netkit_mesh: the connection %s cannot send a command its standard input, which carries the script'
                ' (keys never go on a command line): use ansible_connection=ssh, the default' % self._connection.transport)
        if step == 'apply':
            return self._apply(args, result)
        return self._step(step, args, task_vars, result)

    def _need(self, args, names):
        missing = [k for k in names if args.get(k) in (None, '')]
        if missing:
            raise AnsibleActionFail('netkit_mesh: missing option(s): %s' % ', '.join(missing))

    def _seconds(self, args, name):
        try:
            return int(args[name])
        except (TypeError, ValueError):
            raise AnsibleActionFail('netkit_mesh: %s must be a whole number of seconds, not %r' % (name, args[name]))

    def _run(self, command, script, result):
        # executable=False: the command as it is, not wrapped in another "sh -c".
        out = self._low_level_execute_command(command, in_data=script, executable=False)
        result.update(rc=out.get('rc'), stdout=out.get('stdout', ''), stderr=out.get('stderr', ''))
        result['stdout_lines'] = result['stdout'].splitlines()
        if out.get('rc') != 0:
            result['failed'] = True
            result['changed'] = False
            result['msg'] = 'non-zero return code'
        return result

    def _apply(self, args, result):
        self._need(args, ('script', 'host_dir', 'netkit', 'try_seconds'))
        seconds = self._seconds(args, 'try_seconds')
        source = self._loader.path_dwim(to_text(args['script']))
        try:
            with open(to_bytes(source), 'rb') as f:
                script = f.read()
        except OSError as e:
            raise AnsibleActionFail('netkit_mesh: cannot read the apply script %s (%s): run the role\'s render first' % (source, e.strerror))
        argv = ' '.join(shlex.quote(to_text(a)) for a in (args['host_dir'], args['netkit'], str(seconds)))
        self._run('/bin/sh -s -- %s' % argv, script, result)
        if result.get('failed'):
            return result
        report = None
        for line in result['stdout'].splitlines():
            try:
                report = json.loads(line)
                break
            except ValueError:
                continue
        if not isinstance(report, dict):
            result['failed'] = True
            result['changed'] = False
            result['msg'] = ('netkit apply ended without a report (see netkit\'s log on the host: '
                             '${NETKIT_STATE_DIR:-/run/netkit}/apply-detached.log)')
            return result
        warnings = [to_text(w) for w in report.get('warnings') or [] if isinstance(w, str)]
        if warnings:
            result['warnings'] = warnings
        error = report.get('error')
        if error is not None:
            error = error if isinstance(error, dict) else {'message': to_text(error)}
            result['failed'] = True
            result['changed'] = False
            result['netkit_error'] = error
            result['msg'] = 'netkit apply: %s%s' % (error.get('message', 'failed'), ' (%s)' % error['fix'] if error.get('fix') else '')
            return result
        result['changed'] = bool(report.get('pending'))
        # The waiter holding the change: the keep step tells it directly (files/mesh-checks.sh).
        if report.get('pending') and isinstance(report.get('pid'), int):
            result['waiter_pid'] = report['pid']
        return result

    def _step(self, step, args, v, result):
        self._need(args, ('me', 'seconds', 'netkit'))
        me = to_text(args['me'])
        host = v['inventory_hostname']
        # The render's facts, read as they are: as task options they would be templated for every host,
        # each whole map written out as text and parsed back (netkit__peers_of lists every pair).
        peers_of = v.get('netkit__peers_of') or {}
        overlay_of = v.get('netkit__overlay_of') or {}
        names = v.get('netkit__names') or {}
        # check: the peers rolled out so far; keep: the same, which its check reached (not pinged again).
        first, awaited = reach(v, me, host, peers_of, overlay_of, names, v.get('netkit__checking')) if step != 'verify' else ([], [])
        env = {
            'NK_STEP': step,
            'NK_ME': me,
            'NK_SRC': overlay_of.get(me, ''),
            'NK_WIREGUARD': '1' if boolean(args.get('wireguard', False)) else '0',
            'NK_SECONDS': str(self._seconds(args, 'seconds')),
            'NK_BIN': to_text(args['netkit']),
            'NK_DOCTOR': '1' if boolean(args.get('doctor', False)) else '0',
            'NK_COMMAND': to_text(args.get('command') or ''),
            'NK_VERIFY': '0',
            'NK_CHECKED': '0',
            'NK_PEERS': '',
            'NK_PID': str((v.get('netkit__apply') or {}).get('waiter_pid') or '') if step == 'keep' else '',
        }
        if step == 'check':
            if not (first or awaited) and not env['NK_COMMAND']:
                result['skipped'] = True
                result['changed'] = False
                result['msg'] = 'no peer rolled out yet to reach, and no netkit_check_command'
                return result
            env.update(NK_FIRST=' '.join(first), NK_AWAITED=' '.join(awaited))
        else:
            verifying = step == 'verify' or (boolean(args.get('present', True)) and v['ansible_play_batch'][-1] == v['ansible_play_hosts_all'][-1]
                                             and 'netkit_verify' not in (v.get('ansible_skip_tags') or []))
            # The peers this host's check reached just before (and still in the play: a peer that failed its
            # own check, and undid its change, is pinged again) are not pinged twice. None when the check did
            # not run (skipped by its tag, or nothing to reach).
            skip = first + awaited if step == 'keep' and boolean(args.get('checked', False)) else []
            p = verify_peers(v, me, host, peers_of, overlay_of, names, skip)
            env.update(NK_VERIFY='1' if verifying else '0', NK_FIRST=' '.join(p['first']), NK_AWAITED=' '.join(p['awaited']),
                       NK_CHECKED=str(p['checked']), NK_PEERS='\n'.join('%s %s' % (a, n) for n, a in p['all']))
            if not verifying:
                env['NK_DOCTOR'] = '0'
        source = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'files', 'mesh-checks.sh')
        with open(source, 'rb') as f:
            library = f.read()
        head = ''.join('%s=%s\n' % (k, shlex.quote(val)) for k, val in sorted(env.items()))
        self._run('/bin/bash -s', to_bytes(head) + library, result)
        result['changed'] = False
        return result
