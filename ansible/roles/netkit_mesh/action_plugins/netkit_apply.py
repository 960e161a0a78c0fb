# -*- coding: utf-8 -*-
"""netkit_apply: runs one host's apply script (the role's render wrote it on the controller:
files/apply-bundle.sh with the host's bundle inside) with /bin/sh on the host, in one round trip.

The script goes to the shell on its standard input ("/bin/sh -s"), never on a command line (IPsec
bundles hold pre-shared keys: ps on the host shows every argument) and never into a file on the
host. A connection that cannot send data on a command's standard input (Ansible's paramiko) is
refused, naming it.

No Python is started on the host, and it is one task for every bundle: an Ansible task costs a
worker process per host even when its "when" skips it.

Options:
  script       the apply script, on the controller
  host_dir     where the bundle goes on the host (netkit_host_dir)
  netkit       the netkit binary on the host (netkit_bin)
  try_seconds  the change is undone by the host itself unless confirmed within this

Result: rc, stdout, stderr; on stdout the report of netkit's waiter, which the script starts as
"netkit apply --try --detach" would (one netkit process fewer per host; src/lib/apply/pending.ts):
one line of JSON, {"pending": true, ...} when a change is pending (Ansible's "changed": it must be
confirmed with netkit apply --confirm), {"pending": false, ...} when the host already matched, or
{"error": {"code", "message", "fix", ...}} when netkit refused or the apply failed (undone): the
task fails with netkit's message. The waiter's warnings are Ansible's warnings.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import shlex

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('script', 'host_dir', 'netkit', 'try_seconds'))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars or {})
        del tmp

        if self._play_context.check_mode:
            result['skipped'] = True
            result['msg'] = 'netkit_apply changes the host: skipped in check mode (see "netkit diff")'
            return result

        args = self._task.args
        missing = [k for k in sorted(self._VALID_ARGS) if args.get(k) in (None, '')]
        if missing:
            raise AnsibleActionFail('netkit_apply: missing option(s): %s' % ', '.join(missing))
        try:
            seconds = int(args['try_seconds'])
        except (TypeError, ValueError):
            raise AnsibleActionFail('netkit_apply: try_seconds must be a whole number of seconds, not %r' % (args['try_seconds'],))
        source = self._loader.path_dwim(to_text(args['script']))
        try:
            with open(to_bytes(source), 'rb') as f:
                script = f.read()
        except OSError as e:
            raise AnsibleActionFail('netkit_apply: cannot read the apply script %s (%s): run the role\'s render first' % (source, e.strerror))
        argv = ' '.join(shlex.quote(to_text(a)) for a in (args['host_dir'], args['netkit'], str(seconds)))

        if not self._connection.has_pipelining:
            raise AnsibleActionFail(
                'netkit_apply: the connection %s cannot send a command its standard input, which carries the bundle'
                ' (its keys never go on a command line): use ansible_connection=ssh, the default' % self._connection.transport)
        # executable=False: the command as it is, not wrapped in another "sh -c".
        out = self._low_level_execute_command('/bin/sh -s -- %s' % argv, in_data=script, executable=False)

        result.update(rc=out.get('rc'), stdout=out.get('stdout', ''), stderr=out.get('stderr', ''))
        result['stdout_lines'] = result['stdout'].splitlines()
        if out.get('rc') != 0:
            result['failed'] = True
            result['changed'] = False
            result['msg'] = 'non-zero return code'
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
        return result
