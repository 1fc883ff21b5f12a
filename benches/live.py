#!/usr/bin/python3
"""CPU of the live view per viewer, and the time from a WHEP request to the first picture.

One 1080p30 H.264 camera (tests/fixtures/rtsp_server.py looping cam1080.mp4: 4 Mbit/s, a key
frame every 60 frames = 2 s) feeds one vasd with the live view on. Then:

  CPU       vasd's user+system CPU over the window with 0, then N viewers (default 1, 10, 25).
            The viewers are aiortc clients (tests/live_support/whep_client.py) in one process,
            in --count-only mode: ICE, DTLS, SRTP and the jitter buffer run, the H.264 decode
            does not, so the clients leave the two cores to vasd. The frames they complete are
            counted to show every viewer really gets the stream.
  first     time from a viewer's WHEP POST to its first decoded frame (a decoding client),
  frame     several trials one after the other, printed beside the camera's GOP: an RTSP
            camera cannot be asked for a key frame, so a viewer waits for the next one (the
            mean wait is half a GOP plus the connection setup).

Needs a release vasd (cargo build --release) and the Python of tests/live_support (made
here like the tests do if missing: <target>/live-venv from requirements.txt).

Usage: benches/live.py [--viewers 1,10,25] [--seconds 30] [--trials 8] [--vasd PATH]
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from benchlib import ROOT, cpu_seconds, free_port, start_rtsp

CLIENT = os.path.join(ROOT, "tests/live_support/whep_client.py")


def venv_python(target):
    venv = os.path.join(target, "live-venv")
    python = os.path.join(venv, "bin/python")
    requirements = os.path.join(ROOT, "tests/live_support/requirements.txt")
    stamp = os.path.join(venv, "vas-requirements.txt")
    wanted = open(requirements).read()
    if not os.path.exists(stamp) or open(stamp).read() != wanted:
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--clear", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--only-binary=:all:",
                        "-r", requirements], check=True)
        with open(stamp, "w") as f:
            f.write(wanted)
    return python


def start_server(media):
    return start_rtsp(media, [("cam", "cam1080.mp4")])


def live_status(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/cameras", timeout=5) as r:
        return next(c for c in json.load(r) if c["id"] == "cam").get("live", {})


def wait_for(what, cond, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except OSError:  # vasd's API not up yet
            pass
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


class Client:
    """whep_client.py in the background, its JSON lines collected."""

    def __init__(self, python, url, args):
        self.proc = subprocess.Popen([python, CLIENT, url] + args, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.events = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                pass

    def frames(self):
        progress = [e for e in self.events if e["event"] == "progress"]
        return progress[-1]["frames"] if progress else []

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def measure_viewers(python, url, port, pid, n, warmup, seconds):
    client = Client(python, url, ["--viewers", str(n), "--count-only", "--hold",
                                  "--timeout", str(warmup + seconds + 120)])
    try:
        wait_for(f"{n} viewers receiving",
                 lambda: len(client.frames()) == n and min(client.frames()) > 0)
        time.sleep(warmup)
        f0, c0, t0 = sum(client.frames()), cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        f1, c1, t1 = sum(client.frames()), cpu_seconds(pid), time.monotonic()
        refused = [e for e in client.events if e["event"] == "refused"]
        if refused:
            sys.exit(f"viewers refused: {refused}")
    finally:
        client.stop()
    wait_for("the viewers to leave", lambda: live_status(port).get("viewers") == 0)
    return (c1 - c0) / (t1 - t0), (f1 - f0) / (t1 - t0) / n


def first_frame_ms(python, url, port):
    client = Client(python, url, ["--frames", "1", "--timeout", "30"])
    client.proc.wait(60)
    time.sleep(0.2)
    first = [e for e in client.events if e["event"] == "first_frame"]
    posted = [e for e in client.events if e["event"] == "answered"]
    wait_for("the viewer to leave", lambda: live_status(port).get("viewers") == 0)
    if not first:
        sys.exit(f"no frame decoded: {client.events}")
    return first[0]["ms"], posted[0]["post_ms"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--viewers", default="1,10,25")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--vasd", default=os.path.join(ROOT, "target/release/vasd"))
    ap.add_argument("--target", default=os.path.join(ROOT, "target"))
    a = ap.parse_args()
    counts = [int(n) for n in a.viewers.split(",")]
    media = os.path.join(a.target, "bench-media")
    subprocess.run(["bash", os.path.join(ROOT, "tests/fixtures/make_media.sh"), media],
                   check=True, stdout=subprocess.DEVNULL)
    python = venv_python(a.target)

    server, rtsp_port = start_server(media)
    tmp = tempfile.TemporaryDirectory()
    port = free_port()
    cfg = os.path.join(tmp.name, "vas.toml")
    with open(cfg, "w") as f:
        f.write(f'[server]\nlisten = "127.0.0.1:{port}"\n[live]\nmax_viewers = {max(counts)}\n'
                f'[[camera]]\nid = "cam"\nurl = "rtsp://127.0.0.1:{rtsp_port}/cam"\n')
    env = dict(os.environ, AI_FRAME_EXPORT_ENABLED="false")
    vasd = subprocess.Popen([a.vasd, "--config", cfg, "--log-level", "warn"], env=env)
    url = f"http://127.0.0.1:{port}/whep/cam"
    try:
        wait_for("the camera in the live view",
                 lambda: live_status(port).get("gop_ms") and live_status(port).get(
                     "profile_level_id"))
        print(f"live view CPU, one 1080p30 H.264 camera (4 Mbit/s), vasd {a.vasd}, "
              f"{a.seconds:.0f} s per row; viewers count frames, they do not decode")
        print(f"{'viewers':>8} {'vasd CPU % of a core':>21} {'per viewer':>11} "
              f"{'frames/s per viewer':>20}")
        time.sleep(a.warmup)
        c0 = cpu_seconds(vasd.pid)
        time.sleep(a.seconds)
        idle = (cpu_seconds(vasd.pid) - c0) / a.seconds
        print(f"{0:>8} {idle * 100:>21.1f} {'-':>11} {'-':>20}")
        for n in counts:
            cpu, fps = measure_viewers(python, url, port, vasd.pid, n, a.warmup, a.seconds)
            print(f"{n:>8} {cpu * 100:>21.1f} {(cpu - idle) * 100 / n:>11.2f} {fps:>20.1f}",
                  flush=True)

        gop_ms = live_status(port)["gop_ms"]
        trials = []
        for _ in range(a.trials):
            # Join at a random point of the GOP, as real viewers do; back-to-back trials
            # would otherwise all land at about the same phase.
            time.sleep(random.uniform(0, gop_ms / 1000))
            trials.append(first_frame_ms(python, url, port))
        frames = sorted(t[0] for t in trials)
        posts = sorted(t[1] for t in trials)
        print(f"\ntime from WHEP POST to the first decoded frame ({a.trials} viewers one after "
              f"the other, decoding aiortc client)")
        print(f"{'GOP (ms)':>9} {'first frame min':>16} {'median':>8} {'max':>8} "
              f"{'POST answered (median)':>23}")
        print(f"{gop_ms:>9} {frames[0]:>16.0f} {statistics.median(frames):>8.0f} "
              f"{frames[-1]:>8.0f} {statistics.median(posts):>23.1f}")
    finally:
        vasd.terminate()
        vasd.wait()
        server.kill()
        server.wait()
        tmp.cleanup()


if __name__ == "__main__":
    main()
