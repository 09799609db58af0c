#!/bin/bash
# A/B helper: `crates/bench/ab.sh BINARY LABEL [SCENARIO]` starts BINARY (`opencm serve --demo`) on
# a fresh SQLite directory and runs target/release/opencm-bench against it; every printed line is
# prefixed with LABEL. Alternate two binaries (an older build saved aside, and the current one) so
# both see the same machine. OPENCM_AB_DIR puts the database elsewhere than /tmp (/dev/shm: no fsync
# cost, to tell the disk's share from the server's CPU).
set -euo pipefail
BIN=$(realpath "$1"); LABEL=$2; SCENARIO=${3:-all}
BENCH=$(realpath "${OPENCM_BENCH:-$(dirname "$0")/../../target/release/opencm-bench}")
D=$(mktemp -d "${OPENCM_AB_DIR:-/tmp}/opencm-ab-XXXX"); cd "$D"
"$BIN" serve --demo --listen 127.0.0.1:18090 > serve.log 2>&1 &
PID=$!
for _ in $(seq 50); do grep -q alice serve.log 2>/dev/null && curl -s 127.0.0.1:18090/healthz >/dev/null && break; sleep 0.3; done
TOK=$(grep "^  alice" serve.log | awk '{print $2}')
# Experiments: SQL run on the fresh database before the benchmark (OPENCM_AB_SQL).
if [ -n "${OPENCM_AB_SQL:-}" ]; then python3 -c "import sqlite3,sys; c=sqlite3.connect('$D/opencm.db'); c.executescript(sys.argv[1]); c.commit()" "$OPENCM_AB_SQL"; fi
"$BENCH" --url http://127.0.0.1:18090 --token "$TOK" --database-url "sqlite://$D/opencm.db" \
  --scenario "$SCENARIO" --duration ${DURATION:-6} --prepare ${PREPARE:-30000} 2>&1 | grep -E "ops/s|x /healthz|baselines" | sed "s/^/$LABEL: /"
kill $PID; wait $PID 2>/dev/null || true; cd /; rm -rf "$D"
