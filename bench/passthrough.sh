#!/usr/bin/env bash
# Chunk pass-through delay at 1, 100 and 1000 concurrent readers (issue 2 benchmark).
# Runs the measurement RUNS times (default 3) and prints every run plus the median of each
# column, as a Markdown table for BENCHMARKS.md. See examples/bench_passthrough.rs.
#
# RECORDINGS=0,10 (issue 7): recording create/stop traffic through the API during the
# measured segments, N workers per run, runs alternating between the values (0, 10, 0, 10,
# ...; READERS defaults to 100 there); prints every run, the medians per value and the
# ratios to the first value.
#
# TRANSCODE=1 (issue 8): runs alternating without and with a media-library transcode (a
# 1280x720 clip of TRANSCODE_SECS, default 300, uploaded by tus, ffmpeg at its nice level)
# during the measured segments, READERS defaults to 100; prints every run, the medians per
# value and the ratios to the runs without.
#
# FLOOR=1 (issue 9): every reader count against the origin and against the floor server
# (examples/floor_server.rs: one task writing each received buffer to N sockets, no HTTP
# beyond the request line and chunk sizes), same publisher and readers, back to back in each
# run (origin first in odd runs, floor first in even runs); prints every run, the medians of
# the RUNS runs per (readers, server) and origin/floor for p50 and p99.
#
# CARGO_LOCK=/path: the build runs under `flock CARGO_LOCK` (one build at a time on a shared
# machine); BUILD=0 uses the binaries already built. The commit measured is printed first
# (with "+dirty" when src/ has changes).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
RECORDINGS=${RECORDINGS:-}
TRANSCODE=${TRANSCODE:-}
if [ -n "$RECORDINGS$TRANSCODE" ]; then READERS=${READERS:-100}; else READERS=${READERS:-1,100,1000}; fi
SEGMENTS=${SEGMENTS:-3}
PREROLL=${PREROLL:-6}
FIXTURE=${FIXTURE:-ffmpeg_ldash_640x360}   # or ffmpeg_ldash_everyframe_640x360 (one CMAF chunk per frame)
FLOOR=${FLOOR:-}
TARGET=${CARGO_TARGET_DIR:-target}
cargo=(cargo)
if [ -n "${CARGO_LOCK:-}" ]; then cargo=(flock "$CARGO_LOCK" cargo); fi
examples=(--example bench_passthrough)
if [ -n "$FLOOR" ]; then examples+=(--example floor_server); fi
if [ "${BUILD:-1}" != 0 ]; then
  "${cargo[@]}" build --release --locked --bin casterpak "${examples[@]}" >/dev/null 2>&1
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "${COMMIT:-unknown}")
if [ -n "$(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then commit="$commit+dirty"; fi
echo "commit $commit, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
out=$(mktemp)
if [ -n "$FLOOR" ]; then
  "$TARGET/release/examples/bench_passthrough" --readers "$READERS" --segments "$SEGMENTS" \
    --fixture "$FIXTURE" --bin "$TARGET/release/casterpak" \
    --floor "$TARGET/release/examples/floor_server" --runs "$RUNS" | tee "$out"
  echo
  echo "median of $RUNS runs (load average after: $(cut -d' ' -f1-3 /proc/loadavg)):"
  echo "| readers | server | p50 ms | p99 ms | max ms | server CPU s | server peak RSS MiB | missing | p50 origin/floor | p99 origin/floor |"
  echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  python3 - "$out" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
per_run = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    cells = [c.strip() for c in line.split('|')[1:-1]]
    if len(cells) < 9 or not cells[0].isdigit():
        continue
    vals = [float(c) for c in cells[3:]]
    rows[(int(cells[1]), cells[2])].append(vals)
    per_run[(int(cells[1]), int(cells[0]))][cells[2]] = vals
med = {k: [statistics.median(c) for c in zip(*v)] for k, v in rows.items()}
for readers in sorted({k[0] for k in med}):
    o, f = med.get((readers, 'origin')), med.get((readers, 'floor'))
    for name, m in (('origin', o), ('floor', f)):
        if m is None:
            continue
        ratio = ''
        if name == 'origin' and f:
            ratio = f" {m[0] / f[0]:.2f} | {m[1] / f[1]:.2f} |"
        else:
            ratio = ' | |'
        print(f"| {readers} | {name} | {m[0]:.2f} | {m[1]:.2f} | {m[2]:.2f} | {m[3]:.2f} | {m[4]:.1f} | {m[5]:.0f} |{ratio}")
print()
print("origin/floor within each run (the two measured back to back), and their median:")
print("| readers | p50 ratio per run | p99 ratio per run | median p50 ratio | median p99 ratio |")
print("|---:|---|---|---:|---:|")
for readers in sorted({k[0] for k in per_run}):
    pairs = [per_run[(readers, r)] for r in sorted(r for (n, r) in per_run if n == readers)]
    pairs = [p for p in pairs if 'origin' in p and 'floor' in p]
    r50 = [p['origin'][0] / p['floor'][0] for p in pairs]
    r99 = [p['origin'][1] / p['floor'][1] for p in pairs]
    if pairs:
        print(f"| {readers} | {', '.join(f'{x:.2f}' for x in r50)} | {', '.join(f'{x:.2f}' for x in r99)} | "
              f"{statistics.median(r50):.2f} | {statistics.median(r99):.2f} |")
PY
  rm -f "$out"
  exit 0
fi
if [ -n "$TRANSCODE" ]; then
  clip=$(mktemp --suffix=.mp4)
  trap 'rm -f "$clip"' EXIT
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=1280x720:rate=30:duration=${TRANSCODE_SECS:-300}" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=${TRANSCODE_SECS:-300}" \
    -c:v libx264 -preset ultrafast -crf 20 -c:a aac -shortest "$clip"
  "$TARGET/release/examples/bench_passthrough" --readers "$READERS" --segments "$SEGMENTS" \
    --fixture "$FIXTURE" --bin "$TARGET/release/casterpak" --transcode 0,1 --transcode-clip "$clip" \
    --runs "$RUNS" | tee "$out"
  echo
  echo "median of $RUNS runs:"
  echo "| readers | transcode | p50 ms | p99 ms | max ms | origin CPU s | p50 ratio | p99 ratio |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
  python3 - "$out" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    cells = [c.strip() for c in line.split('|')[1:-1]]
    if len(cells) < 10 or not cells[0].isdigit():
        continue
    rows[(int(cells[1]), int(cells[2]))].append([float(c) for c in cells[3:8]])
base = {}
for key in sorted(rows):
    readers, t = key
    med = [statistics.median(c) for c in zip(*rows[key])]
    base.setdefault(readers, med)
    b = base[readers]
    print(f"| {readers} | {t} | {med[0]:.2f} | {med[1]:.2f} | {med[2]:.2f} | {med[3]:.2f} | {med[0]/b[0]:.2f} | {med[1]/b[1]:.2f} |")
PY
  exit 0
fi
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
