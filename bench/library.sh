#!/usr/bin/env bash
# Media library benchmarks (issue 8), each with its floor or peer measured in the same run;
# RUNS (default 3) runs, medians printed as Markdown for BENCHMARKS.md.
#
#   1. Transcode speed of the default ladder: the library's one ffmpeg (one decode split to
#      every rung) against the same rungs as one ffmpeg per rung, one after another
#      (examples/transcode_bench.rs), on a SRC_SECS (default 60) s 1920x1080 source.
#   2. tus upload throughput on loopback: a SIZE_MB (default 2048) MB file PATCHed in one
#      request by curl against `cp` of the same file on the same disk (the floor); the
#      origin's RSS sampled every 50 ms during the upload (peak and growth over its start).
#   3. GET /api/v1/assets (default page of 50) with ASSETS (default 10000) assets in the
#      library: wrk p50/p99 against GET /livez on the same listener (the floor).
#
#   bench/library.sh                 # all three
#   ONLY=upload bench/library.sh     # transcode | upload | list
#   CARGO_LOCK=/tmp/cargo.lock ...   # builds under flock; BUILD=0 uses what is built
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SRC_SECS=${SRC_SECS:-60}
SIZE_MB=${SIZE_MB:-2048}
ASSETS=${ASSETS:-10000}
ONLY=${ONLY:-}
TARGET=${CARGO_TARGET_DIR:-target}
cargo=(cargo)
if [ -n "${CARGO_LOCK:-}" ]; then cargo=(flock "$CARGO_LOCK" cargo); fi
if [ "${BUILD:-1}" != 0 ]; then
  "${cargo[@]}" build --release --locked --bin casterpak --example transcode_bench >/dev/null 2>&1
fi
for t in ffmpeg curl wrk python3; do command -v $t >/dev/null || { echo "needs $t (scripts/install-deps.sh --bench)" >&2; exit 1; }; done
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "commit $commit, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
WORK=$(mktemp -d /var/tmp/casterpak-library-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_origin() {
  API=127.0.0.1:$(free_port)
  "$TARGET/release/casterpak" serve --ingest-addr 127.0.0.1:$(free_port) \
    --egress-addr 127.0.0.1:$(free_port) --api-addr "$API" --data-dir "$WORK/data" \
    --media-root "$WORK/media" --library-tus-max-size $(( (SIZE_MB + 16) << 20 )) \
    >/dev/null 2>"$WORK/origin.log" &
  ORIGIN=$!
  mkdir -p "$WORK/media"
  for _ in $(seq 100); do curl -sf "http://$API/livez" >/dev/null && return; sleep 0.1; done
  echo "origin did not start" >&2; cat "$WORK/origin.log" >&2; exit 1
}
stop_origin() { kill "$ORIGIN"; wait "$ORIGIN" 2>/dev/null || true; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

if [ -z "$ONLY" ] || [ "$ONLY" = transcode ]; then
  echo; echo "## 1. transcode speed of the default ladder"
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=$SRC_SECS" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$SRC_SECS" \
    -c:v libx264 -preset ultrafast -crf 18 -c:a aac -b:a 192k -shortest "$WORK/src.mp4"
  "$TARGET/release/examples/transcode_bench" "$WORK/src.mp4" --runs "$RUNS"
fi

if [ -z "$ONLY" ] || [ "$ONLY" = upload ]; then
  echo; echo "## 2. tus upload of $SIZE_MB MB on loopback"
  head -c "$((SIZE_MB << 20))" /dev/urandom > "$WORK/big.bin"
  start_origin
  echo "| run | cp s (floor) | upload s | upload MB/s | upload / cp | RSS before MiB | RSS peak MiB | growth MiB |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
  for r in $(seq "$RUNS"); do
    sync
    t0=$(date +%s.%N); cp "$WORK/big.bin" "$WORK/data/copy.bin"; sync "$WORK/data/copy.bin"; t1=$(date +%s.%N)
    rm -f "$WORK/data/copy.bin"; sync
    cp_s=$(echo "$t1 - $t0" | bc -l)
    loc=$(curl -sS -D - -o /dev/null -X POST "http://$API/api/v1/uploads" -H 'Tus-Resumable: 1.0.0' \
      -H "Upload-Length: $((SIZE_MB << 20))" | tr -d '\r' | awk -F': ' 'tolower($1)=="location" {print $2}')
    before=$(rss_kib "$ORIGIN")
    ( peak=0; while kill -0 "$ORIGIN" 2>/dev/null; do v=$(rss_kib "$ORIGIN"); [ "$v" -gt "$peak" ] && peak=$v; echo "$peak" > "$WORK/peak"; sleep 0.05; done ) &
    sampler=$!
    t0=$(date +%s.%N)
    curl -sS -f -o /dev/null -X PATCH "http://$API$loc" -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' \
      -H 'Content-Type: application/offset+octet-stream' -H 'Expect:' -T "$WORK/big.bin"
    t1=$(date +%s.%N)
    sleep 0.2; kill "$sampler"; wait "$sampler" 2>/dev/null || true
    peak=$(cat "$WORK/peak")
    up_s=$(echo "$t1 - $t0" | bc -l)
    printf '| %d | %.2f | %.2f | %.0f | %.2f | %.1f | %.1f | %.1f |\n' "$r" "$cp_s" "$up_s" \
      "$(echo "$SIZE_MB / $up_s" | bc -l)" "$(echo "$up_s / $cp_s" | bc -l)" \
      "$(echo "$before / 1024" | bc -l)" "$(echo "$peak / 1024" | bc -l)" "$(echo "($peak - $before) / 1024" | bc -l)" \
      | tee -a "$WORK/upload.md"
    curl -sS -o /dev/null -X DELETE "http://$API/api/v1/assets/${loc##*/}"
  done
  stop_origin
  awk -F'|' '{print $4}' "$WORK/upload.md" | median | xargs printf 'median upload s %s, ' 
  awk -F'|' '{print $5}' "$WORK/upload.md" | median | xargs printf 'MB/s %s, '
  awk -F'|' '{print $6}' "$WORK/upload.md" | median | xargs printf 'upload / cp %s, '
  awk -F'|' '{print $9}' "$WORK/upload.md" | median | xargs printf 'RSS growth MiB %s\n'
  rm -f "$WORK/big.bin"
fi

if [ -z "$ONLY" ] || [ "$ONLY" = list ]; then
  echo; echo "## 3. GET /api/v1/assets with $ASSETS assets"
  start_origin; stop_origin
  python3 - "$WORK/data/.casterpak-library.db" "$ASSETS" <<'PY'
import sqlite3, sys, uuid, random, json, time
db = sqlite3.connect(sys.argv[1])
now = int(time.time() * 1000)
st = ["ready"] * 8 + ["errored", "processing"]
rend = json.dumps([{"name": "240p", "width": 426, "height": 240, "bitrate": 300000},
                   {"name": "360p", "width": 640, "height": 360, "bitrate": 730000}])
src = json.dumps({"format": "mov,mp4,m4a,3gp,3g2,mj2", "duration_secs": 60.0, "video_codec": "h264",
                  "width": 640, "height": 360, "fps": 30.0, "video_bitrate": 1000000,
                  "audio_codec": "aac", "bitrate": 1100000})
rows = []
for i in range(int(sys.argv[2])):
    s = random.choice(st)
    rows.append((uuid.uuid4().hex, f"clip {i}", f"clip{i}.mp4", s, "done" if s == "ready" else "transcode",
                 100.0 if s == "ready" else 50.0, 60.0, src, rend if s == "ready" else None, now - i * 1000, now - i * 1000))
db.executemany("INSERT INTO assets(id,title,filename,status,phase,percent,duration_secs,source,renditions,created_ms,updated_ms) VALUES(?,?,?,?,?,?,?,?,?,?,?)", rows)
db.commit()
PY
  start_origin
  echo "| run | /livez p50 ms | /livez p99 ms | assets p50 ms | assets p99 ms | assets?status=ready&q=clip%201 p99 ms | assets req/s |"
  echo "|---:|---:|---:|---:|---:|---:|---:|"
  # One wrk run per URL: its 50 % and 99 % latencies in ms and its requests per second.
  measure() {
    wrk -t2 -c8 -d8s --latency "$1" | awk '
      function ms(v) { if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
                       if (v ~ /ms$/) { sub(/ms$/, "", v); return v }
                       sub(/s$/, "", v); return v * 1000 }
      $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) } /Requests\/sec/ { rps = $2 }
      END { print p50, p99, rps }'
  }
  for r in $(seq "$RUNS"); do
    read -r l50 l99 _ < <(measure "http://$API/livez")
    read -r a50 a99 rs < <(measure "http://$API/api/v1/assets")
    read -r _ f99 _ < <(measure "http://$API/api/v1/assets?status=ready&q=clip%201")
    printf '| %d | %s | %s | %s | %s | %s | %s |\n' "$r" "$l50" "$l99" "$a50" "$a99" "$f99" "$rs" | tee -a "$WORK/list.md"
  done
  stop_origin
  for c in 3 4 5 6 7; do awk -F'|' -v c=$c '{print $c}' "$WORK/list.md" | median | tr '\n' ' '; done; echo "(medians: livez p50 p99, assets p50 p99, filtered p99)"
fi
