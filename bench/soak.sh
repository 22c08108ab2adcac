#!/usr/bin/env bash
# Soak (issue 9): a live ffmpeg push (the README's LL-DASH command, synthetic lavfi source at
# real-time pace) into a fresh release origin for SOAK_SECS (default 3600) with READERS
# (default 200) chunked readers of the in-progress segments, LLHLS (default 50) LL-HLS clients
# (blocking playlist reloads + parts, video and audio, like hls.js) and one recording created
# through the API. Samples the origin's RSS, open files (/proc/PID/fd) and CPU every
# INTERVAL (default 10) s into OUT/soak.csv and prints at the end RSS at the mark against the
# end (pass when within 10 %), open files and CPU. The mark is the 10-minute mark, or 1/6 of
# the run when SOAK_SECS is under an hour (30 s for SOAK_SECS=180); MARK_SECS overrides it.
# ORIGIN_ARGS adds `casterpak serve` flags (default settings otherwise); ORIGIN_WRAP runs the
# origin under a command, e.g. ORIGIN_WRAP="heaptrack -o /tmp/origin" (its heap at the end).
# See examples/soak.rs.
#
#   SOAK_SECS=180 bench/soak.sh                     # a 3-minute check
#   CARGO_LOCK=/tmp/cargo.lock bench/soak.sh        # the hour; builds under flock
#   BUILD=0 bench/soak.sh                           # use the binaries already built
set -euo pipefail
cd "$(dirname "$0")/.."
SOAK_SECS=${SOAK_SECS:-3600}
READERS=${READERS:-200}
LLHLS=${LLHLS:-50}
INTERVAL=${INTERVAL:-10}
OUT=${OUT:-/tmp/casterpak-soak-$(date -u +%Y%m%dT%H%M%SZ)}
TARGET=${CARGO_TARGET_DIR:-target}
cargo=(cargo)
if [ -n "${CARGO_LOCK:-}" ]; then cargo=(flock "$CARGO_LOCK" cargo); fi
if [ "${BUILD:-1}" != 0 ]; then
  "${cargo[@]}" build --release --locked --bin casterpak --example soak >/dev/null 2>&1
fi
command -v ffmpeg >/dev/null || { echo "needs ffmpeg (scripts/install-deps.sh)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
mkdir -p "$OUT"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "${COMMIT:-unknown}")
if [ -n "$(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then commit="$commit+dirty"; fi
echo "commit $commit, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ), output in $OUT"
extra=()
if [ -n "${MARK_SECS:-}" ]; then extra+=(--mark-secs "$MARK_SECS"); fi
if [ -n "${ORIGIN_ARGS:-}" ]; then extra+=(--origin-args "$ORIGIN_ARGS"); echo "origin flags: $ORIGIN_ARGS"; fi
if [ -n "${ORIGIN_WRAP:-}" ]; then extra+=(--origin-wrap "$ORIGIN_WRAP"); echo "origin under: $ORIGIN_WRAP"; fi
"$TARGET/release/examples/soak" --bin "$TARGET/release/casterpak" --secs "$SOAK_SECS" \
  --readers "$READERS" --llhls "$LLHLS" --interval "$INTERVAL" --out "$OUT" "${extra[@]}" \
  | tee "$OUT/summary.txt"
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)" | tee -a "$OUT/summary.txt"
