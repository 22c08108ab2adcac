#!/usr/bin/env bash
# Chunk pass-through delay at 1, 100 and 1000 concurrent readers (issue 2 benchmark).
# Runs the measurement RUNS times (default 3) and prints every run plus the median of each
# column, as a Markdown table for BENCHMARKS.md. See examples/bench_passthrough.rs.
#
# RECORDINGS=0,10 (issue 7): recording create/stop traffic through the API during the
# measured segments, N workers per run, runs alternating between the values (0, 10, 0, 10,
# ...; READERS defaults to 100 there); prints every run, the medians per value and the
# ratios to the first value.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
RECORDINGS=${RECORDINGS:-}
if [ -n "$RECORDINGS" ]; then READERS=${READERS:-100}; else READERS=${READERS:-1,100,1000}; fi
SEGMENTS=${SEGMENTS:-3}
PREROLL=${PREROLL:-6}
FIXTURE=${FIXTURE:-ffmpeg_ldash_640x360}   # or ffmpeg_ldash_everyframe_640x360 (one CMAF chunk per frame)
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --locked --bin casterpak --example bench_passthrough >/dev/null 2>&1
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
out=$(mktemp)
if [ -n "$RECORDINGS" ]; then
  "$TARGET/release/examples/bench_passthrough" --readers "$READERS" --segments "$SEGMENTS" \
    --fixture "$FIXTURE" --bin "$TARGET/release/casterpak" --recordings "$RECORDINGS" \
    --runs "$RUNS" --preroll "$PREROLL" | tee "$out"
  echo
  echo "median of $RUNS runs:"
  echo "| readers | recordings | p50 ms | p99 ms | max ms | origin CPU s | creates | stops | create p50 ms | stop p50 ms | p50 ratio | p99 ratio |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  python3 - "$out" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    cells = [c.strip() for c in line.split('|')[1:-1]]
    if len(cells) < 14 or not cells[0].isdigit():
        continue
    rows[(int(cells[1]), int(cells[2]))].append([float(c) for c in cells[3:]])
base = {}
for key in sorted(rows):
    readers, recs = key
    cols = list(zip(*rows[key]))
    med = [statistics.median(c) for c in cols]
    # columns: p50 p99 max cpu rss missing creates stops errors create_p50 stop_p50
    base.setdefault(readers, med)
    b = base[readers]
    print(f"| {readers} | {recs} | {med[0]:.2f} | {med[1]:.2f} | {med[2]:.2f} | {med[3]:.2f} | "
          f"{med[6]:.0f} | {med[7]:.0f} | {med[9]:.2f} | {med[10]:.2f} | {med[0]/b[0]:.2f} | {med[1]/b[1]:.2f} |")
PY
  rm -f "$out"
  exit 0
fi
for r in $(seq "$RUNS"); do
  "$TARGET/release/examples/bench_passthrough" --readers "$READERS" --segments "$SEGMENTS" --fixture "$FIXTURE" \
    --bin "$TARGET/release/casterpak" | tail -n +3 | sed "s/^/run$r /" >>"$out"
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
