#!/usr/bin/env bash
# Installs what casterpak's demo, tests and benchmarks need on a Debian machine, skipping
# what is already there:
#   scripts/install-deps.sh            ffmpeg, chromium, node packages (demo + tests)
#   scripts/install-deps.sh --bench    also nginx, wrk, hyperfine (benchmarks)
# System packages come from Debian (apt-get, as root); dash.js, hls.js and playwright-core
# from npm, pinned by the lockfiles in player/ and tests/browser/. Nothing downloads a
# browser of its own: the tests drive Debian's /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v ffprobe >/dev/null || need+=(ffmpeg)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
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
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
