#!/bin/bash
# CPU per completion: `crates/bench/cpu.sh BINARY` starts BINARY (`opencm serve --demo`) on a fresh
# SQLite directory, runs target/release/opencm-bench's `complete` scenario against it, and over 2 s
# of the measured phase reads every thread's CPU time (utime+stime, /proc) and the number of
# requests that became Completed in the database; it prints µs of CPU per completion for the
# server's writer thread, its HTTP workers and the load generator. Steadier than throughput on a
# noisy machine; alternate two binaries as with ab.sh. OPENCM_AB_SQL and OPENCM_AB_DIR as for ab.sh
# (demo-server.sh).
set -euo pipefail
BIN=$(realpath "$1")
BENCH=$(realpath "${OPENCM_BENCH:-$(dirname "$0")/../../target/release/opencm-bench}")
. "$(dirname "$0")/demo-server.sh"
start_measuring "$BIN" 18091 opencm-cpu
sleep 0.3
ticks() {
  for t in /proc/$PID/task/*; do echo "$(tr ' ' _ < "$t/comm") $(awk '{print $14+$15}' "$t/stat")"; done
  echo "load-generator $(awk '{print $14+$15}' /proc/$B/stat)"
}
ticks | awk '{a[$1]+=$2} END {for (k in a) print k, a[k]}' | sort > before; C0=$(completed)
sleep 2
ticks | awk '{a[$1]+=$2} END {for (k in a) print k, a[k]}' | sort > after; C1=$(completed)
HZ=$(getconf CLK_TCK); N=$((C1 - C0))
echo "completions in 2 s: $N"
join before after | awk -v n="$N" -v hz="$HZ" '$3 > $2 {printf "%-18s %6.1f us/completion  %4.2f cores\n", $1, ($3-$2)*1e6/hz/n, ($3-$2)/hz/2}'
wait $B || true; grep -E "ops/s" bench.log | tail -1
stop_demo_server
