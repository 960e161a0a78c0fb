"""Writes each host's apply script on the controller (the netkit_mesh role's render task).

Usage: python3 apply-scripts.py OUT SCRIPTS HEAD MEMBERS LEAVING
  OUT      the render's output folder (OUT/<host>/host.yaml, OUT/<host>/secrets/<peer>.psk)
  SCRIPTS  where the scripts go (SCRIPTS/<host>.sh, mode 0600: IPsec ones hold keys)
  HEAD     files/apply-bundle.sh (the script's logic)
  MEMBERS  the hosts in the mesh, comma-separated; LEAVING the hosts that leave it

A script is HEAD, then the host's bundle as the here-document of its last line, one file a line:
its path under the host folder and its content in base64. A leaving host gets an empty host file
(its apply removes what it made there). Each script is written only when it differs (atomically);
scripts of hosts no longer in the group are removed. One process for every host (a shell loop
started several processes per host).
"""
import base64
import os
import sys

out, scripts, head_path, members, leaving = sys.argv[1:6]
members = [m for m in members.split(',') if m]
leaving = [m for m in leaving.split(',') if m]
os.umask(0o077)
os.makedirs(scripts, exist_ok=True)
with open(head_path, encoding='utf-8') as f:
    head = f.read()


def line(rel, data):
    return f"{rel} {base64.b64encode(data).decode('ascii')}\n"


def bundle(name):
    lines = []
    with open(os.path.join(out, name, 'host.yaml'), 'rb') as f:
        lines.append(line('host.yaml', f.read()))
    secrets = os.path.join(out, name, 'secrets')
    if os.path.isdir(secrets):
        for p in sorted(os.listdir(secrets)):
            if p.endswith('.psk'):
                with open(os.path.join(secrets, p), 'rb') as f:
                    lines.append(line(f'secrets/{p}', f.read()))
    return lines


def write(name, lines):
    text = head + "netkit_apply_bundle \"$@\" <<'NETKIT_BUNDLE'\n" + ''.join(lines) + 'NETKIT_BUNDLE\n'
    path = os.path.join(scripts, f'{name}.sh')
    try:
        with open(path, encoding='utf-8') as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    new = os.path.join(scripts, f'.{name}.new.{os.getpid()}')
    with open(new, 'w', encoding='utf-8') as f:
        f.write(text)
    os.replace(new, path)


for name in members:
    write(name, bundle(name))
for name in leaving:
    write(name, [line('host.yaml', b'version: 1')])
for p in os.listdir(scripts):
    if p.endswith('.sh') and p[:-3] not in members and p[:-3] not in leaving:
        os.remove(os.path.join(scripts, p))
