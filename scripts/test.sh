#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this):
#   1. installs ffmpeg, chromium, prometheus, the pinned node packages, schemathesis and
#      akamai-edgeauth if missing;
#   2. cargo test: unit tests and integration tests that start the real binary and push
#      with real ffmpeg, read with ffprobe;
#   3. the management API fuzzed by schemathesis against its OpenAPI document
#      (tests/api/schemathesis.sh: no 5xx, every response as documented);
#   4. the browser tests: headless Debian Chromium with dash.js / hls.js / Shaka playing
#      from the origin (tests/browser);
#   5. every fuzz target for 20 s (scripts/fuzz.sh; the 10-minute runs are a benchmark
#      command, see fuzz/README.md).
# Each step's wall time is printed as it ends ("== step: N s"), and all of them at the
# end, so a slow run shows where its time went (the budget is 40 minutes in all).
set -euo pipefail
cd "$(dirname "$0")/.."
times=()
step() {
    local name=$1 t0=$SECONDS
    shift
    "$@"
    times+=("$name $((SECONDS - t0)) s")
    echo "== $name: $((SECONDS - t0)) s"
}
step install-deps scripts/install-deps.sh
step cargo-build cargo build --locked --all-targets
step cargo-test cargo test --locked
step schemathesis env CASTERPAK_BIN=target/debug/casterpak tests/api/schemathesis.sh
step browser env CASTERPAK_BIN=target/debug/casterpak tests/browser/run.sh
step fuzz scripts/fuzz.sh 20
echo "== step times: ${times[*]}"
