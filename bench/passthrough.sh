#!/usr/bin/env bash
# Chunk pass-through delay at 1, 100 and 1000 concurrent readers (issue 2 benchmark).
# Runs the measurement RUNS times (default 3) and prints every run plus the median of each
# column, as a Markdown table for BENCHMARKS.md. See examples/bench_passthrough.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
READERS=${READERS:-1,100,1000}
SEGMENTS=${SEGMENTS:-3}
FIXTURE=${FIXTURE:-ffmpeg_ldash_640x360}   # or ffmpeg_ldash_everyframe_640x360 (one CMAF chunk per frame)
cargo build --release --locked --bin casterpak --example bench_passthrough >/dev/null 2>&1
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
out=$(mktemp)
for r in $(seq "$RUNS"); do
  target/release/examples/bench_passthrough --readers "$READERS" --segments "$SEGMENTS" --fixture "$FIXTURE" \
    | tail -n +3 | sed "s/^/run$r /" >>"$out"
done
echo "runs:"; cat "$out"
echo
echo "median of $RUNS runs:"
echo "| readers | p50 ms | p99 ms | max ms | origin CPU s | origin peak RSS MiB |"
echo "|---:|---:|---:|---:|---:|---:|"
python3 - "$out" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    cells = [c.strip() for c in line.split('|')[1:-1]]
    rows[int(cells[0])].append([float(c) for c in cells[1:6]])
for n in sorted(rows):
    cols = list(zip(*rows[n]))
    med = [statistics.median(c) for c in cols]
    print(f"| {n} | {med[0]:.2f} | {med[1]:.2f} | {med[2]:.2f} | {med[3]:.2f} | {med[4]:.1f} |")
PY
rm -f "$out"
