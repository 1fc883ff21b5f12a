#!/usr/bin/python3
"""The people model on real footage: detector time against Ruth's cost, and event latency.

OpenCV's vtest.avi (768x576 at 10 fps, re-encoded to H.264 by tests/fixtures/make_media.sh)
is served by the RTSP fixture as 1 camera, then as 4 (the same file on 4 mounts), to a
release vasd exporting frames; ruth routes each camera to one vas-model-people process
(one connection and thread per camera) at 2 fps. Over the window, per frame:

  detector       CPU time of HOG detectMultiScale in the model (detector_cpu_us)
  dispatch       ruth's request written -> the result read back (latency_dispatch_ms):
                 the detector plus the model's frame read, socket and JSON
  ruth CPU       user+system time of the ruth process per dispatched frame (/proc counts
                 in ticks of 10 ms: the figure is +- one tick over the window's frames)
  capture ->     the frame's capture at vasd -> ruth's request written: decode, export
  dispatch       and ruth's gate, all before the model
  capture        the frame's capture (wall_ns, at vasd) -> the result at ruth
                 (latency_capture_ms): what a consumer of the events sees

Usage: benches/people.py [--seconds 30] [--warmup 5] [--fps 2] [--scale 1.2] [--no-build]
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of proc(5); fields[0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / TICK


def ruth_status(path):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data)


def wait_for_socket(path, proc, what, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} never listened on {path}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EventTap(threading.Thread):
    """Keeps the people events read from ruth's event socket while recording."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.recording = False
        self.events = []

    def run(self):
        for line in self.sock.makefile("rb"):
            if self.recording:
                self.events.append(json.loads(line))


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def run(cameras, a, rel, media, work):
    """One scenario: `cameras` cameras at a.fps each. Returns the row of figures."""
    shm = f"/dev/shm/people-bench-{os.getpid()}-{cameras}"
    procs = []
    try:
        args = [sys.executable, os.path.join(ROOT, "tests/fixtures/rtsp_server.py"), "--port", "0"]
        for c in range(cameras):
            args += ["--mount", f"street{c}={media}"]
        server = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(server)
        ready = server.stdout.readline().split()
        if not ready or ready[0] != "READY":
            sys.exit("the RTSP fixture did not start")
        rtsp_port = ready[1]

        http_port = free_port()
        cfg = [f'[server]\nlisten = "127.0.0.1:{http_port}"\n',
               f'[export]\nenabled = true\nshm_dir = "{shm}"\n']
        for c in range(cameras):
            cfg.append(f'[[camera]]\nid = "street{c}"\nurl = "rtsp://127.0.0.1:{rtsp_port}/street{c}"\n'
                       'record = false\nlive = false\n')
        with open(f"{work}/vas.toml", "w") as f:
            f.write("\n".join(cfg))
        vasd = subprocess.Popen([os.path.join(rel, "vasd"), "--config", f"{work}/vas.toml"],
                                stderr=subprocess.DEVNULL)
        procs.append(vasd)

        sock = f"{work}/people-{cameras}.sock"
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
        model = subprocess.Popen([os.path.join(ROOT, "python/vas-model-people"), "--socket", sock,
                                  "--scale", str(a.scale)], env=env, stderr=subprocess.DEVNULL)
        procs.append(model)
        wait_for_socket(sock, model, "vas-model-people")

        cfg = [f'[export]\nroot = "{shm}"\n',
               f'[events]\nsocket = "{work}/events.sock"\nstdout = false\n',
               f'[status]\nsocket = "{work}/status.sock"\n',
               f'[[model]]\nid = "people"\nsocket = "{sock}"\n']
        for c in range(cameras):
            cfg.append(f'[[subscription]]\ncamera = "street{c}"\nmodel = "people"\nfps = {a.fps}\n')
        with open(f"{work}/ruth.toml", "w") as f:
            f.write("\n".join(cfg))
        ruth = subprocess.Popen([os.path.join(rel, "ruth"), "--config", f"{work}/ruth.toml",
                                 "--log-level", "warn"], stdout=subprocess.DEVNULL)
        procs.append(ruth)
        wait_for_socket(f"{work}/status.sock", ruth, "ruth")
        tap = EventTap(f"{work}/events.sock")
        tap.start()

        time.sleep(a.warmup)
        s0, c0, t0 = ruth_status(f"{work}/status.sock"), cpu_seconds(ruth.pid), time.monotonic()
        tap.recording = True
        time.sleep(a.seconds)
        tap.recording = False
        s1, c1, t1 = ruth_status(f"{work}/status.sock"), cpu_seconds(ruth.pid), time.monotonic()
        for p, what in ((ruth, "ruth"), (vasd, "vasd"), (model, "vas-model-people")):
            if p.poll() is not None:
                sys.exit(f"{what} died during the run")
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait()
        shutil.rmtree(shm, ignore_errors=True)

    window = t1 - t0
    before = {s["camera"]: s["counters"] for s in s0["subscriptions"]}
    counts = {k: 0 for k in ("dispatched", "results", "skipped_busy", "model_errors")}
    for s in s1["subscriptions"]:
        for k in counts:
            counts[k] += s["counters"][k] - before[s["camera"]][k]
    ev = tap.events
    detector = [e["result"]["detector_cpu_us"] / 1000 for e in ev]
    dispatch = [e["latency_dispatch_ms"] for e in ev]
    capture = [e["latency_capture_ms"] for e in ev]
    people = [e["result"]["count"] for e in ev]
    return {
        "cameras": cameras,
        "window": window,
        "frames": len(ev),
        "per_camera_fps": counts["dispatched"] / window / cameras,
        "skipped_busy": counts["skipped_busy"],
        "errors": counts["model_errors"],
        "detector": (percentile(detector, 50), percentile(detector, 99)),
        "dispatch": (percentile(dispatch, 50), percentile(dispatch, 99)),
        "outside": (percentile([d - t for d, t in zip(dispatch, detector)], 50),
                    percentile([d - t for d, t in zip(dispatch, detector)], 99)),
        "ruth_cpu_ms": 1000 * (c1 - c0) / counts["dispatched"] if counts["dispatched"] else float("nan"),
        "capture": (percentile(capture, 50), percentile(capture, 99)),
        "to_dispatch": (percentile([c - d for c, d in zip(capture, dispatch)], 50),
                        percentile([c - d for c, d in zip(capture, dispatch)], 99)),
        "cpu_tick_ms": 1000 / TICK / counts["dispatched"] if counts["dispatched"] else float("nan"),
        "people": sum(people) / len(people) if people else float("nan"),
        "found": sum(1 for n in people if n) / len(people) if people else float("nan"),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--fps", type=float, default=2)
    ap.add_argument("--scale", type=float, default=1.2, help="vas-model-people --scale")
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()

    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    rel = os.path.join(target, "release")
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--bin", "vasd", "-p", "ruth", "--bins"],
                       cwd=ROOT, check=True)
    media_dir = os.path.join(target, "bench-media")
    subprocess.run(["bash", os.path.join(ROOT, "tests/fixtures/make_media.sh"), media_dir],
                   check=True, stdout=subprocess.DEVNULL)
    media = os.path.join(media_dir, "vtest.mp4")
    if not os.path.exists(media):
        sys.exit(f"{media} was not made: install opencv-doc (packaging/setup-debian.sh)")

    work = tempfile.mkdtemp(prefix="people-bench-")
    try:
        rows = [run(1, a, rel, media, work), run(4, a, rel, media, work)]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def pair(v, fmt="{:.1f}"):
        return f"{fmt.format(v[0])} / {fmt.format(v[1])}"

    print(f"vas-model-people (HOG, scale {a.scale}, 1 thread per camera) on vtest.avi 768x576 "
          f"10 fps, fps {a.fps:g} per camera, {a.seconds:g} s windows")
    print(f"  {'':34}" + "".join(f"{str(r['cameras']) + ' camera' + ('s' if r['cameras'] > 1 else ''):>18}" for r in rows))
    lines = [
        ("frames (results in the window)", lambda r: f"{r['frames']}"),
        ("delivered per camera, /s", lambda r: f"{r['per_camera_fps']:.2f}"),
        ("skipped busy / model errors", lambda r: f"{r['skipped_busy']} / {r['errors']}"),
        ("detector CPU ms p50 / p99", lambda r: pair(r["detector"])),
        ("dispatch->reply ms p50 / p99", lambda r: pair(r["dispatch"])),
        ("  of which not detector CPU", lambda r: pair(r["outside"])),
        ("ruth CPU ms per frame (+- 1 tick)", lambda r: f"{r['ruth_cpu_ms']:.2f} +- {r['cpu_tick_ms']:.2f}"),
        ("capture->dispatch ms p50 / p99", lambda r: pair(r["to_dispatch"], "{:.2f}")),
        ("capture->event ms p50 / p99", lambda r: pair(r["capture"])),
        ("people per frame (found in)", lambda r: f"{r['people']:.1f} ({100 * r['found']:.0f}%)"),
    ]
    for name, f in lines:
        print(f"  {name:34}" + "".join(f"{f(r):>18}" for r in rows))


if __name__ == "__main__":
    main()
