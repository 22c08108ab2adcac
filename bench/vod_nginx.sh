#!/usr/bin/env bash
# On-demand packaging over HTTP against nginx-vod-module (issue 10 benchmark): cold segment
# requests/s and MB/s for HLS MPEG-TS and fMP4 (CMAF/DASH fragments), casterpak and
# nginx-vod-module side by side in the same run, on loopback.
#  - Both servers package every request from the MP4 of a 60 s 720p file (10 segments of 6 s):
#    casterpak with its output cache off (`--memory-cache-bytes 0`, no `--cache-dir`),
#    nginx-vod in local mode with every cache off (no vod_metadata_cache, vod_response_cache
#    or open_file_cache), 2 worker processes.
#  - TS: the 10 muxed audio+video segments of each server's media playlist
#    (casterpak /i/.../index_0_av.m3u8, nginx-vod /hls/.../index.m3u8).
#  - fMP4: the 10 video and 10 audio fragments, interleaved (casterpak /cmaf/.../index_0_v.m3u8
#    and index_0_a.m3u8, nginx-vod /dash/.../manifest.mpd); a request is one fragment, so
#    requests/s here counts video and audio fragments alike, for both servers.
#  - The segment lists come from each server's own playlist/MPD; before measuring, every
#    segment is fetched once (count and total bytes printed) and the first and last ones of
#    each list are decoded with ffmpeg.
#  - `wrk -t2 -c16 -d10s -s bench/vod_urls.lua` per format and server, ROUNDS times, the order
#    of the two servers alternating round by round; then medians and casterpak / nginx-vod.
# nginx-vod-module is built from source in scratch space, never committed (see need_nginx
# below for the commands); NGINX_VOD_DIR is its install prefix. Exits 2 when it is missing.
# Inputs come from `cargo bench --bench vod_bench` in ${VOD_BENCH_DIR:-target/vod-bench}.
# CPU-heavy: on a shared machine run it as `flock /tmp/cargo.lock bench/vod_nginx.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
NGINX_VOD_DIR=${NGINX_VOD_DIR:-/tmp/nginx-vod-bench/install}
dir=${VOD_BENCH_DIR:-target/vod-bench}
file=bench_60s_720p.mp4
cp_port=5941   # casterpak egress
ng_port=5942   # nginx-vod

need_nginx() {
  cat >&2 <<EOF
nginx with nginx-vod-module not found at $NGINX_VOD_DIR/sbin/nginx. Build it in scratch space
(never inside this repository), e.g. with nginx 1.28.3 and nginx-vod-module master:
  apt-get install -y build-essential libpcre2-dev zlib1g-dev libssl-dev
  mkdir -p /tmp/nginx-vod-bench && cd /tmp/nginx-vod-bench
  git clone --depth 1 -b release-1.28.3 https://github.com/nginx/nginx.git nginx-1.28.3
  git clone --depth 1 https://github.com/kaltura/nginx-vod-module.git
  cd nginx-1.28.3
  auto/configure --prefix=/tmp/nginx-vod-bench/install \\
    --add-module=/tmp/nginx-vod-bench/nginx-vod-module \\
    --with-threads --with-file-aio --with-cc-opt='-O3 -mpopcnt'
  make -j2 && make install
Then run again (or set NGINX_VOD_DIR to the install prefix).
EOF
  exit 2
}
nginx_bin=$NGINX_VOD_DIR/sbin/nginx
[ -x "$nginx_bin" ] || need_nginx
"$nginx_bin" -V 2>&1 | grep -q nginx-vod-module || need_nginx

scripts/install-deps.sh --bench >/dev/null
cargo build --release --locked --bin casterpak >/dev/null 2>&1
if [ ! -f "$dir/$file" ]; then
  VOD_BENCH_RUNS=1 VOD_BENCH_DIR="$dir" cargo bench --locked --bench vod_bench >/dev/null
fi
media=$(realpath "$dir")
tmp=$(mktemp -d)
mkdir -p "$tmp/casterpak"
cp_pid=
ng_pid=
stop() {
  [ -n "$cp_pid" ] && kill "$cp_pid" 2>/dev/null && wait "$cp_pid" 2>/dev/null || true
  [ -n "$ng_pid" ] && kill -QUIT "$ng_pid" 2>/dev/null && wait "$ng_pid" 2>/dev/null || true
  cp_pid=; ng_pid=
  rm -rf "$tmp"
}
trap stop EXIT

# nginx-vod-module: local mode, 6 s segments, HLS (muxed TS) and DASH (fMP4 per track), no
# caches. `vod_segment_count_policy last_long`: the file's audio is 21 ms longer than its video,
# and the default (last_short) would add an 11th segment of 21 ms that casterpak does not have.
# The DASH MPD uses SegmentList so that it names every fragment (the MPD's format does not
# change how fragments are packaged). File I/O as the module's README recommends for local
# mode: `aio on` and asynchronous open on a thread pool (NGINX_VOD_AIO=off: plain reads).
if [ "${NGINX_VOD_AIO:-on}" = off ]; then
  aio="aio off;"
else
  aio="aio on; vod_open_file_thread_pool default;"
fi
mkdir -p "$tmp/nginx/logs"
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 2;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
thread_pool default threads=4 max_queue=65536;
events {
  worker_connections 1024;
}
http {
  access_log off;
  default_type application/octet-stream;
  tcp_nodelay on;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  $aio
  server {
    listen 127.0.0.1:$ng_port;
    vod_mode local;
    vod_segment_duration 6000;
    vod_segment_count_policy last_long;
    location /hls/ {
      alias $media/;
      vod hls;
    }
    location /dash/ {
      alias $media/;
      vod dash;
      vod_dash_manifest_format segmentlist;
    }
  }
}
EOF
"$nginx_bin" -t -q -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf"
"$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' &
ng_pid=$!
target/release/casterpak serve --ingest-addr 127.0.0.1:5940 --egress-addr 127.0.0.1:$cp_port \
  --api-addr 127.0.0.1:0 --data-dir "$tmp/casterpak" --media-root "$dir" \
  --memory-cache-bytes 0 2>/dev/null &
cp_pid=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$cp_port/time" >/dev/null 2>&1 &&
    curl -fs -o /dev/null "http://127.0.0.1:$ng_port/hls/$file/index.m3u8" 2>/dev/null && break
  sleep 0.1
done

# Request paths listed by a media playlist, or by the Representations of a SegmentList MPD
# whose mimeType starts with $3 (video, audio), made absolute against the manifest's path:
# the segments, or with $4 = init the init segment (EXT-X-MAP / Initialization).
list() { # port manifest-path [video|audio] [init]
  curl -fsS "http://127.0.0.1:$1$2" | python3 -c '
import re, sys
base, kind, init = sys.argv[1], sys.argv[2], sys.argv[3] == "init"
text = sys.stdin.read()
if "<MPD" in text:
    attr = "Initialization[^>]*\\bsourceURL" if init else "SegmentURL[^>]*\\bmedia"
    uris = []
    for rep in re.findall(r"<Representation\b.*?</Representation>", text, re.S):
        if re.search(r"mimeType=\"" + kind, rep):
            uris += re.findall("<" + attr + r"=\"([^\"]+)\"", rep)
elif init:
    uris = re.findall(r"EXT-X-MAP:URI=\"([^\"]+)\"", text)
else:
    uris = [l.strip() for l in text.splitlines() if l.strip() and not l.startswith("#")]
for u in uris:
    u = re.sub(r"^https?://[^/]+", "", u)
    print(u if u.startswith("/") else base + u)
' "${2%/*}/" "${3:-}" "${4:-}"
}
# Interleaves two lists line by line (video and audio fragments).
interleave() { paste -d '\n' "$1" "$2" | sed '/^$/d'; }

mpd="/dash/$file/manifest.mpd"
list $cp_port "/i/$file/index_0_av.m3u8" >"$tmp/ts-casterpak"
list $ng_port "/hls/$file/index.m3u8" >"$tmp/ts-nginx-vod"
list $cp_port "/cmaf/$file/index_0_v.m3u8" >"$tmp/v-casterpak"
list $cp_port "/cmaf/$file/index_0_a.m3u8" >"$tmp/a-casterpak"
list $ng_port "$mpd" video >"$tmp/v-nginx-vod"
list $ng_port "$mpd" audio >"$tmp/a-nginx-vod"
for s in casterpak nginx-vod; do
  interleave "$tmp/v-$s" "$tmp/a-$s" >"$tmp/fmp4-$s"
done

# Checks: every segment answers 200 (count, total bytes); the first and last segment of each
# list decode without ffmpeg errors (fMP4: init + fragment).
echo "### segment lists (every segment fetched once; first and last decoded with ffmpeg)"
echo "| list | server | segments | total MB | decode errors |"
echo "|---|---|---:|---:|---:|"
decode_errors() { # port path [init-path]
  local f="$tmp/decode.bin"
  : >"$f"
  if [ -n "${3:-}" ]; then curl -fsS "http://127.0.0.1:$1$3" >>"$f"; fi
  curl -fsS "http://127.0.0.1:$1$2" >>"$f"
  ffmpeg -nostdin -v error -i "$f" -f null - 2>&1 | wc -l
}
check() { # list server port [init-path]
  local l="$tmp/$1-$2" n bytes errs=0 u
  n=$(wc -l <"$l")
  bytes=$(while read -r u; do curl -fsS -o /dev/null -w '%{size_download}\n' "http://127.0.0.1:$3$u"; done <"$l" |
    awk '{s+=$1} END {print s+0}')
  for u in "$(head -1 "$l")" "$(tail -1 "$l")"; do
    errs=$((errs + $(decode_errors "$3" "$u" "${4:-}")))
  done
  awk -v l="$1" -v s="$2" -v n="$n" -v b="$bytes" -v e="$errs" \
    'BEGIN {printf "| %s | %s | %d | %.2f | %d |\n", l, s, n, b / 1048576, e}'
}
check ts casterpak $cp_port
check ts nginx-vod $ng_port
check v casterpak $cp_port "$(list $cp_port "/cmaf/$file/index_0_v.m3u8" "" init)"
check v nginx-vod $ng_port "$(list $ng_port "$mpd" video init)"
check a casterpak $cp_port "$(list $cp_port "/cmaf/$file/index_0_a.m3u8" "" init)"
check a nginx-vod $ng_port "$(list $ng_port "$mpd" audio init)"
for l in ts v a; do
  if [ "$(wc -l <"$tmp/$l-casterpak")" != "$(wc -l <"$tmp/$l-nginx-vod")" ]; then
    echo "WARNING: segment counts differ for $l: casterpak $(wc -l <"$tmp/$l-casterpak"), nginx-vod $(wc -l <"$tmp/$l-nginx-vod")"
  fi
done
echo

echo "### cold segments over HTTP (60 s 720p file, no caches, wrk -t2 -c16 -d10s, load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "| format | server | round | requests/s | MB/s |"
echo "|---|---|---:|---:|---:|"
: >"$tmp/results"
run() { # format server port round
  VOD_URLS="$tmp/$1-$2" wrk -t2 -c16 -d10s -s bench/vod_urls.lua "http://127.0.0.1:$3" >"$tmp/wrk.out"
  awk -v f="$1" -v s="$2" -v r="$4" '
    /Requests\/sec/ {q=$2}
    /Transfer\/sec/ {v=$2; if (v ~ /GB/) {sub("GB","",v); v*=1024} else if (v ~ /MB/) {sub("MB","",v)} else if (v ~ /KB/) {sub("KB","",v); v/=1024}; m=v}
    /Non-2xx/ {bad=$NF}
    /Socket errors/ {err=$0}
    END {
      printf "| %s | %s | %d | %.0f | %.1f |\n", (f == "ts" ? "TS" : "fMP4"), s, r, q, m
      printf "%s %s %d %f %f\n", f, s, r, q, m >> "'"$tmp/results"'"
      if (bad != "" || err != "") printf "WARNING: %s %s round %d: %s non-2xx, %s\n", f, s, r, bad, err > "/dev/stderr"
    }' "$tmp/wrk.out"
}
for r in $(seq "$ROUNDS"); do
  for f in ts fmp4; do
    if [ $((r % 2)) -eq 1 ]; then
      run "$f" casterpak $cp_port "$r"; run "$f" nginx-vod $ng_port "$r"
    else
      run "$f" nginx-vod $ng_port "$r"; run "$f" casterpak $cp_port "$r"
    fi
  done
done
echo
echo "### medians of $ROUNDS rounds (load $(cut -d' ' -f1-3 /proc/loadavg))"
python3 - "$tmp/results" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
def med(f, s, i):
    return statistics.median(float(r[i]) for r in rows if r[0] == f and r[1] == s)
print("| format | server | requests/s | MB/s |")
print("|---|---|---:|---:|")
for f in ("ts", "fmp4"):
    for s in ("casterpak", "nginx-vod"):
        print(f"| {'TS' if f == 'ts' else 'fMP4'} | {s} | {med(f, s, 3):.0f} | {med(f, s, 4):.1f} |")
print()
print("| format | casterpak / nginx-vod, segments/s (median) | per round |")
print("|---|---:|---|")
for f in ("ts", "fmp4"):
    per = []
    for r in sorted({int(x[2]) for x in rows}):
        c = [float(x[3]) for x in rows if x[0] == f and x[1] == "casterpak" and int(x[2]) == r]
        n = [float(x[3]) for x in rows if x[0] == f and x[1] == "nginx-vod" and int(x[2]) == r]
        per.append(f"{c[0] / n[0]:.2f}")
    print(f"| {'TS' if f == 'ts' else 'fMP4'} | {med(f, 'casterpak', 3) / med(f, 'nginx-vod', 3):.2f} x | {', '.join(per)} |")
PY
if [ -s "$tmp/nginx/logs/error.log" ]; then
  echo "WARNING: nginx error log:" >&2
  tail -20 "$tmp/nginx/logs/error.log" >&2
fi
