#!/usr/bin/python3
"""Ruth dispatch cost and latency: 8 cameras x 3 models, release builds.

The cameras are a synthetic writer (crates/ruth/examples/synthetic_writer.rs: the frames
crate's SlotWriter publishing NV12 at a fixed rate, as vasd does after decoding), not vasd,
so that no decoding competes with Ruth for the CPU. Each of 3 example models
(vas-model-example --timing, one process each) subscribes to every camera, at 5, 10 and
15 fps by default: 24 subscriptions. After a warm-up, over the window:

  ruth CPU        user+system time of the ruth process (/proc/PID/stat), per 100
                  dispatched frames and as a share of one core
  dispatch        publish -> the model has read the request line: the model's
  latency         CLOCK_MONOTONIC at the read minus the frame's mono_ns, which the writer
                  stamps right before publishing (receive_latency_us in each result)
  fps accuracy    frames dispatched per subscription per second, against
                  min(fps, camera fps)

Usage: benches/ruth.py [--cameras 8] [--fps 5,10,15] [--camera-fps 30] [--size 640x360]
                       [--seconds 30] [--warmup 3] [--no-build]
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


def status(sock_path):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(sock_path)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data)


def wait_for_socket(path, proc, what):
    deadline = time.monotonic() + 20
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


class EventTap(threading.Thread):
    """Reads the events socket; keeps the receive latency of results in the window."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.recording = False
        self.latencies_us = []
        self.events = 0

    def run(self):
        for line in self.sock.makefile("rb"):
            if not self.recording:
                continue
            e = json.loads(line)
            self.events += 1
            us = e["result"].get("receive_latency_us")
            if us is not None:
                self.latencies_us.append(us)


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cameras", type=int, default=8)
    ap.add_argument("--fps", default="5,10,15", help="one maximum fps per model")
    ap.add_argument("--camera-fps", type=float, default=30)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    model_fps = [float(x) for x in a.fps.split(",")]

    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    rel = os.path.join(target, "release")
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "ruth", "-p", "vas-model", "--bins",
                        "--example", "synthetic_writer"], cwd=ROOT, check=True)

    work = tempfile.mkdtemp(prefix="ruth-bench-")
    shm = f"/dev/shm/ruth-bench-{os.getpid()}"
    procs = []
    try:
        writer = subprocess.Popen(
            [os.path.join(rel, "examples", "synthetic_writer"), "--root", shm, "--cameras",
             str(a.cameras), "--fps", str(a.camera_fps), "--size", a.size],
            stdout=subprocess.PIPE, text=True)
        procs.append(writer)
        if writer.stdout.readline().strip() != "READY":
            sys.exit("the synthetic writer did not start")

        cfg = [f'[export]\nroot = "{shm}"\n',
               f'[events]\nsocket = "{work}/events.sock"\nstdout = false\n',
               f'[status]\nsocket = "{work}/status.sock"\n']
        for i, fps in enumerate(model_fps):
            sock = f"{work}/m{i}.sock"
            m = subprocess.Popen([os.path.join(rel, "vas-model-example"), "--socket", sock,
                                  "--timing"], stderr=subprocess.DEVNULL)
            procs.append(m)
            wait_for_socket(sock, m, f"model m{i}")
            cfg.append(f'[[model]]\nid = "m{i}"\nsocket = "{sock}"\n')
            for c in range(a.cameras):
                cfg.append(f'[[subscription]]\ncamera = "cam{c}"\nmodel = "m{i}"\nfps = {fps}\n')
        with open(f"{work}/ruth.toml", "w") as f:
            f.write("\n".join(cfg))
        ruth = subprocess.Popen([os.path.join(rel, "ruth"), "--config", f"{work}/ruth.toml",
                                 "--log-level", "warn"], stdout=subprocess.DEVNULL)
        procs.append(ruth)
        wait_for_socket(f"{work}/status.sock", ruth, "ruth")
        tap = EventTap(f"{work}/events.sock")
        tap.start()

        time.sleep(a.warmup)
        s0, c0, t0 = status(f"{work}/status.sock"), cpu_seconds(ruth.pid), time.monotonic()
        tap.recording = True
        time.sleep(a.seconds)
        tap.recording = False
        s1, c1, t1 = status(f"{work}/status.sock"), cpu_seconds(ruth.pid), time.monotonic()
        if ruth.poll() is not None:
            sys.exit("ruth died during the run")
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)

    window = t1 - t0
    before = {(s["camera"], s["model"]): s for s in s0["subscriptions"]}
    rows = []
    for s in s1["subscriptions"]:
        b = before[(s["camera"], s["model"])]
        d = {k: s["counters"][k] - b["counters"][k] for k in s["counters"]}
        rows.append((s["model"], s["fps"], d))
    dispatched = sum(d["dispatched"] for _, _, d in rows)
    skipped = sum(d["skipped_busy"] + d["skipped_down"] + d["skipped_write"] for _, _, d in rows)
    cpu = c1 - c0
    lat = tap.latencies_us

    print(f"ruth: {a.cameras} cameras (synthetic writer, {a.size} NV12 at {a.camera_fps:g} fps) "
          f"x {len(model_fps)} models (vas-model-example) = {len(rows)} subscriptions, "
          f"{window:.0f} s window")
    print(f"  dispatched          {dispatched} frames ({dispatched / window:.1f}/s), "
          f"skipped {skipped}, results {tap.events}")
    print(f"  ruth CPU            {cpu:.3f} s = {100 * cpu / window:.2f}% of one core; "
          f"{1000 * cpu / dispatched * 100:.2f} ms per 100 dispatched frames"
          if dispatched else "  nothing dispatched")
    print(f"  dispatch latency    publish -> model read: p50 {percentile(lat, 50)} us, "
          f"p99 {percentile(lat, 99)} us, max {max(lat) if lat else float('nan')} us "
          f"({len(lat)} frames)")
    print("  fps accuracy        model  fps   want  delivered/s per subscription (min .. max)")
    for i, fps in enumerate(model_fps):
        got = [d["dispatched"] / window for m, _, d in rows if m == f"m{i}"]
        want = min(fps, a.camera_fps)
        print(f"                      m{i}   {fps:>5g} {want:>5g}  {min(got):.2f} .. {max(got):.2f}"
              f"  (worst {100 * (min(got) / want - 1):+.1f}% .. {100 * (max(got) / want - 1):+.1f}%)")


if __name__ == "__main__":
    main()
