#!/usr/bin/env bash
# Fuzzes the management API with schemathesis against the OpenAPI document the origin serves
# (GET /api/v1/openapi.json, first checked with openapi-spec-validator): starts the origin on
# free loopback ports with a temporary data dir and a temporary media root (the media library
# writes its assets there, never in the checkout), pushes a few seconds of LL-DASH with ffmpeg
# (stream live/demo, so the stream operations meet a real archive), makes one recording and
# uploads one short clip to the media library (transcoded to a ready asset, so the asset
# operations meet one), then runs schemathesis (examples, coverage, fuzzing and stateful
# phases, following the document's links) with the checks:
#   not_a_server_error            no 5xx (but the documented 503 of GET /readyz)
#   status_code_conformance       every status is documented for its operation
#   content_type_conformance      the documented media type
#   response_headers_conformance  documented headers (Location on 201, WWW-Authenticate on 401)
#   response_schema_conformance   bodies match the documented schemas
# Every operation but GET /api/v1/events (a never-ending event stream) is fuzzed; tus bodies
# (application/offset+octet-stream) come from tests/api/schemathesis_hooks.py.
# Then API tokens: the origin is restarted on the same data dir with a configuration file of
# two [[auth.api]] tokens (role admin and role read), and
#   - curl must-fail checks: no token or an unknown one is a 401 with the bearer challenge,
#     a read token's POST/DELETE a 403 that changes nothing, /livez and /readyz need no
#     token; every refusal's status and body are checked against the served document;
#   - schemathesis again, shorter, with the admin token (-H "Authorization: Bearer ..."):
#     every operation authenticated, plus the ignored_auth check (the same request without
#     the token and with a wrong one must be refused);
#   - and with the read token: GETs answer, everything else is the documented 403.
# Bounded: --max-examples per operation and time budgets (the whole script takes about 2
# minutes). Exits non-zero when a check fails or an origin dies; always stops the origin.
#
#   tests/api/schemathesis.sh                     uses target/debug/casterpak
#   CASTERPAK_BIN=path tests/api/schemathesis.sh
# Knobs (environment): SCHEMATHESIS_MAX_TIME (s, default 70), SCHEMATHESIS_AUTH_MAX_TIME (s, of
# the admin-token run, default 35; the read-token run gets a third of it), SCHEMATHESIS_MAX_EXAMPLES
# (default 25), SCHEMATHESIS_SEED (replay a run: its seed is printed at the end),
# SCHEMATHESIS_REPORT_DIR (keep JUnit reports and the origin logs there),
# SCHEMATHESIS_EXTRA_ARGS (more schemathesis options for every run, e.g.
# "--include-operation-id getStream").
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
mkdir -p "$tmp/media"
hooks="$PWD/tests/api/schemathesis_hooks.py"
origin_pid=""
ffmpeg_pid=""
origin_log="$tmp/origin.log"
cleanup() {
  local rc=$?
  [ -n "$ffmpeg_pid" ] && kill "$ffmpeg_pid" 2>/dev/null && wait "$ffmpeg_pid" 2>/dev/null
  if [ -n "$origin_pid" ]; then
    kill "$origin_pid" 2>/dev/null || true
    wait "$origin_pid" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ]; then
    echo "--- origin log $(basename "$origin_log") (last 40 lines) ---" >&2
    tail -n 40 "$origin_log" >&2 || true
  fi
  if [ -n "${SCHEMATHESIS_REPORT_DIR:-}" ]; then
    mkdir -p "$SCHEMATHESIS_REPORT_DIR"
    cp "$tmp"/origin*.log "$SCHEMATHESIS_REPORT_DIR/" 2>/dev/null || true
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_origin LOG [serve options...]: starts the origin on three free loopback ports (bound
# once by the kernel, then released for the origin) with the data dir $tmp/data and the media
# root $tmp/media, and waits until GET /livez answers. Sets ingest, egress, api, api_url and
# origin_pid.
start_origin() {
  origin_log="$1"
  shift
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
    --api-addr "127.0.0.1:$api" --data-dir "$tmp/data" --media-root "$tmp/media" \
    --library-preset ultrafast --drain-start-wait-ms 0 "$@" \
    >"$origin_log" 2>&1 &
  origin_pid=$!
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "$api_url/livez" 2>/dev/null && return 0
    kill -0 "$origin_pid" 2>/dev/null || { echo "the origin exited at start" >&2; exit 1; }
    sleep 0.1
  done
  echo "the origin did not answer GET /livez" >&2
  exit 1
}

# The documented 503 of GET /readyz (a full disk, say) is an answer, not a server error; so is
# the documented 507 of an upload bigger than the free space (schemathesis asks for uploads of up
# to Tus-Max-Size, 16 GiB).
cat >"$tmp/schemathesis.toml" <<'EOF'
[[operations]]
include-operation-id = "getReadiness"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]

[[operations]]
include-operation-id = "createUpload"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "507"]

[[operations]]
include-operation-id = "createAsset"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "507"]
EOF

# run_schemathesis NAME MAX_TIME [schemathesis run options...]: one schemathesis run (the
# schema URL and checks first), its exit status in st_rc. NAME names its JUnit report.
run_schemathesis() {
  local name="$1" max_time="$2"
  shift 2
  local args=(
    --config-file "$tmp/schemathesis.toml"
    run "$@"
    --checks "$checks"
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}"
    --max-time "$max_time"
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
    args+=(--report junit --report-junit-path "$SCHEMATHESIS_REPORT_DIR/junit-$name.xml")
  fi
  echo "=== schemathesis: $name ==="
  st_rc=0
  # Run from the temp dir: schemathesis keeps a .schemathesis/ cache in its working directory.
  # The hard stop is well above --max-time: schemathesis ends itself unless it hangs.
  (cd "$tmp" && SCHEMATHESIS_HOOKS="$hooks" timeout --signal=INT --kill-after=10 "$((max_time + 40))" \
    "$st" "${args[@]}") || st_rc=$?
  if ! kill -0 "$origin_pid" 2>/dev/null; then
    echo "the origin died during the $name run" >&2
    exit 1
  fi
  if grep -q "panicked" "$origin_log"; then
    echo "the origin logged a panic:" >&2
    grep -m 5 "panicked" "$origin_log" >&2
    [ "$st_rc" -ne 0 ] || st_rc=1
  fi
  if [ "$st_rc" -ne 0 ]; then
    echo "schemathesis ($name): FAILED (exit $st_rc)" >&2
    exit "$st_rc"
  fi
}
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance

# ---- without API tokens: the API is open (on loopback) ----
start_origin "$tmp/origin.log"
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
# One short clip uploaded to the media library and transcoded, so the asset operations list a
# ready asset (renditions, playback URLs, poster) from the start.
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=160x90:rate=25:duration=2 \
  -f lavfi -i sine=frequency=440:sample_rate=44100:duration=2 -c:v libx264 -preset ultrafast \
  -threads 1 -c:a aac -shortest "$tmp/clip.mp4" </dev/null
asset="$(curl -fsS -F "file=@$tmp/clip.mp4" -F "title=schemathesis seed" "$api_url/api/v1/assets")"
asset_id="$(printf '%s' "$asset" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
status=""
for _ in $(seq 150); do
  status="$(curl -fsS "$api_url/api/v1/assets/$asset_id" | python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])')"
  case "$status" in ready | errored) break ;; esac
  sleep 0.2
done
[ "$status" = ready ] || { echo "the seed asset is $status, not ready: $(curl -sS "$api_url/api/v1/assets/$asset_id")" >&2; exit 1; }
echo "asset: $asset_id ready"

run_schemathesis open "${SCHEMATHESIS_MAX_TIME:-70}" "$api_url/api/v1/openapi.json"

# ---- with API tokens: the same data dir, restarted with [[auth.api]] tokens ----
kill "$origin_pid"
wait "$origin_pid" || true
origin_pid=""
admin_token="admin-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
read_token="read-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
mkdir -p "$tmp/auth"
cat >"$tmp/auth/casterpak.toml" <<EOF
[[auth.api]]
token = "$admin_token"
role = "admin"

[[auth.api]]
token = "$read_token"
role = "read"
EOF
start_origin "$tmp/origin-auth.log" --config "$tmp/auth/casterpak.toml"
admin=(-H "Authorization: Bearer $admin_token")
reader=(-H "Authorization: Bearer $read_token")
curl -fsS -o "$tmp/openapi-auth.json" "${reader[@]}" "$api_url/api/v1/openapi.json"

# expect STATUS CODE METHOD PATH [curl options...]: METHOD PATH answers STATUS; when CODE is
# not "-", the body is a JSON error of that code, conforming to the served document (STATUS
# documented for the operation, the Error schema), with the bearer challenge on a 401.
expect() {
  local want="$1" code="$2" method="$3" path="$4"
  shift 4
  local got
  got="$(curl -sS -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' -X "$method" "$@" "$api_url$path")"
  if [ "$got" != "$want" ]; then
    echo "auth check: $method $path answered $got, not $want: $(head -c 300 "$tmp/body")" >&2
    exit 1
  fi
  [ "$code" = - ] && return 0
  "$SCHEMATHESIS_VENV/bin/python" - "$tmp/openapi-auth.json" "$method" "$path" "$want" "$code" \
    "$tmp/body" "$tmp/headers" <<'EOF'
import json, re, sys
import jsonschema
doc_file, method, path, status, code, body_file, headers_file = sys.argv[1:]
doc = json.load(open(doc_file))
what = f"auth check: {method} {path} -> {status}"
segs = path.split("?")[0].split("/")
op = None
for template, item in doc["paths"].items():
    t = template.split("/")
    if len(t) == len(segs) and all(a == b or (a.startswith("{") and b) for a, b in zip(t, segs)):
        op = item.get(method.lower())
        if op is not None and "{" not in template:
            break
if op is None:
    sys.exit(f"{what}: the document has no such operation")
response = op["responses"].get(status)
if response is None:
    sys.exit(f"{what}: status {status} is not documented for {op['operationId']}")
while "$ref" in response:
    ref, response = response["$ref"], doc
    for part in ref[2:].split("/"):
        response = response[part]
schema = response["content"]["application/json"]["schema"]
body = json.load(open(body_file))
jsonschema.validate(body, {**schema, "components": doc["components"]})
if body["error"]["code"] != code:
    sys.exit(f"{what}: error code {body['error']['code']!r}, not {code!r}")
headers = open(headers_file, encoding="latin-1").read()
if status == "401" and not re.search(r'(?im)^www-authenticate: Bearer realm="casterpak-api"\r?$', headers):
    sys.exit(f"{what}: no WWW-Authenticate: Bearer realm=\"casterpak-api\"\n{headers}")
EOF
}
# Open without a token: liveness, readiness.
expect 200 - GET /livez
expect 200 - GET /readyz
# Refused without a known token, whatever the route (the document itself and the metrics too).
expect 401 unauthorized GET /api/v1/streams
expect 401 unauthorized GET /api/v1/openapi.json
expect 401 unauthorized GET /metrics
expect 401 unauthorized GET /api/v1/recordings -H "Authorization: Bearer not-$admin_token"
expect 401 unauthorized GET /api/v1/recordings -H "Authorization: Basic $(printf 'x:%s' "$admin_token" | base64 -w0)"
expect 401 unauthorized POST /api/v1/recordings -H 'Content-Type: application/json' \
  -d '{"stream":"live/demo","title":"refused without a token"}'
# A read token reads, and may change nothing.
expect 200 - GET /api/v1/recordings "${reader[@]}"
expect 200 - GET /metrics "${reader[@]}"
expect 403 forbidden POST /api/v1/recordings "${reader[@]}" -H 'Content-Type: application/json' \
  -d '{"stream":"live/demo","title":"refused to a read token"}'
expect 403 forbidden POST /api/v1/streams/live%2Fdemo/disable "${reader[@]}"
expect 403 forbidden DELETE /api/v1/streams/live%2Fdemo/archive "${reader[@]}"
# The media library behind the same gate: tus and assets (an asset uploaded with the admin
# token: the open run may have renamed or deleted the seed one).
asset="$(curl -fsS "${admin[@]}" -F "file=@$tmp/clip.mp4" -F "title=schemathesis auth seed" "$api_url/api/v1/assets")"
asset_id="$(printf '%s' "$asset" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
expect 401 unauthorized OPTIONS /api/v1/uploads
expect 401 unauthorized POST /api/v1/uploads -H 'Tus-Resumable: 1.0.0' -H 'Upload-Length: 10'
expect 401 unauthorized GET "/api/v1/assets/$asset_id"
expect 401 unauthorized POST /api/v1/assets -F "file=@$tmp/clip.mp4"
expect 200 - GET "/api/v1/assets/$asset_id" "${reader[@]}"
expect 403 forbidden POST /api/v1/uploads "${reader[@]}" -H 'Tus-Resumable: 1.0.0' -H 'Upload-Length: 10'
expect 403 forbidden PATCH "/api/v1/assets/$asset_id" "${reader[@]}" -H 'Content-Type: application/json' \
  -d '{"title":"renamed by a read token"}'
expect 403 forbidden DELETE "/api/v1/assets/$asset_id" "${reader[@]}"
case "$(curl -fsS "${reader[@]}" "$api_url/api/v1/assets/$asset_id")" in
  *'"title":"schemathesis auth seed"'*) ;;
  *) echo "auth check: a read token's refused PATCH or DELETE changed the seed asset" >&2; exit 1 ;;
esac
# The admin token changes: a recording (pending until live/demo is live again), so the
# recording operations list something.
expect 201 - POST /api/v1/recordings "${admin[@]}" -H 'Content-Type: application/json' \
  -d '{"stream":"live/demo","title":"schemathesis auth seed"}'
listed="$(curl -fsS "${admin[@]}" "$api_url/api/v1/recordings")"
case "$listed" in
  *"schemathesis auth seed"*) ;;
  *) echo "auth check: the admin token's recording is not listed: $listed" >&2; exit 1 ;;
esac
case "$listed" in
  *"refused "*) echo "auth check: a refused POST made a recording: $listed" >&2; exit 1 ;;
esac
echo "auth checks: 401 without a known token, 403 to a read token's changes (streams, recordings, uploads, assets), /livez and /readyz open"

auth_time="${SCHEMATHESIS_AUTH_MAX_TIME:-35}"
# The admin token: every operation authenticated, and ignored_auth sends the same requests
# without the token and with a wrong one, which must be refused.
checks="$checks,ignored_auth"
run_schemathesis admin "$auth_time" "$api_url/api/v1/openapi.json" \
  "${admin[@]}" --generation-with-security-parameters false
# The read token: GETs answer, every change is the documented 403.
run_schemathesis read "$(( (auth_time + 2) / 3 ))" "$api_url/api/v1/openapi.json" \
  "${reader[@]}" --generation-with-security-parameters false

echo "schemathesis: the management API conforms to its OpenAPI document, with and without API tokens"
