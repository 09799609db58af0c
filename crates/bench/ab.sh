#!/bin/bash
# A/B helper: `crates/bench/ab.sh BINARY LABEL [SCENARIO]` starts BINARY (`opencm serve --demo`) on
# a fresh SQLite directory and runs target/release/opencm-bench against it; every printed line is
# prefixed with LABEL. Alternate two binaries (an older build saved aside, and the current one) so
# both see the same machine. OPENCM_AB_DIR puts the database elsewhere than /tmp (/dev/shm: no fsync
# cost, to tell the disk's share from the server's CPU); OPENCM_AB_SQL is run on the fresh database
# first (experiments). The server's start and stop are in demo-server.sh.
set -euo pipefail
BIN=$(realpath "$1"); LABEL=$2; SCENARIO=${3:-all}
BENCH=$(realpath "${OPENCM_BENCH:-$(dirname "$0")/../../target/release/opencm-bench}")
. "$(dirname "$0")/demo-server.sh"
start_demo_server "$BIN" 18090
"$BENCH" --url http://127.0.0.1:18090 --token "$TOK" --password "$PW" --database-url "sqlite://$D/opencm.db" \
  --scenario "$SCENARIO" --duration ${DURATION:-6} --prepare ${PREPARE:-30000} 2>&1 | grep -E "ops/s|x /healthz|baselines" | sed "s/^/$LABEL: /"
stop_demo_server
