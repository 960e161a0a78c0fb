#!/usr/bin/env bash
# Builds dist/netkit_<version>_<arch>.deb from the single binary (dist/netkit, built first when it
# is not there) with dpkg-deb: /usr/bin/netkit, the systemd unit (/lib/systemd/system/netkit.service,
# not enabled: "systemctl enable netkit"), bash and zsh completion, and the docs. Depends come
# from dpkg-shlibdeps (the libraries the binary links) plus the tools netkit always runs;
# the tunnel tools are Recommends. Installing the package changes nothing on the host.
# Compressed with zstd (fast to build; dpkg reads it from Debian 12 and Ubuntu 21.10 on).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x dist/netkit ]] || npm run build:binary --silent
version=$(node -p 'require("./package.json").version')
arch=$(dpkg --print-architecture)
name="netkit_${version}_${arch}"
pkg="dist/deb/$name"
rm -rf "$pkg"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
install -D -m 0755 dist/netkit "$pkg/usr/bin/netkit"
# The binary unpacks itself once per version into its cache: a private one here.
run() { NETKIT_CACHE_DIR="$work/cache" "$pkg/usr/bin/netkit" "$@"; }
mkdir -p "$pkg/lib/systemd/system" "$pkg/usr/share/bash-completion/completions" "$pkg/usr/share/zsh/vendor-completions" "$pkg/usr/share/doc/netkit"
# The package's unit is the package's: "netkit service install" writes and removes only /etc/systemd/system's.
run service unit --bin /usr/bin/netkit | sed '1s/.*/# Installed by the netkit package; enable it with "systemctl enable netkit"./' > "$pkg/lib/systemd/system/netkit.service"
run autocomplete bash > "$pkg/usr/share/bash-completion/completions/netkit"
run autocomplete zsh > "$pkg/usr/share/zsh/vendor-completions/_netkit"
cp README.md docs/*.md "$pkg/usr/share/doc/netkit/"
cat > "$pkg/usr/share/doc/netkit/copyright" <<'COPYRIGHT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: netkit

Files: *
Copyright: netkit authors
License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
 associated documentation files (the "Software"), to deal in the Software without restriction,
 including without limitation the rights to use, copy, modify, merge, publish, distribute,
 sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in all copies or
 substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
 NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
 NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
 DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT
 OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
COPYRIGHT
find "$pkg" -type d -exec chmod 0755 {} +
find "$pkg/usr/share" "$pkg/lib" -type f -exec chmod 0644 {} +

# The shared libraries the binary (a Node.js runtime) links, as Debian's own packages declare them.
shlibs=""
if command -v dpkg-shlibdeps >/dev/null; then
  mkdir -p "$work/src/debian"
  printf 'Source: netkit\n\nPackage: netkit\nArchitecture: any\n' > "$work/src/debian/control"
  shlibs=$(cd "$work/src" && dpkg-shlibdeps -O -e "$OLDPWD/$pkg/usr/bin/netkit" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
fi
[[ -n $shlibs ]] || shlibs="libc6 (>= 2.28), libgcc-s1, libstdc++6"

mkdir -p "$pkg/DEBIAN"
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: netkit
Version: $version
Architecture: $arch
Maintainer: netkit developers <netkit@example.org>
Installed-Size: $(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
Depends: iproute2, procps, $shlibs
Recommends: strongswan-swanctl, strongswan-charon, libcharon-extra-plugins, wireguard-tools, wireguard-go
Suggests: strongswan-pki
Section: net
Priority: optional
Description: host network plumbing: namespaces, routes, rules, proxy ARP, xfrm and tunnels
 netkit drives iproute2, strongSwan (swanctl/charon) and WireGuard (wg, wireguard-go) from one
 command with safe defaults: every change can be printed first (--dry-run), re-running is a
 no-op, a failed change is undone, and netkit touches only what it made. Tunnels (IPsec,
 WireGuard, VXLAN), a declarative host file (netkit apply), a doctor, and a boot unit that brings
 the tunnels back (systemctl enable netkit).
 .
 This package carries netkit as one executable with its own Node.js runtime.
CONTROL
dpkg-deb --root-owner-group -Zzstd --build "$pkg" "dist/$name.deb" >/dev/null
echo "built dist/$name.deb"
