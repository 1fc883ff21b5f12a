#!/usr/bin/env bash
# The Debian package as an operator meets it: builds the .deb, runs lintian (errors fail,
# warnings are listed), installs it with dpkg -i, checks the config, the man pages and the
# systemd units (systemd-analyze verify and security), runs the installed vasd, ruth, the
# example model, vas-frames and the Python reader as the vas user against a real RTSP
# server, then purges the package and checks that nothing is left behind but the vas user
# and group (Debian keeps system users).
#
# Also replays the system calls the installed vasd and ruth made (under strace) through the
# seccomp filters of their units, since the units themselves cannot be started here.
#
# Needs root (dpkg). Refuses to run where a package named vas is already installed.
# Usage: bash tests/package.sh   (after packaging/setup-debian.sh; part of tests/run.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

fail() {
  echo "package: FAIL: $*" >&2
  exit 1
}
step() { echo "package: $*"; }

[ "$(id -u)" -eq 0 ] || fail "needs root (dpkg -i, dpkg --purge)"
if dpkg-query -W -f='${Status}' vas 2>/dev/null | grep -q "installed"; then
  fail "a package named vas is installed on this machine; this test installs and purges it"
fi

step "building the .deb"
deb=$(bash packaging/build-deb.sh | tail -n 1)
[ -f "$deb" ] || fail "no .deb at '$deb'"

work=$(mktemp -d /tmp/vas-package.XXXXXX)
chmod 0755 "$work"
shm=/dev/shm/vas-package-test
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if dpkg-query -W -f='${Status}' vas 2>/dev/null | grep -q "installed"; then
    dpkg --purge vas >/dev/null 2>&1 || true
  fi
  rm -rf "$work" "$shm"
}
trap cleanup EXIT

# 1. lintian: errors fail the test, warnings are printed for the record.
step "lintian $(basename "$deb")"
if ! lintian --fail-on error "$deb" >"$work/lintian.txt" 2>&1; then
  cat "$work/lintian.txt" >&2
  fail "lintian reports errors"
fi
grep -E '^[EW]: ' "$work/lintian.txt" | sed 's/^/package:   lintian /' || step "lintian: no errors or warnings"

# 2. Install.
step "dpkg -i"
dpkg -i "$deb" >"$work/dpkg.txt" 2>&1 || {
  cat "$work/dpkg.txt" >&2
  fail "dpkg -i failed"
}
dpkg -L vas | sort >"$work/files.txt"
getent passwd vas >/dev/null || fail "the vas user was not created"
getent group vas >/dev/null || fail "the vas group was not created"
conffiles=$(dpkg-query -W -f='${Conffiles}' vas)
for f in /etc/vas/vas.toml /etc/vas/ruth.toml; do
  grep -q "$f" <<<"$conffiles" || fail "$f is not a conffile"
done
[ "$(stat -c %U:%G:%a /var/lib/vas/recordings)" = vas:vas:750 ] ||
  fail "/var/lib/vas/recordings is $(stat -c %U:%G:%a /var/lib/vas/recordings)"

/usr/bin/vasd --check-config /etc/vas/vas.toml || fail "vasd --check-config rejects the shipped vas.toml"
/usr/bin/ruth --check-config /etc/vas/ruth.toml || fail "ruth --check-config rejects the shipped ruth.toml"

# Every man page renders without a warning, with the command lintian uses.
pages=$(grep '^/usr/share/man/.*\.gz$' "$work/files.txt")
[ "$(wc -l <<<"$pages")" -eq 9 ] || fail "expected 9 man pages, got: $pages"
for page in $pages; do
  out=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null)
  [ -z "$out" ] || fail "man warnings for $page: $out"
done
for bin in vasd ruth vas-frames vas-model-example vas-model-people; do
  [ -x "/usr/bin/$bin" ] || fail "/usr/bin/$bin missing"
done
# The Python model runs from the installed module (Debian's python3-opencv is only
# recommended: --help needs none of it).
/usr/bin/vas-model-people --help >/dev/null || fail "vas-model-people --help fails"

# 3. The systemd units: verify, and the exposure score of their hardening.
units=(/usr/lib/systemd/system/vas.service /usr/lib/systemd/system/ruth.service)
step "systemd-analyze verify"
if ! systemd-analyze verify "${units[@]}" >"$work/verify.txt" 2>&1 || [ -s "$work/verify.txt" ]; then
  cat "$work/verify.txt" >&2
  fail "systemd-analyze verify complains"
fi
for unit in "${units[@]}"; do
  score=$(systemd-analyze security --offline=true "$unit" 2>/dev/null |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  [ -n "$score" ] || fail "no exposure score for $unit"
  step "systemd-analyze security $(basename "$unit"): exposure $score (goal <= 2.5)"
  awk -v s="$score" 'BEGIN { exit !(s <= 2.5) }' || fail "$(basename "$unit") exposure $score > 2.5"
done

# 4. The installed programs, run as the vas user, against a real RTSP server with two
# synthetic cameras (x264 through GStreamer).
step "running the installed binaries against the RTSP fixture"
exec {server_out}< <(exec /usr/bin/python3 tests/fixtures/rtsp_server.py --port 0 \
  --live front=640x480@15 --live yard=640x480@15 2>"$work/rtsp.log")
pids+=($!)
read -r ready rtsp_port <&"$server_out" || true
[ "${ready:-}" = READY ] || fail "the RTSP fixture did not start: $(cat "$work/rtsp.log")"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
install -d -o vas -g vas -m 0750 "$work/rec" "$work/run"
cat >"$work/vas.toml" <<EOF
[server]
listen = "127.0.0.1:$port"

[export]
enabled = true
shm_dir = "$shm"

[record]
dir = "$work/rec"
segment_seconds = 2

[[camera]]
id = "front"
url = "rtsp://127.0.0.1:$rtsp_port/front"
record = true

[[camera]]
id = "yard"
url = "rtsp://127.0.0.1:$rtsp_port/yard"
record = true
EOF
cat >"$work/ruth.toml" <<EOF
[export]
root = "$shm"

[events]
socket = "$work/run/events.sock"
stdout = true

[status]
socket = "$work/run/status.sock"

[[model]]
id = "motion"
socket = "$work/run/motion.sock"

[[subscription]]
camera = "front"
model = "motion"
fps = 5

[[subscription]]
camera = "yard"
model = "motion"
fps = 2
EOF
chmod 0644 "$work/vas.toml" "$work/ruth.toml"
# An array, not a function: a function run in the background is a subshell, so $! would be
# that subshell and a signal sent to it would never reach the program.
as_vas=(setpriv --reuid=vas --regid=vas --init-groups --)

# vasd and ruth run under strace, so that their system calls can be checked against the
# seccomp filters of their units afterwards (section 5): this container has no systemd to
# start the units. The strace log files belong to vas, which strace runs as.
for t in vasd ruth; do install -o vas -g vas -m 0640 /dev/null "$work/$t.strace"; done
traced() { # traced NAME: the pid of the program strace runs (its only child)
  local tracer=$1 child=""
  for _ in $(seq 50); do
    child=$(pgrep -P "$tracer" | head -n 1) && [ -n "$child" ] && break
    sleep 0.1
  done
  [ -n "$child" ] || fail "no child of strace $tracer"
  echo "$child"
}
"${as_vas[@]}" strace -f -qq -o "$work/vasd.strace" \
  /usr/bin/vasd --config "$work/vas.toml" 2>"$work/vasd.log" &
vasd_tracer=$!
pids+=("$vasd_tracer")
vasd_pid=$(traced "$vasd_tracer")
pids+=("$vasd_pid") # a tracer killed detaches: the program needs its own kill
api="http://127.0.0.1:$port"
wait_for() { # wait_for SECONDS WHAT COMMAND...
  local seconds=$1 what=$2
  shift 2
  for _ in $(seq $((seconds * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  fail "$what within ${seconds} s"
}
both_streaming() {
  curl -fs "$api/api/cameras" | python3 -c '
import json, sys
cams = {c["id"]: c for c in json.load(sys.stdin)}
ok = all(cams.get(i, {}).get("state") == "streaming"
         and (cams[i].get("export") or {}).get("frames_exported", 0) > 0 for i in ("front", "yard"))
sys.exit(0 if ok else 1)'
}
wait_for 30 "both cameras streaming and exporting" both_streaming
curl -fs "$api/metrics" >"$work/metrics.txt" || fail "GET /metrics failed"
for cam in front yard; do
  grep -q "^vas_packets_received_total{camera=\"$cam\"}" "$work/metrics.txt" ||
    fail "/metrics has no packet counter for $cam"
done
# Saved first: grep -q stops reading at its match, and curl, cut off, would fail the pipe.
curl -fs "$api/" -o "$work/viewer.html" || fail "GET / (the viewer page) failed"
grep -qi "whep" "$work/viewer.html" || fail "the viewer page at / does not mention WHEP"
grep -q "/api/recordings" "$work/viewer.html" || fail "the viewer page at / has no recordings"

# A WebRTC viewer (aiortc) of the installed vasd: video decoded from the live view.
venv="${CARGO_TARGET_DIR:-$repo/target}/live-venv"
if ! cmp -s "$venv/vas-requirements.txt" tests/live_support/requirements.txt; then
  venv="$work/venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
    -r tests/live_support/requirements.txt || fail "cannot install the WHEP client's packages"
fi
"$venv/bin/python" tests/live_support/whep_client.py "$api/whep/front" --frames 30 --timeout 60 \
  --delete >"$work/whep.jsonl" 2>"$work/whep.log" ||
  fail "no live video from the installed vasd: $(tail -n 3 "$work/whep.jsonl" "$work/whep.log")"
step "live view: $(grep -o '"sizes": [^]]*]]' "$work/whep.jsonl" | head -n 1), 30 frames decoded"

"${as_vas[@]}" /usr/bin/vas-model-example --socket "$work/run/motion.sock" 2>"$work/model.log" &
pids+=($!)
"${as_vas[@]}" strace -f -qq -o "$work/ruth.strace" \
  /usr/bin/ruth --config "$work/ruth.toml" >"$work/events.jsonl" 2>"$work/ruth.log" &
ruth_tracer=$!
pids+=("$ruth_tracer")
ruth_pid=$(traced "$ruth_tracer")
pids+=("$ruth_pid")
events_from_both() {
  python3 -c '
import json, sys
seen = set()
for line in open(sys.argv[1]):
    e = json.loads(line)
    if "motion" in json.dumps(e.get("result", e)):
        seen.add(e.get("camera"))
sys.exit(0 if {"front", "yard"} <= seen else 1)' "$work/events.jsonl"
}
wait_for 30 "ruth events with a motion result from both cameras" events_from_both
step "ruth: $(wc -l <"$work/events.jsonl") events, e.g. $(head -c 200 "$work/events.jsonl" | head -n 1)"

"${as_vas[@]}" /usr/bin/vas-frames stats --root "$shm" --once >"$work/stats.txt" 2>&1 ||
  fail "vas-frames stats: $(cat "$work/stats.txt")"
grep -q front "$work/stats.txt" && grep -q yard "$work/stats.txt" ||
  fail "vas-frames stats does not list both cameras: $(cat "$work/stats.txt")"

# The installed Python reader (from /usr/lib/python3/dist-packages, not the source tree).
(cd / && "${as_vas[@]}" /usr/bin/python3 -c '
import sys, vas_frames
assert vas_frames.__file__.startswith("/usr/lib/python3/dist-packages/"), vas_frames.__file__
r = vas_frames.ExportReader(sys.argv[1], "front")
for _ in range(50):
    if r.wait(timeout=1.0) is None:
        continue
    ref = r.latest()
    got = r.read(ref.slot, ref.sequence) if ref else None
    if got is not None:
        meta, y, uv = got
        assert y.shape == (480, 640) and uv.shape == (240, 320, 2), (y.shape, uv.shape)
        sys.exit(0)
sys.exit("no frame read")' "$shm") || fail "the installed Python reader could not read a frame"

wait_for 20 "a closed recording segment of front" \
  sh -c "find '$work/rec/front' -name '*.mp4' | grep -q ."
# Playback from the installed vasd (under strace too: its calls meet the filter check below).
curl -fs "$api/api/recordings/front" -o "$work/recordings.json" ||
  fail "GET /api/recordings/front failed"
start=$(/usr/bin/python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["spans"][0]["start_unix_ms"] / 1000)' "$work/recordings.json") ||
  fail "no span of front in /api/recordings/front: $(cat "$work/recordings.json")"
curl -fs "$api/api/recordings/front/video.mp4?start=$start&duration=2" -o "$work/clip.mp4" ||
  fail "GET /api/recordings/front/video.mp4 failed"
ffprobe -v error -show_entries stream=codec_name -of csv=p=0 "$work/clip.mp4" | grep -q h264 ||
  fail "the clip of front from the API is not playable H.264"
# A reload (the configuration is unchanged: nothing restarts) and a stop, as systemctl
# reload and stop do; strace exits with the status of the program it runs.
kill -HUP "$vasd_pid" "$ruth_pid"
sleep 1
kill -TERM "$ruth_pid"
wait "$ruth_tracer" || fail "ruth exited with $? on SIGTERM: $(tail -n 5 "$work/ruth.log")"
kill -TERM "$vasd_pid"
wait "$vasd_tracer" || fail "vasd exited with $? on SIGTERM: $(tail -n 5 "$work/vasd.log")"
seg=$(find "$work/rec/front" -name '*.mp4' | sort | head -n 1)
ffprobe -v error -show_entries stream=codec_name -of csv=p=0 "$seg" | grep -q h264 ||
  fail "$seg is not a playable H.264 file"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()

# 5. The seccomp filters of the units against the calls vasd and ruth made above. First a
# control that the check can fail: setpriv changes user and groups, which ~@privileged
# denies.
step "system calls against the units' filters"
strace -f -qq -o "$work/control.strace" setpriv --reuid=vas --regid=vas --clear-groups true
if /usr/bin/python3 tests/unit_sandbox.py /usr/lib/systemd/system/vas.service \
  "$work/control.strace" >"$work/control.txt"; then
  fail "the filter check passed a trace of setresuid/setgroups: $(cat "$work/control.txt")"
fi
for pair in vas.service:vasd ruth.service:ruth; do
  unit=${pair%%:*} prog=${pair##*:}
  if ! /usr/bin/python3 tests/unit_sandbox.py "/usr/lib/systemd/system/$unit" \
    "$work/$prog.strace" >"$work/$prog.sandbox.txt"; then
    cat "$work/$prog.sandbox.txt" >&2
    fail "$prog makes calls that $unit denies"
  fi
  step "  $unit: $(head -n 1 "$work/$prog.sandbox.txt" | sed 's/^[^:]*: [^:]*: //; s/:.*//'), none denied"
done

# 6. Purge: nothing of the package is left but the vas user and group.
step "dpkg --purge"
mkdir -p /run/vas /dev/shm/vas # what the running services would have made
dpkg --purge vas >"$work/purge.txt" 2>&1 || {
  cat "$work/purge.txt" >&2
  fail "dpkg --purge failed"
}
left=()
while read -r f; do
  [ -d "$f" ] && continue # shared directories (/usr/bin...) stay; our own are checked below
  [ -e "$f" ] && left+=("$f")
done <"$work/files.txt"
for d in /etc/vas /var/lib/vas /run/vas /dev/shm/vas /usr/share/doc/vas \
  /usr/lib/python3/dist-packages/vas_frames /usr/lib/python3/dist-packages/vas_model; do
  [ -e "$d" ] && left+=("$d")
done
((${#left[@]} == 0)) || fail "left after purge: ${left[*]}"
step "purge left only the vas user and group (kept by Debian practice)"
step "ok"
