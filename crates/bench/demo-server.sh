# Sourced by ab.sh and cpu.sh. `start_demo_server BINARY PORT [PREFIX]`: a fresh directory (under
# OPENCM_AB_DIR, /tmp by default) as the working directory, BINARY `serve --demo` on 127.0.0.1:PORT
# in it; sets D (the directory), PID (the server), TOK (alice's token) and PW (her portal password). OPENCM_AB_SQL is run on
# the fresh database before anything else (experiments). `stop_demo_server` stops it and removes D.
# `sql_run SCRIPT` runs SQL on the server's database; `sql_value QUERY` prints its first value.
sql_run() { python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()' "$D/opencm.db" "$1"; }
sql_value() { python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$D/opencm.db" "$1"; }

start_demo_server() {
  D=$(mktemp -d "${OPENCM_AB_DIR:-/tmp}/${3:-opencm-ab}-XXXX"); cd "$D"
  "$1" serve --demo --listen "127.0.0.1:$2" > serve.log 2>&1 &
  PID=$!
  for _ in $(seq 50); do grep -q alice serve.log 2>/dev/null && curl -s "127.0.0.1:$2/healthz" >/dev/null && break; sleep 0.3; done
  TOK=$(grep "^  alice" serve.log | awk '{print $2}')
  PW=$(grep "^  alice" serve.log | awk '{print $3}')
  if [ -n "${OPENCM_AB_SQL:-}" ]; then sql_run "$OPENCM_AB_SQL"; fi
}

# `start_measuring BINARY PORT PREFIX`: start_demo_server, then opencm-bench ($BENCH) runs its
# `complete` scenario (5 s, 60,000 prepared requests) in the background (B; its output in
# bench.log); returns once the measured phase has begun.
start_measuring() {
  start_demo_server "$1" "$2" "$3"
  "$BENCH" --url "http://127.0.0.1:$2" --token "$TOK" --database-url "sqlite://$D/opencm.db" \
    --scenario complete --duration 5 --prepare 60000 > bench.log 2>&1 &
  B=$!
  until grep -q "complete: measuring" bench.log; do
    # A bench that stopped before measuring (server gone, bad token) ends the script, not a wait.
    kill -0 "$B" 2>/dev/null || { cat bench.log; stop_demo_server; exit 1; }
    sleep 0.1
  done
}

# The requests completed so far (status 8), for a rate measured in the database.
completed() { sql_value "SELECT count(*) FROM requests WHERE status = 8"; }

stop_demo_server() {
  kill "$PID"; wait "$PID" 2>/dev/null || true; cd /; rm -rf "$D"
}
