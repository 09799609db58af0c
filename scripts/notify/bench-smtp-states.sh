#!/bin/bash
# The `complete` scenario (PUT {"status":"Completed"}, each raising request.completed, an e-mail
# to alice) with notifications off, and with an SMTP server that is up, down, or silent.
# Needs: cargo build --release -p opencm -p opencm-bench; Debian's python3-aiosmtpd.
set -u
cd "$(dirname "$0")/../.."
BIN=$PWD/target/release/opencm; BENCH=$PWD/target/release/opencm-bench
. crates/bench/demo-server.sh
W=$(mktemp -d /tmp/opencm-nbench-XXXX); /usr/bin/python3 -m aiosmtpd -n -l 127.0.0.1:2591 -c aiosmtpd.handlers.Sink > $W/sink.log 2>&1 &
SINK=$!
python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 2592)); s.listen(512)
held = []
while True:
    c, _ = s.accept(); held.append(c)
' &
SILENT=$!
sleep 1
conf() { printf '[notifications.smtp]\nhost = "127.0.0.1"\nport = %s\ntls = "none"\nfrom = "opencm <cm@example.test>"\n' "$1" > "$W/$2.toml"; echo "$W/$2.toml"; }
UP=$(conf 2591 up); DOWN=$(conf 2593 down); SLOWC=$(conf 2592 silent)
run() {
  if [ -n "$2" ]; then export OPENCM_CONFIG="$2"; else unset OPENCM_CONFIG; fi
  start_demo_server "$BIN" 18190 nbench
  "$BENCH" --url http://127.0.0.1:18190 --token "$TOK" --database-url "sqlite://$D/opencm.db" \
    --scenario complete --duration 8 --prepare 30000 > "$W/$1.out" 2>&1
  grep -E "healthz|complete" "$W/$1.out" | sed "s/^/[$1] /"
  python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print("['"$1"'] outbox by state:", c.execute("select state, count(*) from outbox group by state").fetchall())' "$D/opencm.db" 2>/dev/null || echo "[$1] no outbox rows"
  stop_demo_server
}
for round in 1 2; do
  run "off-$round" ""
  run "up-$round" "$UP"
  run "down-$round" "$DOWN"
  run "silent-$round" "$SLOWC"
done
kill $SINK $SILENT
