#!/usr/bin/env bash
# Builds the Debian package from the single binary (scripts/test-binary.sh built it) and tests it:
# apt-get install, its netkit on a simulated host, apt-get remove.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-deb.sh
deb=$(ls dist/netkit_*.deb)
NETKIT_DEB="$PWD/$deb" node --test --test-concurrency=1 dist/test/integration/deb.test.js
