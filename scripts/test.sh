#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this):
#   1. installs ffmpeg, chromium, the pinned node packages and schemathesis if missing;
#   2. cargo test: unit tests and integration tests that start the real binary and push
#      with real ffmpeg, read with ffprobe;
#   3. the management API fuzzed by schemathesis against its OpenAPI document
#      (tests/api/schemathesis.sh: no 5xx, every response as documented);
#   4. the browser tests: headless Debian Chromium with dash.js / hls.js playing from the
#      origin (tests/browser).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --locked --all-targets
cargo test --locked
CASTERPAK_BIN=target/debug/casterpak tests/api/schemathesis.sh
CASTERPAK_BIN=target/debug/casterpak tests/browser/run.sh
