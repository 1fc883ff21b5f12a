#!/usr/bin/env bash
# The main job on one machine, from a clean clone: installs what is missing (Debian 12), builds,
# starts two synthetic RTSP cameras (H.264 made by x264, served by GStreamer), vasd with
# recording, live view and frame export, and ruth with the example model; prints the viewer URL
# and then the event stream until Ctrl-C.
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
bash tests/fixtures/make_media.sh "$media" >/dev/null

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# The cameras: files looped in real time without re-encoding.
exec {server_out}< <(exec /usr/bin/python3 tests/fixtures/rtsp_server.py --port 0 \
  --mount front="$media/cam720.mp4" --mount yard="$media/cam480_yuvj.mp4" 2>"$work/rtsp.log")
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
# Ruth routing frames to it: front at 5 fps, yard at 2 fps.
run="$work/run"
mkdir -p "$run"
"$bin/vas-model-example" --socket "$run/motion.sock" 2>"$work/model.log" &
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
EOF

cat <<EOF

  Viewer (live video):  http://127.0.0.1:$port/
  Camera status (JSON): http://127.0.0.1:$port/api/cameras
  Recordings:           $work/recordings
  Frame export:         $bin/vas-frames stats --root $shm
  Ruth status:          $bin/ruth --config $work/ruth.toml status
  Logs:                 $work/{vasd,ruth,model,rtsp}.log

  Events from Ruth (one JSON line per model result) follow; Ctrl-C stops everything.

EOF

"$bin/ruth" --config "$work/ruth.toml" 2>"$work/ruth.log" &
pids+=($!)

if ((seconds > 0)); then
  sleep "$seconds"
else
  while true; do sleep 3600; done
fi
