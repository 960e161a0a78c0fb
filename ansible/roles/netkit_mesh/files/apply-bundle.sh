#!/bin/sh
# netkit_mesh: one host's bundle and its apply, run by the role's "script" task (no Python on the
# host). The render task writes one such file per host: this head, then the bundle's files (one a
# line: path under the host dir, content in base64) as the here-document at the end.
# Usage: sh apply.sh HOST_DIR NETKIT TRY_SECONDS
# Each file is written only when it differs; pre-shared keys of peers that left are removed; then
# "netkit apply --try --detach" (undone by itself unless "netkit apply --confirm" follows).
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
  exec "$bin" apply -f "$dir/host.yaml" --try "$secs" --detach --json
}
