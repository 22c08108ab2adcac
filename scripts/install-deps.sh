#!/usr/bin/env bash
# Installs what casterpak's demo, tests and benchmarks need on a Debian machine, skipping
# what is already there:
#   scripts/install-deps.sh            ffmpeg, chromium, node packages, schemathesis (demo + tests)
#   scripts/install-deps.sh --bench    also nginx, wrk, hyperfine (benchmarks)
# System packages come from Debian (apt-get, as root); dash.js, hls.js, Shaka Player,
# tus-js-client and playwright-core from npm, pinned by the lockfiles in player/, dashboard/
# and tests/browser/. Nothing downloads a browser of its own: the tests drive Debian's
# /usr/bin/chromium. schemathesis (the API fuzzer of tests/api/schemathesis.sh) comes from
# PyPI, pinned below.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v ffprobe >/dev/null || need+=(ffmpeg)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v curl >/dev/null || need+=(curl)          # LiveMix flow test
command -v openssl >/dev/null || need+=(openssl)    # webhook signature test
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v prometheus >/dev/null || need+=(prometheus)  # scrape test; promtool comes with it
if [ "${1:-}" = "--bench" ]; then
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
  command -v wrk >/dev/null || need+=(wrk)
  command -v hyperfine >/dev/null || need+=(hyperfine)
fi
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "not root: run 'sudo apt-get install -y ${need[*]}' first" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
npm ci --prefix player --no-audit --no-fund --loglevel=error
npm ci --prefix dashboard --no-audit --no-fund --loglevel=error
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

# schemathesis and openapi-spec-validator for tests/api/schemathesis.sh (which reads the
# versions and the folder here), in a virtualenv of their own.
SCHEMATHESIS_VERSION=4.32.5
OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
SCHEMATHESIS_VENV="${CASTERPAK_SCHEMATHESIS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/casterpak/schemathesis-$SCHEMATHESIS_VERSION}"
if ! { "$SCHEMATHESIS_VENV/bin/schemathesis" --version 2>/dev/null |
         grep -x "schemathesis, version $SCHEMATHESIS_VERSION" >/dev/null &&
       "$SCHEMATHESIS_VENV/bin/python" -m pip show openapi-spec-validator 2>/dev/null |
         grep -x "Version: $OPENAPI_SPEC_VALIDATOR_VERSION" >/dev/null; }; then
  echo "installing schemathesis $SCHEMATHESIS_VERSION into $SCHEMATHESIS_VENV"
  python3 -m venv "$SCHEMATHESIS_VENV"
  "$SCHEMATHESIS_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "schemathesis==$SCHEMATHESIS_VERSION" "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION"
fi

# akamai-edgeauth (Akamai's own EdgeAuth token generator) for the playback-token tests
# (tests/security.rs and the browser suite read the folder from here).
EDGEAUTH_VERSION=0.3.2
EDGEAUTH_VENV="${CASTERPAK_EDGEAUTH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/casterpak/edgeauth-$EDGEAUTH_VERSION}"
if ! "$EDGEAUTH_VENV/bin/python" -m pip show akamai-edgeauth 2>/dev/null |
     grep -x "Version: $EDGEAUTH_VERSION" >/dev/null; then
  echo "installing akamai-edgeauth $EDGEAUTH_VERSION into $EDGEAUTH_VENV"
  python3 -m venv "$EDGEAUTH_VENV"
  "$EDGEAUTH_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "akamai-edgeauth==$EDGEAUTH_VERSION"
fi

# tuspy (the Python tus 1.0 client of the tus project) for the library's upload tests
# (tests/library.rs reads the folder from here).
TUSPY_VERSION=1.1.0
TUSPY_VENV="${CASTERPAK_TUSPY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/casterpak/tuspy-$TUSPY_VERSION}"
if ! "$TUSPY_VENV/bin/python" -m pip show tuspy 2>/dev/null |
     grep -x "Version: $TUSPY_VERSION" >/dev/null; then
  echo "installing tuspy $TUSPY_VERSION into $TUSPY_VENV"
  python3 -m venv "$TUSPY_VENV"
  "$TUSPY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "tuspy==$TUSPY_VERSION"
fi
