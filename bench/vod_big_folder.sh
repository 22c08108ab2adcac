#!/usr/bin/env bash
# Master-playlist requests/s from a media folder holding one MP4 against the same MP4 in a
# folder with FILES (default 10000) other files: what a library folder costs per request
# (the sidecar lookup of `<name>.<lang>.vtt` beside each MP4). Release build, output cache
# on (the default), `wrk -t1 -c4 -d5s` on `/i/a.mp4/master.m3u8`, ROUNDS (default 3) rounds
# alternating the two folders; prints each round and the medians.
# Inputs come from `cargo bench --bench vod_bench` in ${VOD_BENCH_DIR:-target/vod-bench}.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
FILES=${FILES:-10000}
src=${VOD_BENCH_DIR:-target/vod-bench}/bench_60s_720p.mp4
cargo build --release --locked --bin casterpak >/dev/null 2>&1
if [ ! -f "$src" ]; then
  VOD_BENCH_RUNS=1 VOD_BENCH_DIR="$(dirname "$src")" cargo bench --locked --bench vod_bench >/dev/null
fi
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/one" "$tmp/many"
cp "$src" "$tmp/one/a.mp4"
cp "$src" "$tmp/many/a.mp4"
(cd "$tmp/many" && for i in $(seq 1 "$FILES"); do : >"f$i.mp4"; done)
rate() {
  mkdir -p "$tmp/data-$1"
  target/release/casterpak serve --ingest-addr 127.0.0.1:5970 --egress-addr 127.0.0.1:5971 \
    --api-addr 127.0.0.1:0 --data-dir "$tmp/data-$1" --media-root "$tmp/$1" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do curl -fs -o /dev/null http://127.0.0.1:5971/i/a.mp4/master.m3u8 && break; sleep 0.1; done
  wrk -t1 -c4 -d5s http://127.0.0.1:5971/i/a.mp4/master.m3u8 | awk '/Requests\/sec/ {print int($2)}'
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  rm -rf "$tmp/data-$1"
}
one=(); many=()
for r in $(seq "$ROUNDS"); do
  a=$(rate one); b=$(rate many)
  echo "round $r: 1 file $a req/s, $((FILES + 1)) files $b req/s"
  one+=("$a"); many+=("$b")
done
med() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
m1=$(med "${one[@]}"); m2=$(med "${many[@]}")
echo "median: 1 file $m1 req/s, $((FILES + 1)) files $m2 req/s, ratio $(awk -v a="$m2" -v b="$m1" 'BEGIN {printf "%.2f", a / b}')"
