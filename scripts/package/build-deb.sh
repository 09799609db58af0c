#!/usr/bin/env bash
# Builds the Debian package opencm_<version>_<arch>.deb from binaries already built, with Debian's
# own dpkg-deb: the server, the card client when it was built, the packaged configuration, the
# hardened systemd unit, the HSM drop-in and the documentation. Runtime dependencies are the
# packages that own the shared libraries the binaries link (dpkg -S over ldd), so a build with
# Kerberos depends on libgssapi-krb5-2 and one without does not.
#
#   cargo build --release -p opencm -p opencm-card --features opencm/kerberos
#   scripts/package/build-deb.sh                 # target/release -> target/opencm_<v>_<arch>.deb
#   scripts/package/build-deb.sh target/debug    # what CI checks (the tests' build)
set -euo pipefail
cd "$(dirname "$0")/../.."
bins=${1:-target/release}
[ -x "$bins/opencm" ] || { echo "no $bins/opencm: build it first (see the header of $0)" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"   # the package's "./": dpkg must not see a private root

install -D -m 0755 "$bins/opencm" "$stage/usr/bin/opencm"
if [ -x "$bins/opencm-card" ]; then
  install -D -m 0755 "$bins/opencm-card" "$stage/usr/bin/opencm-card"
fi
install -D -m 0640 packaging/opencm.toml "$stage/etc/opencm/opencm.toml"
install -D -m 0644 packaging/opencm.service "$stage/lib/systemd/system/opencm.service"
install -D -m 0644 packaging/hsm.conf "$stage/usr/share/doc/opencm/examples/hsm.conf"
for f in README.md docs/*.md; do
  install -D -m 0644 "$f" "$stage/usr/share/doc/opencm/$(basename "$f")"
done
printf 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: opencm\n\nFiles: *\nCopyright: opencm developers\nLicense: Apache-2.0\n On Debian systems the license is in /usr/share/common-licenses/Apache-2.0.\n' \
  > "$stage/usr/share/doc/opencm/copyright"

# The packages owning the libraries the binaries need (the C library, GSSAPI, PC/SC...).
depends=$(for b in "$stage"/usr/bin/*; do ldd "$b"; done \
  | awk '$3 ~ /^\// { print $3 }' | sort -u \
  | while read -r lib; do dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null; done \
  | cut -d: -f1 | sort -u | paste -sd, - | sed 's/,/, /g')

install -d "$stage/DEBIAN"
cat > "$stage/DEBIAN/control" <<CONTROL
Package: opencm
Version: $version
Architecture: $arch
Maintainer: opencm developers <opencm@localhost>
Depends: adduser, ${depends}
Section: net
Priority: optional
Homepage: https://github.com/opencm/opencm
Description: certificate lifecycle server speaking the MIM CM REST API v1.0
 opencm enrols and manages smart cards, virtual smart cards and software
 certificates through the Microsoft Identity Manager Certificate Management
 REST API, with an embedded CA (CRL and OCSP), SQLite or PostgreSQL, a web
 portal, notifications and Prometheus metrics.
CONTROL
echo /etc/opencm/opencm.toml > "$stage/DEBIAN/conffiles"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$stage/DEBIAN/"

out="target/opencm_${version}_${arch}.deb"
# xz for releases; CI packs its large debug build uncompressed (DEB_COMPRESSION=none): faster.
dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-xz}" --build "$stage" "$out" >/dev/null
echo "$out"
