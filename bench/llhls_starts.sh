#!/usr/bin/env bash
# LL-HLS tune-in latency of an every-frame push over many player starts (issue 10 benchmark):
# hls.js and Shaka, PART-HOLD-BACK at its default (3 x PART-TARGET) and at the RFC 8216bis
# floor (2 x PART-TARGET), each with live.llhls_hold_plain_reload off (the default) and on.
# STARTS (default 12) fresh pages per player and setting; each plays 5 s in real time, so
# the run takes about STARTS x 50 s. Release build; needs ffmpeg,
# /usr/bin/chromium and the node packages of tests/browser (tests/browser/run.sh installs them).
# Prints every start's wall-clock latency (s) and min / median / max per line.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
CASTERPAK_BIN="$PWD/target/release/casterpak" node tests/browser/llhls-starts.bench.mjs "${STARTS:-12}"
