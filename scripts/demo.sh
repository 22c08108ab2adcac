#!/usr/bin/env bash
# The main job: builds casterpak, starts the origin on its default ports, pushes a synthetic
# low-latency live stream into it with ffmpeg (the reference LL-DASH command), and prints
# the URLs to watch. Ctrl-C stops everything.
#
#   CASTERPAK_DEMO_RENDITIONS=1 scripts/demo.sh   # one video rendition (lighter)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked

INGEST=${CASTERPAK_INGEST_ADDR:-127.0.0.1:5000}
EGRESS=${CASTERPAK_EGRESS_ADDR:-127.0.0.1:5001}
API=${CASTERPAK_API_ADDR:-127.0.0.1:5002}
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

target/release/casterpak serve --ingest-addr "$INGEST" --egress-addr "$EGRESS" --api-addr "$API" &
pids+=($!)
for _ in $(seq 50); do curl -fs "http://$EGRESS/time" >/dev/null 2>&1 && break; sleep 0.1; done

if [ "${CASTERPAK_DEMO_RENDITIONS:-2}" = 1 ]; then
  maps=(-map 0:v -map 1:a -b:v:0 1500k -s:v:0 640x360)
else
  maps=(-map 0:v -map 0:v -map 1:a -b:v:0 1500k -s:v:0 640x360 -b:v:1 400k -s:v:1 320x180)
fi
ffmpeg -hide_banner -loglevel error -re \
  -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=frequency=1000:sample_rate=48000 \
  "${maps[@]}" -c:v libx264 -preset veryfast -tune zerolatency -pix_fmt yuv420p \
  -g 30 -keyint_min 30 -sc_threshold 0 -c:a aac -b:a 128k -ar 48000 \
  -f dash -ldash 1 -streaming 1 -seg_duration 2 -frag_type duration -frag_duration 0.5 \
  -use_timeline 0 -use_template 1 -window_size 5 -extra_window_size 5 \
  -method PUT -http_persistent 1 -ignore_io_errors 1 -utc_timing_url "http://$EGRESS/time" \
  -target_latency 1.5 -format_options movflags=cmaf \
  -adaptation_sets 'id=0,streams=v id=1,streams=a' "http://$INGEST/live/demo/stream.mpd" &
pids+=($!)

cat <<MSG

casterpak is running.
  ingest (encoders PUT here):  http://$INGEST/
  egress (players GET here):   http://$EGRESS/
  management API (JSON):       http://$API/api/v1/streams  (OpenAPI: /api/v1/openapi.json)

Watch the demo live stream (LL-DASH, dash.js):
  http://$EGRESS/player/?url=/live/demo/stream.mpd
The same stream as Low-Latency HLS (hls.js), made by the origin from the same CMAF chunks:
  http://$EGRESS/player/?url=/live/demo/llhls.m3u8

Watch the bundled samples, packaged on demand (HLS MPEG-TS, Akamai-style csmil):
  http://$EGRESS/player/?url=/i/clip_,360,540,720,p.mp4.csmil/master.m3u8

Record the last 30 s of the demo stream (replay URLs are in the answer's "urls"):
  curl -s -X POST http://$API/api/v1/recordings -H 'Content-Type: application/json' \\
    -d "{\"stream\":\"live/demo\",\"start\":\$(( \$(date +%s) - 30 )),\"end\":\$(date +%s)}"

Push your own stream (any NAME):
  ffmpeg -re -i INPUT -c:v libx264 -preset veryfast -tune zerolatency -g 30 -c:a aac \\
    -f dash -ldash 1 -streaming 1 -seg_duration 2 -frag_type duration -frag_duration 0.5 \\
    -use_timeline 0 -use_template 1 -method PUT -http_persistent 1 -ignore_io_errors 1 \\
    -utc_timing_url http://$EGRESS/time -format_options movflags=cmaf \\
    -adaptation_sets 'id=0,streams=v id=1,streams=a' http://$INGEST/live/NAME/stream.mpd
  then open http://$EGRESS/player/?url=/live/NAME/stream.mpd

Ctrl-C stops the origin and the demo feed.
MSG
wait "${pids[0]}"
