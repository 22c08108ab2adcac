#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz / libFuzzer) of every parser of outside input; see
# fuzz/README.md for the targets.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Builds every target once (release, debug assertions and overflow checks on, AddressSanitizer),
# then runs each for SECONDS (default 20, what CI runs), FUZZ_JOBS at a time (default one
# per core), starting from the committed seeds in fuzz/corpus/<target> (read only; what a
# run finds goes to the scratch corpus fuzz/corpus-run/<target>, kept between runs, not
# committed). Exits non-zero when a
# target crashes, panics, leaks past the RSS limit or hangs; the input is then in
# fuzz/artifacts/<target>/ and the output in fuzz/logs/<target>.log.
#
# Environment: FUZZ_JOBS (targets run at once, default nproc; 1 runs them one after
# another), FUZZ_NICE (nice level of the runs, default 0; 19 for long runs beside other
# work), FUZZ_CARGO_LOCK (a lock file every cargo call holds, default /tmp/cargo.lock, so
# that builds on a small machine run one at a time), FUZZ_FLAGS (more libFuzzer flags).
#
# Stable Rust: cargo fuzz needs nightly-only compiler flags (-Zsanitizer, coverage passes),
# which RUSTC_BOOTSTRAP=1 allows on the stable toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-20}
shift || true
nice_level=${FUZZ_NICE:-0}
lock=${FUZZ_CARGO_LOCK:-/tmp/cargo.lock}
export RUSTC_BOOTSTRAP=1
# The bundled SQLite amalgamation defines two static arrays of one name; ASan's ODR check
# reports that at start-up although nothing is wrong.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0}

cargo_locked() { flock "$lock" cargo "$@"; }

if ! command -v cargo-fuzz >/dev/null; then
    cargo_locked install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(sed -n 's/^name = "\([a-z0-9_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^casterpak')
fi

# Without a name `cargo fuzz build` builds every target (one cargo call); it takes only one
# name, so named targets are built one by one.
build() { cargo_locked fuzz build --debug-assertions "$@" >fuzz/logs/build.log 2>&1 ||
    { tail -n 30 fuzz/logs/build.log >&2; echo "fuzz: build failed" >&2; exit 1; }; }
mkdir -p fuzz/logs
if [ $# -gt 0 ]; then
    for t in "${targets[@]}"; do build "$t"; done
else
    build
fi

bin_dir=fuzz/target/x86_64-unknown-linux-gnu/release
jobs=${FUZZ_JOBS:-$(nproc)}
# One target's run; its status goes to fuzz/logs/<target>.status.
run_one() {
    local t=$1 log="fuzz/logs/$1.log" status=0
    mkdir -p "fuzz/corpus-run/$t" "fuzz/artifacts/$t" "fuzz/corpus/$t"
    # The binary is run directly (not through `cargo fuzz run`) so the cargo lock is not held
    # for the whole run.
    # shellcheck disable=SC2086
    nice -n "$nice_level" "$bin_dir/$t" \
        -artifact_prefix="fuzz/artifacts/$t/" \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=30 \
        -print_final_stats=1 ${FUZZ_FLAGS:-} \
        "fuzz/corpus-run/$t" "fuzz/corpus/$t" >"$log" 2>&1 || status=$?
    echo "$status" >"fuzz/logs/$t.status"
}
# Targets run FUZZ_JOBS at a time (default: one per core; each libFuzzer run is one process
# on one core), each for the full SECONDS.
running=0
for t in "${targets[@]}"; do
    echo "== $t: ${secs}s"
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait
failed=()
summary=()
for t in "${targets[@]}"; do
    log="fuzz/logs/$t.log"
    status=$(cat "fuzz/logs/$t.status" 2>/dev/null || echo 1)
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
    line="$t: status $status, execs ${execs:-?}, peak RSS ${rss:-?} MB, ${done_line:-no DONE line}"
    summary+=("$line")
    echo "$line"
    if [ "$status" -ne 0 ] || ! grep -qE '^#[0-9]+[[:space:]]+DONE' "$log"; then
        failed+=("$t")
        grep -aE 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written|^(out-of-memory|==[0-9]+== ERROR)' "$log" | head -n 20 >&2 || true
    fi
done

echo
echo "== summary (${secs}s per target)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (inputs in fuzz/artifacts/, output in fuzz/logs/)" >&2
    exit 1
fi
echo "fuzz: no crash, OOM or timeout"
