#!/bin/sh
# Makes the sample renditions served out of the box: one 12 s clip (moving test pattern
# with a timecode-like counter and a beeping 440 Hz tone) encoded as three H.264 + AAC
# renditions with aligned 2 s GOPs and B-frames, faststart (moov before mdat).
#
#   /i/clip_,360,540,720,p.mp4.csmil/master.m3u8   (media root = samples/)
#
# Usage: samples/make-samples.sh [out_dir]   (default: the folder of this script)
set -eu
out=${1:-$(dirname "$0")}
dur=12
for spec in 360:640:300k 540:960:600k 720:1280:1000k; do
  h=${spec%%:*}; rest=${spec#*:}; w=${rest%%:*}; br=${rest#*:}
  ffmpeg -nostdin -v error -y \
    -f lavfi -i "testsrc2=size=${w}x${h}:rate=25:duration=${dur}" \
    -f lavfi -i "sine=frequency=440:beep_factor=4:sample_rate=48000:duration=${dur}" \
    -map 0:v -map 1:a \
    -c:v libx264 -preset veryfast -profile:v high -b:v "$br" -maxrate "$br" -bufsize "$br" \
    -g 50 -keyint_min 50 -sc_threshold 0 -bf 2 -pix_fmt yuv420p \
    -c:a aac -b:a 64k -ac 2 \
    -movflags +faststart -map_metadata -1 -fflags +bitexact -flags:v +bitexact -flags:a +bitexact \
    "$out/clip_${h}p.mp4"
done
