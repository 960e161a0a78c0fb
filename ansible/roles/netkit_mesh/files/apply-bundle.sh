#!/bin/sh
# netkit_mesh: one host's bundle and its apply, run by the role's action (action_plugins/
# netkit_mesh.py, step apply) with /bin/sh on the host, this script on the shell's stdin (no Python
# on the host). The render task writes one such file per host: this head, then the bundle's files
# (one a line: path under the host dir, content in base64) as the here-document at the end.
# Usage: sh apply.sh HOST_DIR NETKIT TRY_SECONDS
# Each file is written only when it differs; pre-shared keys of peers that left are removed; then
# "netkit apply --try --detach" (undone by itself unless "netkit apply --confirm" follows): its
# waiter, started by this script. Prints the waiter's report (one line of JSON).
set -eu
netkit_apply_bundle() {
  dir=$1 bin=$2 secs=$3
  umask 077
  mkdir -p "$dir/secrets"
  keep=" "
  while read -r rel data; do
    [ -n "$rel" ] || continue
    new="$dir/.netkit-new.$$"
    printf '%s' "$data" | base64 -d > "$new"
    if cmp -s "$new" "$dir/$rel"; then rm -f "$new"; else mv -f "$new" "$dir/$rel"; fi
    keep="$keep$rel "
  done
  for f in "$dir"/secrets/*.psk; do
    [ -e "$f" ] || continue
    case "$keep" in *" secrets/${f##*/} "*) ;; *) rm -f "$f" ;; esac
  done
  # The waiter of "netkit apply --try --detach", started here as netkit's own starter would start
  # it (src/lib/apply/pending.ts startWaiter), which saves that netkit process on every host: in a
  # session of its own (setsid: the SSH session closing sends it no hangup), stdin /dev/null, its
  # output to the log in netkit's state directory, its one-line JSON report on fd 3: this script's
  # standard output, which the role's action reads. ssh returns once the waiter has told it (the
  # change pending, nothing to do, or its error) and closed fd 3; the waiter lives on.
  state=${NETKIT_STATE_DIR:-/run/netkit}
  mkdir -p "$state"
  setsid "$bin" apply -f "$dir/host.yaml" --try "$secs" --detach --json --waiter 3>&1 >"$state/apply-detached.log" 2>&1 </dev/null &
}
