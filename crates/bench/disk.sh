#!/bin/bash
# Where a completion's time goes beyond the CPU: `crates/bench/disk.sh BINARY` starts BINARY
# (`opencm serve --demo`) on a fresh SQLite directory, runs target/release/opencm-bench's
# `complete` scenario against it and, over 2 s of the measured phase, prints per completion: the
# CPU of the whole machine (/proc/stat) and of the server and load generator alone, the cores left
# idle (idle + iowait), the bytes the server wrote (/proc/PID/io) and the disk received
# (/proc/diskstats, the database's device), and the WAL's size. A server held back by its disk
# leaves cores idle that no change to its CPU path can use (docs/PERFORMANCE.md, issue #6, sixth
# session). OPENCM_AB_DIR and OPENCM_AB_SQL as for ab.sh (demo-server.sh).
set -euo pipefail
BIN=$(realpath "$1")
BENCH=$(realpath "${OPENCM_BENCH:-$(dirname "$0")/../../target/release/opencm-bench}")
. "$(dirname "$0")/demo-server.sh"
start_measuring "$BIN" 18092 opencm-disk
sleep 0.3
# The device as /proc/diskstats names it (/dev/mapper/x is a link to /dev/dm-N); tmpfs has none.
DEV=$(basename "$(readlink -f "$(df --output=source "$D" | tail -1)")")
sample() {
  awk '/^cpu /{printf "%d %d ", $2+$3+$4+$7+$8, $5+$6}' /proc/stat
  echo "$(( $(awk '{print $14+$15}' "/proc/$PID/stat") + $(awk '{print $14+$15}' "/proc/$B/stat") ))" \
    "$(awk '/^write_bytes/{print $2}' "/proc/$PID/io")" \
    "$(awk -v d="$DEV" '$3 == d {print $10 * 512}' /proc/diskstats | grep . || echo 0)"
}
C0=$(completed); read -r busy0 idle0 proc0 wrote0 disk0 < <(sample)
sleep 2
C1=$(completed); read -r busy1 idle1 proc1 wrote1 disk1 < <(sample)
awk -v n=$((C1 - C0)) -v hz="$(getconf CLK_TCK)" -v busy=$((busy1 - busy0)) -v idle=$((idle1 - idle0)) \
  -v proc=$((proc1 - proc0)) -v wrote=$((wrote1 - wrote0)) -v disk=$((disk1 - disk0)) -v dev="$DEV" -v cores="$(nproc)" 'BEGIN {
  printf "completions in 2 s: %d\n", n
  printf "CPU per completion: %.1f us on the whole machine, %.1f us server + load generator\n", busy*1e6/hz/n, proc*1e6/hz/n
  printf "cores idle or waiting for IO: %.2f of %d\n", idle/hz/2, cores
  printf "bytes per completion: %d written by the server, %d received by %s (%.0f MB/s)\n", wrote/n, disk/n, dev, disk/2e6
}'
echo "WAL: $(stat -c %s "$D/opencm.db-wal") bytes"
wait $B || true; grep -E "ops/s" bench.log | tail -1
stop_demo_server
