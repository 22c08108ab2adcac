#!/usr/bin/env bash
# Archive and recordings benchmark (issue 7): a synthetic 7-day archive of one stream
# (907,200 segment rows in SQLite, one 24 h done recording), then per run a fresh release
# origin on it: start-up to the first 200 of the stream's API entry, the 24 h recording's HLS
# media playlist and MPD (REQUESTS sequential requests each on one keep-alive connection),
# the stream's ranges and the recording's JSON (API_REQUESTS each). Prints every run and the
# medians as Markdown. See examples/archive_bench.rs.
#
# RUNS=5 REQUESTS=100 API_REQUESTS=200 DAYS=7; COLD=1 evicts the index file from the page
# cache before each start; PHASES=1 also times the handlers' steps in process and prints
# SQLite's query plans; DATA_DIR=... builds (or reuses) the data dir there and keeps it;
# CONTENTION=4 then sends 4 MPD requests at once plus one ranges request (3 rounds).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
REQUESTS=${REQUESTS:-100}
API_REQUESTS=${API_REQUESTS:-200}
DAYS=${DAYS:-7}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --locked --bin casterpak --example archive_bench >/dev/null 2>&1
extra=()
[ "${COLD:-0}" = 1 ] && extra+=(--cold)
[ "${PHASES:-0}" = 1 ] && extra+=(--phases)
[ -n "${DATA_DIR:-}" ] && extra+=(--dir "$DATA_DIR")
[ -n "${CONTENTION:-}" ] && extra+=(--contention "$CONTENTION")
uptime
"$TARGET/release/examples/archive_bench" --bin "$TARGET/release/casterpak" --runs "$RUNS" \
  --requests "$REQUESTS" --api-requests "$API_REQUESTS" --days "$DAYS" "${extra[@]}"
