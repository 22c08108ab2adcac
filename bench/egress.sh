#!/usr/bin/env bash
# Finished-segment egress throughput (issue 2 benchmark): casterpak serving a finished
# 400 KB CMAF segment from memory, side by side with nginx serving the same file from disk,
# in the same run, with wrk. Alternates the two ROUNDS times (default 3) and prints
# requests/s and MB/s per round, the medians and the ratio casterpak / nginx.
# wrk shares the machine's cores with the server it measures.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-50}
scripts/install-deps.sh --bench >/dev/null
cargo build --release --locked --bin casterpak >/dev/null 2>&1
tmp=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null || true; [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
chmod 755 "$tmp"  # nginx workers (www-data when started as root) must read the file
seg=tests/fixtures/cmaf/ffmpeg_ldash_640x360_seg2.m4s
mkdir -p "$tmp/www/live/b" "$tmp/logs"
cp "$seg" "$tmp/www/live/b/seg.m4s"
target/release/casterpak serve --ingest-addr 127.0.0.1:5910 --egress-addr 127.0.0.1:5911 --api-addr 127.0.0.1:0 \
  --data-dir "$tmp/data" --memory-window-secs 3600 2>/dev/null &
cat >"$tmp/nginx.conf" <<NGINX
worker_processes 2;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  open_file_cache max=100 inactive=60s;
  types { video/mp4 m4s; }
  server { listen 127.0.0.1:5912; root $tmp/www; }
}
NGINX
/usr/sbin/nginx -c "$tmp/nginx.conf" -p "$tmp"
sleep 0.5
curl -fs -X PUT --data-binary @"$seg" http://127.0.0.1:5910/live/b/seg.m4s
cmp <(curl -fs http://127.0.0.1:5911/live/b/seg.m4s) "$seg"
cmp <(curl -fs http://127.0.0.1:5912/live/b/seg.m4s) "$seg"
measure() { # url -> "req/s MB/s"
  wrk -t2 -c"$CONNS" -d"$DURATION" "$1" | awk '
    /Requests\/sec/ {r=$2}
    /Transfer\/sec/ {v=$2; if (v ~ /GB/) {sub("GB","",v); v*=1024} else if (v ~ /MB/) {sub("MB","",v)} else if (v ~ /KB/) {sub("KB","",v); v/=1024}; m=v}
    END {printf "%.0f %.1f\n", r, m}'
}
echo "| round | casterpak req/s | casterpak MB/s | nginx req/s | nginx MB/s | ratio req/s |"
echo "|---:|---:|---:|---:|---:|---:|"
: >"$tmp/results"
for r in $(seq "$ROUNDS"); do
  read -r cr cm < <(measure http://127.0.0.1:5911/live/b/seg.m4s)
  read -r nr nm < <(measure http://127.0.0.1:5912/live/b/seg.m4s)
  echo "$cr $cm $nr $nm" >>"$tmp/results"
  awk -v r="$r" -v cr="$cr" -v cm="$cm" -v nr="$nr" -v nm="$nm" 'BEGIN {printf "| %d | %s | %s | %s | %s | %.2f |\n", r, cr, cm, nr, nm, cr/nr}'
done
python3 - "$tmp/results" <<'PY'
import sys, statistics
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
cr, cm, nr, nm = (statistics.median(c) for c in zip(*rows))
print(f"| median | {cr:.0f} | {cm:.1f} | {nr:.0f} | {nm:.1f} | {cr/nr:.2f} |")
PY
