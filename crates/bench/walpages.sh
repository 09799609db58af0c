#!/bin/bash
# Which pages a completion writes: `crates/bench/walpages.sh BINARY` starts BINARY (`opencm serve
# --demo`) on a fresh SQLite directory, runs target/release/opencm-bench's `complete` scenario
# against it, copies the WAL and the database 1.5 s into the measured phase, and prints the WAL's
# valid frames (those since its last restart) by the table or index their page belongs to
# (SQLite's dbstat), per commit. Needs Python's sqlite3 with dbstat (Debian's has it).
# OPENCM_AB_DIR and OPENCM_AB_SQL as for ab.sh (demo-server.sh).
set -euo pipefail
BIN=$(realpath "$1")
BENCH=$(realpath "${OPENCM_BENCH:-$(dirname "$0")/../../target/release/opencm-bench}")
. "$(dirname "$0")/demo-server.sh"
start_measuring "$BIN" 18096 opencm-walpages
sleep 1.5
cp opencm.db-wal snap.wal; cp opencm.db snap.db
wait $B || true
python3 - "$D/snap.wal" "$D/snap.db" <<'PY'
import collections, sqlite3, struct, sys
wal = open(sys.argv[1], 'rb').read()
_, _, page, _, salt1, salt2, _, _ = struct.unpack('>8I', wal[:32])
frames, commits, off = [], 0, 32
while off + 24 + page <= len(wal):
    pgno, size_after_commit, s1, s2 = struct.unpack('>4I', wal[off:off + 16])
    if (s1, s2) != (salt1, salt2):
        break
    frames.append(pgno)
    off += 24 + page
    if size_after_commit > 0:  # a commit's last frame: count only whole commits
        commits += 1
        whole = len(frames)
frames = frames[:whole] if commits else []
names = dict(sqlite3.connect(sys.argv[2]).execute('SELECT pageno, name FROM dbstat'))
print(f'{len(frames)} frames of {page} bytes in {commits} commits: {len(frames) / max(commits, 1):.1f} per commit')
for name, n in collections.Counter(names.get(p, '(new pages, not yet in the database file)') for p in frames).most_common():
    print(f'  {name:32s} {n / max(commits, 1):6.1f} per commit')
PY
stop_demo_server
