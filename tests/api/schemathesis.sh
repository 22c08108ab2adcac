#!/usr/bin/env bash
# Fuzzes the management API with schemathesis against the OpenAPI document the origin serves
# (GET /api/v1/openapi.json, first checked with openapi-spec-validator): starts the origin on
# free loopback ports with a temporary data dir, pushes a few seconds of LL-DASH with ffmpeg
# (stream live/demo, so the stream operations meet a real archive) and makes one recording,
# then runs schemathesis (examples, coverage, fuzzing and stateful phases, following the
# document's links) with the checks:
#   not_a_server_error            no 5xx
#   status_code_conformance       every status is documented for its operation
#   content_type_conformance      the documented media type
#   response_headers_conformance  documented headers (Location on 201)
#   response_schema_conformance   bodies match the documented schemas
# Every operation but GET /api/v1/events (a never-ending event stream) is fuzzed.
# Bounded: --max-examples per operation and a time budget (the whole script takes about 1.5
# minutes). Exits non-zero when a check fails or the origin dies; always stops the origin.
#
#   tests/api/schemathesis.sh                     uses target/debug/casterpak
#   CASTERPAK_BIN=path tests/api/schemathesis.sh
# Knobs (environment): SCHEMATHESIS_MAX_TIME (s, default 70), SCHEMATHESIS_MAX_EXAMPLES
# (default 25), SCHEMATHESIS_SEED (replay a run: its seed is printed at the end),
# SCHEMATHESIS_REPORT_DIR (keep a JUnit report and the origin log there),
# SCHEMATHESIS_EXTRA_ARGS (more schemathesis options, e.g. "--include-operation-id getStream").
# schemathesis and openapi-spec-validator are installed, pinned, by scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."

eval "$(grep -E '^(SCHEMATHESIS_VERSION|OPENAPI_SPEC_VALIDATOR_VERSION|SCHEMATHESIS_VENV)=' scripts/install-deps.sh)"
st="$SCHEMATHESIS_VENV/bin/schemathesis"
if ! "$st" --version 2>/dev/null | grep -x "schemathesis, version $SCHEMATHESIS_VERSION" >/dev/null ||
   ! [ -x "$SCHEMATHESIS_VENV/bin/openapi-spec-validator" ]; then
  echo "schemathesis $SCHEMATHESIS_VERSION is not in $SCHEMATHESIS_VENV: run scripts/install-deps.sh" >&2
  exit 1
fi
bin="${CASTERPAK_BIN:-target/debug/casterpak}"
[ -x "$bin" ] || { echo "no $bin: cargo build first" >&2; exit 1; }
command -v ffmpeg >/dev/null || { echo "ffmpeg is missing: run scripts/install-deps.sh" >&2; exit 1; }

tmp="$(mktemp -d)"
origin_pid=""
ffmpeg_pid=""
cleanup() {
  local rc=$?
  [ -n "$ffmpeg_pid" ] && kill "$ffmpeg_pid" 2>/dev/null && wait "$ffmpeg_pid" 2>/dev/null
  if [ -n "$origin_pid" ]; then
    kill "$origin_pid" 2>/dev/null || true
    wait "$origin_pid" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ]; then
    echo "--- origin log (last 40 lines) ---" >&2
    tail -n 40 "$tmp/origin.log" >&2 || true
  fi
  if [ -n "${SCHEMATHESIS_REPORT_DIR:-}" ]; then
    mkdir -p "$SCHEMATHESIS_REPORT_DIR"
    cp "$tmp/origin.log" "$SCHEMATHESIS_REPORT_DIR/" 2>/dev/null || true
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Three free loopback ports (bound once by the kernel, then released for the origin).
read -r ingest egress api < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
')
api_url="http://127.0.0.1:$api"

RUST_LOG="${RUST_LOG:-info}" NO_COLOR=1 "$bin" serve \
  --ingest-addr "127.0.0.1:$ingest" --egress-addr "127.0.0.1:$egress" \
  --api-addr "127.0.0.1:$api" --data-dir "$tmp/data" >"$tmp/origin.log" 2>&1 &
origin_pid=$!
for _ in $(seq 100); do
  curl -fsS -o /dev/null "$api_url/api/v1/openapi.json" 2>/dev/null && break
  kill -0 "$origin_pid" 2>/dev/null || { echo "the origin exited at start" >&2; exit 1; }
  sleep 0.1
done
curl -fsS -o "$tmp/openapi.json" "$api_url/api/v1/openapi.json"
# The served document is valid OpenAPI 3.0 (openapi-spec-validator).
"$SCHEMATHESIS_VENV/bin/openapi-spec-validator" "$tmp/openapi.json"

# 6 s of LL-DASH (README "Push your own stream"), small and fast: 3 archived segments.
ffmpeg -hide_banner -loglevel error -re \
  -f lavfi -i testsrc2=size=320x180:rate=30:duration=6 \
  -f lavfi -i sine=frequency=1000:sample_rate=48000:duration=6 \
  -c:v libx264 -preset ultrafast -tune zerolatency -pix_fmt yuv420p -g 30 -keyint_min 30 \
  -sc_threshold 0 -b:v 300k -c:a aac -b:a 64k -ar 48000 \
  -f dash -ldash 1 -streaming 1 -seg_duration 2 -frag_type duration -frag_duration 0.5 \
  -use_timeline 0 -use_template 1 -window_size 5 -extra_window_size 5 \
  -method PUT -http_persistent 1 -utc_timing_url "http://127.0.0.1:$egress/time" \
  -target_latency 1.5 -format_options movflags=cmaf -adaptation_sets 'id=0,streams=v id=1,streams=a' \
  "http://127.0.0.1:$ingest/live/demo/stream.mpd" </dev/null &
ffmpeg_pid=$!
wait "$ffmpeg_pid" || { echo "the ffmpeg push failed" >&2; exit 1; }
ffmpeg_pid=""
ranges=""
for _ in $(seq 50); do
  ranges="$(curl -fsS "$api_url/api/v1/streams/live%2Fdemo/ranges" 2>/dev/null || true)"
  case "$ranges" in *'"session"'*) break ;; esac
  sleep 0.2
done
case "$ranges" in
  *'"session"'*) echo "archived: $ranges" ;;
  *) echo "nothing of live/demo was archived: $ranges" >&2; exit 1 ;;
esac
# One recording of the last seconds, so the recording operations list something at once.
now="$(date +%s)"
created="$(curl -fsS -X POST "$api_url/api/v1/recordings" -H 'Content-Type: application/json' \
  -d "{\"stream\":\"live/demo\",\"start\":$((now - 4)),\"end\":$now,\"title\":\"schemathesis seed\"}")"
echo "recording: $created"

args=(
  run "$api_url/api/v1/openapi.json"
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}"
  --max-time "${SCHEMATHESIS_MAX_TIME:-70}"
  --request-timeout 10
  --workers 2
  --no-color
  --generation-database none
  # GET /api/v1/events is a never-ending event stream: nothing to fuzz, and it would only time out.
  --exclude-path /api/v1/events
)
[ -n "${SCHEMATHESIS_SEED:-}" ] && args+=(--seed "$SCHEMATHESIS_SEED")
# Extra schemathesis options, split on spaces (e.g. "--include-operation-id stopRecording").
# shellcheck disable=SC2206
[ -n "${SCHEMATHESIS_EXTRA_ARGS:-}" ] && args+=($SCHEMATHESIS_EXTRA_ARGS)
if [ -n "${SCHEMATHESIS_REPORT_DIR:-}" ]; then
  mkdir -p "$SCHEMATHESIS_REPORT_DIR"
  SCHEMATHESIS_REPORT_DIR="$(cd "$SCHEMATHESIS_REPORT_DIR" && pwd)"
  args+=(--report junit --report-dir "$SCHEMATHESIS_REPORT_DIR")
fi
st_rc=0
# Run from the temp dir: schemathesis keeps a .schemathesis/ cache in its working directory.
# The hard stop is well above --max-time: schemathesis ends itself unless it hangs.
(cd "$tmp" && timeout --signal=INT --kill-after=10 "$(( ${SCHEMATHESIS_MAX_TIME:-70} + 40 ))" \
  "$st" "${args[@]}") || st_rc=$?

if ! kill -0 "$origin_pid" 2>/dev/null; then
  echo "the origin died during the run" >&2
  exit 1
fi
if grep -q "panicked" "$tmp/origin.log"; then
  echo "the origin logged a panic:" >&2
  grep -m 5 "panicked" "$tmp/origin.log" >&2
  [ "$st_rc" -ne 0 ] || st_rc=1
fi
if [ "$st_rc" -ne 0 ]; then
  echo "schemathesis: FAILED (exit $st_rc)" >&2
  exit "$st_rc"
fi
echo "schemathesis: the management API conforms to its OpenAPI document"
