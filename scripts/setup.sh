#!/usr/bin/env bash
# Everything netkit needs on a fresh Debian 12 machine (run as root):
# the tools it wraps, the tools its tests use, and its npm dependencies; then it builds netkit
# and puts `netkit` on PATH (scripts/install-cli.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(
  iproute2 procps kmod iputils-ping fping tcpdump iperf3 # host plumbing, proof of traffic (fping: the Ansible role's checks)
  strongswan-charon strongswan-swanctl strongswan-pki libcharon-extra-plugins libstrongswan-extra-plugins # IPsec
  charon-systemd # tests: a host's own strongSwan, as strongswan.service runs it
  wireguard-tools wireguard-go # WireGuard (kernel module or userspace)
  prometheus # promtool, which checks netkit metrics' output in the tests (no smaller Debian package ships it)
  systemd # systemd-analyze verifies netkit's boot unit
  ansible-core openssh-server # the Ansible role's tests: Ansible as the controller, an sshd per simulated host
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The packages are tools for netkit and its tests, not services for this machine: keep their
  # daemons (sshd, prometheus, strongSwan) from starting on install, as a container image does.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  # --no-install-recommends: wireguard-tools would otherwise pull in a kernel image.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v node >/dev/null || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  echo "setup: netkit needs Node.js 20 or newer to build (the built binary does not)" >&2
  exit 1
fi
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
bash scripts/install-cli.sh
