#!/usr/bin/env bash
# The main job on one machine, from a clean clone: installs what is missing (Debian 12), builds,
# starts three RTSP cameras served by GStreamer (two synthetic, made by x264, and OpenCV's
# vtest.avi, real pedestrian footage, re-encoded to H.264), vasd with recording, live view and
# frame export, and ruth with the example model on every camera and the people model
# (vas-model-people, OpenCV's HOG person detector) on the footage; prints the viewer URL and
# then the event stream until Ctrl-C: motion events as JSON, people events one short line each
# (the full JSON of both stays on ruth's event socket).
#
# Usage: bash packaging/demo.sh [--seconds N] [--port P]
#   --seconds N   stop by itself after N seconds (default: run until Ctrl-C)
#   --port P      API and viewer port (default 8080)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

seconds=0
port=8080
while (($#)); do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds N] [--port P]" >&2; exit 2 ;;
  esac
done

bash packaging/setup-debian.sh
echo "demo: building (the first build compiles mediasoup's worker: about 5 minutes)"
cargo build --release --workspace --bins
target="${CARGO_TARGET_DIR:-$repo/target}"
bin="$target/release"

work="$target/demo"
media="$work/media"
shm="/dev/shm/vas-demo"
mkdir -p "$work/recordings"
# Also converts vtest.avi (from opencv-doc) to vtest.mp4 on the first run, then keeps it.
bash tests/fixtures/make_media.sh "$media" >/dev/null
[ -s "$media/vtest.mp4" ] || { echo "demo: $media/vtest.mp4 was not made (is opencv-doc installed?)" >&2; exit 1; }

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# The cameras: files looped in real time without re-encoding.
exec {server_out}< <(exec /usr/bin/python3 tests/fixtures/rtsp_server.py --port 0 \
  --mount front="$media/cam720.mp4" --mount yard="$media/cam480_yuvj.mp4" \
  --mount street="$media/vtest.mp4" 2>"$work/rtsp.log")
pids+=($!)
read -r ready rtsp_port <&"$server_out"
[ "$ready" = READY ] || { echo "demo: the RTSP server did not start; see $work/rtsp.log" >&2; exit 1; }

cat >"$work/vas.toml" <<EOF
[server]
listen = "127.0.0.1:$port"

[export]
enabled = true
shm_dir = "$shm"

[record]
dir = "$work/recordings"
segment_seconds = 60
keep_days = 1

[[camera]]
id = "front"
url = "rtsp://127.0.0.1:$rtsp_port/front"
record = true
live = true

[[camera]]
id = "yard"
url = "rtsp://127.0.0.1:$rtsp_port/yard"
record = true
live = true

[[camera]]
id = "street"
url = "rtsp://127.0.0.1:$rtsp_port/street"
record = true
live = true
EOF
"$bin/vasd" --config "$work/vas.toml" 2>"$work/vasd.log" &
pids+=($!)

for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$port/healthz" >/dev/null || {
  echo "demo: vasd did not start; its log:" >&2; cat "$work/vasd.log" >&2; exit 1; }

# The example model (a motion score and mean luma per region, computed from the pixels) and
# Ruth routing frames to it: front at 5 fps, yard at 2 fps, street at 5 fps; the people model
# (about 60 ms of CPU per 768x576 frame) on street at 2 fps.
run="$work/run"
mkdir -p "$run"
"$bin/vas-model-example" --socket "$run/motion.sock" 2>"$work/model.log" &
pids+=($!)
PYTHONPATH="$repo/python" "$repo/python/vas-model-people" --socket "$run/people.sock" \
  2>"$work/people.log" &
pids+=($!)
cat >"$work/ruth.toml" <<EOF
[export]
root = "$shm"

[events]
socket = "$run/ruth-events.sock"
stdout = true

[status]
socket = "$run/ruth-status.sock"

[[model]]
id = "motion"
socket = "$run/motion.sock"

[[subscription]]
camera = "front"
model = "motion"
fps = 5

[[subscription]]
camera = "yard"
model = "motion"
fps = 2

[[model]]
id = "people"
socket = "$run/people.sock"

[[subscription]]
camera = "street"
model = "motion"
fps = 5

[[subscription]]
camera = "street"
model = "people"
fps = 2
EOF

cat <<EOF

  Viewer (live video):  http://127.0.0.1:$port/
  Camera status (JSON): http://127.0.0.1:$port/api/cameras
  Recordings:           $work/recordings
  Frame export:         $bin/vas-frames stats --root $shm
  Ruth status:          $bin/ruth --config $work/ruth.toml status
  Logs:                 $work/{vasd,ruth,model,people,rtsp}.log
  Full events (JSON):   python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect("$run/ruth-events.sock"); [sys.stdout.write(l.decode()) for l in s.makefile("rb")]'

  Events from Ruth follow: motion results as JSON lines, people results one short line each
  (camera, time, number of people, boxes as x,y wxh); Ctrl-C stops everything.

EOF

# Ruth's standard output through a filter that shortens the people model's lines; process
# substitution keeps ruth's own pid in $! for the cleanup.
"$bin/ruth" --config "$work/ruth.toml" 2>"$work/ruth.log" > >(exec /usr/bin/python3 -u -c '
import json, sys
for line in sys.stdin:
    try:
        e = json.loads(line)
    except ValueError:
        sys.stdout.write(line)
        continue
    r = e.get("result")
    if e.get("model") != "people" or not isinstance(r, dict):
        sys.stdout.write(line)
        continue
    boxes = " ".join("%d,%d %dx%d" % (p["x"], p["y"], p["w"], p["h"]) for p in r["people"])
    print("%-8s %s  %d people  %s" % (e["camera"], e["time"][11:23], r["count"], boxes))
') &
pids+=($!)

if ((seconds > 0)); then
  sleep "$seconds"
else
  while true; do sleep 3600; done
fi
