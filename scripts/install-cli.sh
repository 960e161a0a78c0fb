#!/usr/bin/env bash
# Puts `netkit` on PATH after a build from source: a symlink $PREFIX/bin/netkit (default
# /usr/local/bin/netkit) to this checkout's bin/run.js, which runs with the node on PATH, and
# netkit's bash completion where bash-completion finds it. Run by scripts/setup.sh; again after
# moving the checkout. A $PREFIX/bin/netkit that is not a symlink (the single binary, copied
# there by hand) is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${PREFIX:-/usr/local}
link="$prefix/bin/netkit"
target="$PWD/bin/run.js"
mkdir -p "$prefix/bin"
if [[ -e $link && ! -L $link ]]; then
  echo "setup: $link is not a symlink (the single binary?): left as it is" >&2
else
  ln -sfn "$target" "$link"
  echo "setup: netkit is on PATH ($link -> $target); start with: netkit --help"
fi
comp="$prefix/share/bash-completion/completions"
mkdir -p "$comp"
node bin/run.js autocomplete bash > "$comp/.netkit.tmp"
mv -f "$comp/.netkit.tmp" "$comp/netkit"
