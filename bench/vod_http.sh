#!/usr/bin/env bash
# On-demand packaging over HTTP (issue 3 benchmark), through the real binary:
#  1. cold segment requests/s and MB/s: wrk cycling through the 10 TS segments of a 60 s 720p
#     file with the output cache off (every request is packaged from the MP4), ROUNDS times;
#  2. time to first byte of cold segments of a 2-hour file: a fresh origin, segment 600 (its
#     request also builds the index), then 20 segments across the file (index cached, segment
#     never packaged before); and the origin's peak RSS.
# Inputs come from `cargo bench --bench vod_bench` (made with ffmpeg on its first run) in
# ${VOD_BENCH_DIR:-target/vod-bench}.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
dir=${VOD_BENCH_DIR:-target/vod-bench}
scripts/install-deps.sh --bench >/dev/null
cargo build --release --locked --bin casterpak >/dev/null 2>&1
if [ ! -f "$dir/bench_2h_720p.mp4" ]; then
  VOD_BENCH_RUNS=1 VOD_BENCH_DIR="$dir" cargo bench --locked --bench vod_bench >/dev/null
fi
pid=
stop() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; pid=; }
trap stop EXIT
start() {
  target/release/casterpak serve --ingest-addr 127.0.0.1:5920 --egress-addr 127.0.0.1:5921 --api-addr 127.0.0.1:0 \
    --data-dir "$(mktemp -d)" --media-root "$dir" --memory-cache-bytes 0 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do curl -fs http://127.0.0.1:5921/time >/dev/null 2>&1 && return; sleep 0.05; done
}
start
curl -fs http://127.0.0.1:5921/i/bench_60s_720p.mp4/index_0_av.m3u8 >/dev/null
echo "### cold segments over HTTP (60 s 720p file, output cache off, wrk -t2 -c16 -d10s)"
echo "| round | requests/s | MB/s |"
echo "|---:|---:|---:|"
for r in $(seq "$ROUNDS"); do
  wrk -t2 -c16 -d10s -s bench/vod_segments.lua http://127.0.0.1:5921 | awk -v r="$r" '
    /Requests\/sec/ {q=$2}
    /Transfer\/sec/ {v=$2; if (v ~ /GB/) {sub("GB","",v); v*=1024} else if (v ~ /MB/) {sub("MB","",v)} else if (v ~ /KB/) {sub("KB","",v); v/=1024}; m=v}
    END {printf "| %d | %.0f | %.1f |\n", r, q, m}'
done
stop
echo
echo "### time to first byte, 2-hour file, fresh origin"
start
ttfb() { curl -fs -o /dev/null -w '%{time_starttransfer}\n' "http://127.0.0.1:5921/i/bench_2h_720p.mp4/$1"; }
first=$(ttfb segment600_0_av.ts)
: >/tmp/casterpak-ttfb
for n in 7 61 122 183 244 305 366 427 488 549 611 672 733 794 855 916 977 1038 1099 1160; do
  ttfb "segment${n}_0_av.ts" >>/tmp/casterpak-ttfb
done
rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
python3 - "$first" "$rss" <<'PY'
import sys, statistics
first = float(sys.argv[1]) * 1000
t = sorted(float(l) * 1000 for l in open('/tmp/casterpak-ttfb'))
print(f"| first request (builds the index) | {first:.1f} ms |")
print(f"| 20 cold segments, index cached: median / max | {statistics.median(t):.1f} / {t[-1]:.1f} ms |")
print(f"| origin peak RSS | {int(sys.argv[2]) / 1024:.1f} MiB |")
PY
