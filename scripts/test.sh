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
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --locked --all-targets
cargo test --locked
CASTERPAK_BIN=target/debug/casterpak tests/api/schemathesis.sh
CASTERPAK_BIN=target/debug/casterpak tests/browser/run.sh
scripts/fuzz.sh 20
