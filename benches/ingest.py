#!/usr/bin/python3
"""CPU cost of RTSP ingest: vasd against the ffmpeg CLI on the same streams, in one run.

For each camera count N, the same RTSP server (tests/fixtures/rtsp_server.py, files looped
without re-encoding) serves N 1080p30 mounts. Then, one after the other:
  vasd      one process, N cameras, record/live/export off
  ffmpeg    N processes of `ffmpeg -rtsp_transport tcp -i URL -c copy -f null -`
Each side warms up, then its user+system CPU time is read from /proc over the window. The
figure printed is CPU seconds per camera-minute, and the ratio vasd / ffmpeg (goal <= 1.0).
Passthrough work is tiny, so the window is long and the counts are several cameras.

Usage: benches/ingest.py [--cameras 1,8] [--seconds 60] [--vasd target/release/vasd]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / TICK


def start_server(media, n):
    args = ["/usr/bin/python3", os.path.join(ROOT, "tests/fixtures/rtsp_server.py"), "--port", "0"]
    for i in range(n):
        args += ["--mount", f"cam{i}={os.path.join(media, 'cam1080.mp4')}"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().split()
    if len(line) != 2 or line[0] != "READY":
        proc.kill()
        sys.exit("the RTSP server did not start")
    return proc, int(line[1])


def api_packets(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/cameras", timeout=5) as r:
        return sum(c["packets"] for c in json.load(r))


def measure(pids, warmup, seconds):
    time.sleep(warmup)
    before = sum(cpu_seconds(p) for p in pids)
    time.sleep(seconds)
    return sum(cpu_seconds(p) for p in pids) - before


def run_vasd(vasd, urls, warmup, seconds):
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        cfg = os.path.join(tmp, "vas.toml")
        with open(cfg, "w") as f:
            f.write(f'[server]\nlisten = "127.0.0.1:{port}"\n')
            for i, url in enumerate(urls):
                f.write(f'[[camera]]\nid = "cam{i}"\nurl = "{url}"\n')
        env = dict(os.environ, AI_FRAME_EXPORT_ENABLED="false")
        proc = subprocess.Popen([vasd, "--config", cfg, "--log-level", "warn"], env=env)
        try:
            time.sleep(warmup)
            p0 = api_packets(port)
            cpu = measure([proc.pid], 0, seconds)
            packets = api_packets(port) - p0
        finally:
            proc.terminate()
            proc.wait()
    return cpu, packets


def run_ffmpeg(urls, warmup, seconds):
    procs = [
        subprocess.Popen(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", url,
             "-c", "copy", "-f", "null", "-"],
            stdout=subprocess.DEVNULL,
        )
        for url in urls
    ]
    try:
        cpu = measure([p.pid for p in procs], warmup, seconds)
        alive = sum(p.poll() is None for p in procs)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
    if alive != len(procs):
        sys.exit(f"{len(procs) - alive} ffmpeg process(es) died during the run")
    return cpu


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cameras", default="1,8")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--vasd", default=os.path.join(ROOT, "target/release/vasd"))
    ap.add_argument("--media", default=os.path.join(ROOT, "target/bench-media"))
    a = ap.parse_args()
    subprocess.run(["bash", os.path.join(ROOT, "tests/fixtures/make_media.sh"), a.media],
                   check=True, stdout=subprocess.DEVNULL)

    print(f"ingest CPU, 1080p30 H.264 over RTSP/TCP, {a.seconds:.0f} s per side, "
          f"CPU seconds per camera-minute (lower is better)")
    print(f"{'cameras':>7} {'vasd':>10} {'ffmpeg -c copy':>15} {'ratio':>7} {'vasd fps/cam':>13}")
    for n in [int(x) for x in a.cameras.split(",")]:
        server, port = start_server(a.media, n)
        try:
            urls = [f"rtsp://127.0.0.1:{port}/cam{i}" for i in range(n)]
            vasd_cpu, packets = run_vasd(a.vasd, urls, a.warmup, a.seconds)
            ffmpeg_cpu = run_ffmpeg(urls, a.warmup, a.seconds)
        finally:
            server.terminate()
            server.wait()
        per = 60 / a.seconds / n
        v, f = vasd_cpu * per, ffmpeg_cpu * per
        fps = packets / a.seconds / n
        print(f"{n:>7} {v:>10.3f} {f:>15.3f} {v / f if f else float('nan'):>7.2f} {fps:>13.1f}")


if __name__ == "__main__":
    main()
