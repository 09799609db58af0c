#!/usr/bin/env bash
# The smart card test stack, for `.ci/run` and for developers: PC/SC (pcscd) with vsmartcard's
# virtual reader (vpcd, which takes software cards on 127.0.0.1:35963 and :35964), OpenSC's tools
# to check cards with, and what building the software card and the client needs (libclang for
# bindgen, libpcsclite-dev). Installing needs root (apt-get); starting pcscd does not need systemd.
set -euo pipefail

packages=(pcscd vsmartcard-vpcd opensc libpcsclite-dev pkg-config libclang1-14)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

mkdir -p /run/pcscd
if ! pgrep -x pcscd >/dev/null; then
  pcscd   # daemonises; it loads the vpcd reader from /etc/reader.conf.d/vpcd
fi
for _ in $(seq 1 50); do
  opensc-tool -l 2>/dev/null | grep -q "Virtual PCD" && break
  sleep 0.2
done
opensc-tool -l
