#!/usr/bin/env bash
# Captures the CMAF fixture used by the pass-through benchmark: one ffmpeg LL-DASH push
# (the reference command, one 640x360 1.5 Mb/s video rendition, 2 s segments of 0.5 s
# CMAF chunks) into casterpak, then copies the video init segment and three segments into
# tests/fixtures/cmaf/. Run once; the fixture is committed so the benchmark does not depend
# on the encoder.
#   bench/capture-fixture.sh              0.5 s CMAF chunks  -> ffmpeg_ldash_640x360_*
#   bench/capture-fixture.sh everyframe   one chunk per frame -> ffmpeg_ldash_everyframe_640x360_*
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = everyframe ]; then
  frag=(); name=ffmpeg_ldash_everyframe_640x360
else
  frag=(-frag_type duration -frag_duration 0.5); name=ffmpeg_ldash_640x360
fi
cargo build --release --locked
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
target/release/casterpak serve --ingest-addr 127.0.0.1:5900 --egress-addr 127.0.0.1:5901 --api-addr 127.0.0.1:0 \
  --data-dir "$tmp/data" 2>/dev/null &
sleep 0.5
ffmpeg -hide_banner -loglevel error -re \
  -f lavfi -i testsrc2=size=640x360:rate=30:duration=10 -f lavfi -i sine=frequency=1000:sample_rate=48000:duration=10 \
  -map 0:v -map 1:a -c:v libx264 -preset veryfast -tune zerolatency -pix_fmt yuv420p \
  -g 30 -keyint_min 30 -sc_threshold 0 -b:v 1500k -c:a aac -b:a 128k -ar 48000 \
  -f dash -ldash 1 -streaming 1 -seg_duration 2 "${frag[@]}" \
  -use_timeline 0 -use_template 1 -method PUT -http_persistent 1 \
  -format_options movflags=cmaf -adaptation_sets 'id=0,streams=v id=1,streams=a' \
  http://127.0.0.1:5900/live/fixture/stream.mpd
sleep 1
out=tests/fixtures/cmaf
mkdir -p "$out"
cp "$tmp/data/live/fixture/init-stream0.m4s" "$out/${name}_init.m4s"
for n in 2 3 4; do
  cp "$tmp/data/live/fixture/chunk-stream0-0000$n.m4s" "$out/${name}_seg$n.m4s"
done
ls -l "$out"
