#!/usr/bin/env bash
# Builds the single binary and runs the integration tests against it, with a
# PATH that holds the tools netkit runs and no node: the binary must need none.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build:binary --silent
tools=$(mktemp -d)
cache=$(mktemp -d)
trap 'rm -rf "$tools" "$cache"' EXIT
for t in ip sysctl swanctl pki wg wireguard-go wg-quick tcpdump ping modprobe timeout kill unshare nsenter sh mount mkdir sleep cat bash; do
  p=$(type -P "$t" || true)  # a path, never a shell builtin (kill)
  [[ -n $p ]] && ln -s "$p" "$tools/$t"
done
if PATH=$tools command -v node >/dev/null; then echo "node is on the test PATH" >&2; exit 1; fi
# The files that exercise what differs in the binary (the node run covers the rest: the code is the
# same): how it starts and finds its payload (templates: WireGuard's and strongSwan's files), how it
# runs the tools and starts daemons (wireguard-go, charon), and how it starts itself again (the
# detached waiter of "apply --try --detach", which a fleet rollout relies on).
files=(realhost tunnel-wireguard tunnel-ipsec fleet)
NETKIT_BIN="$PWD/dist/netkit" NETKIT_BIN_PATH="$tools" NETKIT_CACHE_DIR="$cache" \
  node --test --test-concurrency=1 $(printf 'dist/test/integration/%s.test.js ' "${files[@]}")
