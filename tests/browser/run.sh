#!/bin/sh
# Browser tests (Chromium + dash.js/hls.js against the casterpak origin).
#
#   tests/browser/run.sh                 # every case in tests/browser/cases/
#   tests/browser/run.sh cases/live-origin.test.mjs
#
# Installs the pinned node packages (player/, dashboard/ and tests/browser/), then runs
# node's built-in test runner; the closing lines are its "# pass N / # fail N".
# Expects the origin binary already built: $CASTERPAK_BIN (absolute, or
# relative to the repo root), default target/debug/casterpak. Needs ffmpeg and
# /usr/bin/chromium (Debian: apt-get install -y ffmpeg chromium).
set -eu
root="$(cd "$(dirname "$0")/../.." && pwd)"
npm ci --prefix "$root/player" --no-audit --no-fund
npm ci --prefix "$root/dashboard" --no-audit --no-fund
npm ci --prefix "$root/tests/browser" --no-audit --no-fund
cd "$root/tests/browser"
if [ "$#" -eq 0 ]; then set -- cases/; fi
# One case at a time: each plays in real time and the machine is small.
exec node --test --test-concurrency=1 "$@"
