#!/usr/bin/env bash
# Installs the package built by build-deb.sh with dpkg -i, as an operator would, and checks it:
# systemd-analyze accepts the unit, the postinst made the opencm user, its private data
# directory and the CA, and the installed binary, started as that user with the packaged
# configuration (only its port moved), answers /healthz and /readyz. Then purges it.
#   scripts/package/check-deb.sh target/opencm_<version>_<arch>.deb
set -euo pipefail
deb=${1:?the .deb to check}
fail() { echo "check-deb: $*" >&2; exit 1; }

dpkg -i "$deb"
trap 'pkill -u opencm -x opencm 2>/dev/null || true; dpkg --purge opencm >/dev/null 2>&1 || true; rm -rf /var/lib/opencm; deluser --system opencm >/dev/null 2>&1 || true' EXIT

systemd-analyze verify /lib/systemd/system/opencm.service
echo "systemd-analyze verify: the unit is accepted"
grep -q '^ProtectSystem=strict' /lib/systemd/system/opencm.service || fail "the unit lost its hardening"

getent passwd opencm >/dev/null || fail "no opencm user"
[ "$(stat -c '%a %U' /var/lib/opencm)" = "700 opencm" ] || fail "/var/lib/opencm is $(stat -c '%a %U' /var/lib/opencm)"
[ -f /var/lib/opencm/opencm.db ] || fail "the postinst made no database (and CA)"
[ "$(stat -c '%a %U' /var/lib/opencm/opencm-ca.kek)" = "600 opencm" ] || fail "the KEK file is not the opencm user's, 0600"
[ "$(stat -c '%a %G' /etc/opencm/opencm.toml)" = "640 opencm" ] || fail "/etc/opencm/opencm.toml is $(stat -c '%a %G' /etc/opencm/opencm.toml)"
dpkg -L opencm | grep -q '^/usr/share/doc/opencm/examples/hsm.conf$' || fail "no HSM drop-in"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
(cd / && OPENCM_LISTEN="127.0.0.1:$port" runuser -u opencm -- /usr/bin/opencm serve --config /etc/opencm/opencm.toml >"$log" 2>&1 &)
for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/healthz" || { cat "$log"; fail "the installed server does not answer /healthz"; }
echo
curl -fsS "http://127.0.0.1:$port/readyz" || { cat "$log"; fail "not ready"; }
echo
# The CA the postinst made is the one served.
runuser -u opencm -- /usr/bin/opencm ca init --config /etc/opencm/opencm.toml > /tmp/check-deb-ca.pem
curl -fsS "http://127.0.0.1:$port/pki/ca.pem" | cmp - /tmp/check-deb-ca.pem || fail "the server serves another CA than the postinst made"
echo "the installed opencm answers with the packaged configuration and the postinst's CA"
