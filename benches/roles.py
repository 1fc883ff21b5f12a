#!/usr/bin/python3
"""What decoding for the models costs, by the way the export is fed; how many cameras a host
carries in each way; and passthrough recording at scale.

Each camera is a 1080p30 4 Mbit/s H.264 main stream (GOP 2 s) with a 640x360 30 fps H.264
substream (GOP 1 s), both served by the RTSP fixture from memory. For N cameras, one after
the other on the same streams, CPU seconds per camera-minute over the window:

  (a) export every frame of the main stream      url = main, record + live + export
  (b) export the substream                       main records and is live, substream exports
  (c) export key frames of the main stream       as (a), export_decode = "key_frames"
  (d) Frigate's detect stream, the same work     ffmpeg -i SUB -r 5 -f rawvideo -pix_fmt yuv420p
      without recording or live

Capacity is what two cores carry at 80% load at the measured cost per camera (an estimate
from the N-camera figure, which is linear in N: field notes). The scale run records 64
720p30 2 Mbit/s cameras (no export) against 64 `ffmpeg -c copy -f segment` processes, CPU
and resident memory side by side.

Usage: benches/roles.py [--cameras 1,8] [--seconds 30] [--scale 64]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import ROOT, free_port, rss_bytes
from cpu import cameras_json, ffmpeg, run_baseline, segment_cmds, start_server, window

MAIN, SUB = "cam1080.mp4", "cam_aac.mp4"


def camera_toml(i, port, mode):
    main = f"rtsp://127.0.0.1:{port}/main{i}"
    sub = f"rtsp://127.0.0.1:{port}/sub{i}"
    t = f'[[camera]]\nid = "cam{i}"\nurl = "{main}"\nrecord = true\n'
    if mode == "key":
        t += 'export_decode = "key_frames"\n'
    if mode == "sub":
        t += f'roles = ["record", "live"]\n[camera.substream]\nurl = "{sub}"\nroles = ["export"]\n'
    if mode == "record":
        t += "export = false\n"
    return t


def run_vasd(vasd, n, port, mode, tmp, warmup, seconds):
    """CPU and resident memory of vasd over the window, and exported frames/s per camera."""
    api = free_port()
    cfg = os.path.join(tmp, "vas.toml")
    with open(cfg, "w") as f:
        f.write(f'[server]\nlisten = "127.0.0.1:{api}"\n')
        f.write(f'[record]\ndir = "{tmp}/rec"\nsegment_seconds = 60\n')
        f.write(f'[export]\nenabled = {"false" if mode == "record" else "true"}\n')
        f.write(f'shm_dir = "/dev/shm/vas-roles-{os.getpid()}"\n')
        for i in range(n):
            f.write(camera_toml(i, port, mode))
    proc = subprocess.Popen([vasd, "--config", cfg, "--log-level", "warn"],
                            stdout=subprocess.DEVNULL)
    try:
        time.sleep(warmup)

        def exported():
            total = 0
            for c in cameras_json(api):
                for s in (c, c.get("substream") or {}):
                    total += (s.get("export") or {}).get("frames_exported", 0)
            return total

        e0 = exported()
        cpu = window([proc.pid], seconds)
        rate = (exported() - e0) / seconds / n
        rss = rss_bytes(proc.pid)
    finally:
        proc.terminate()
        proc.wait()
    return cpu, rate, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cameras", default="1,8")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=6)
    ap.add_argument("--scale", type=int, default=64, help="0 skips the scale run")
    ap.add_argument("--vasd", default=os.path.join(ROOT, "target/release/vasd"))
    ap.add_argument("--media", default=os.path.join(ROOT, "target/bench-media"))
    a = ap.parse_args()
    os.environ.pop("AI_FRAME_EXPORT_ENABLED", None)
    subprocess.run(["bash", os.path.join(ROOT, "tests/fixtures/make_media.sh"), a.media],
                   check=True, stdout=subprocess.DEVNULL)
    print(f"main 1080p30 4 Mbit/s GOP 2 s + sub 640x360 30 fps, RTSP/TCP, {a.seconds:.0f} s "
          "windows; CPU seconds per camera-minute (lower is better)")
    for n in [int(x) for x in a.cameras.split(",")]:
        mounts = [(f"main{i}", MAIN) for i in range(n)] + [(f"sub{i}", SUB) for i in range(n)]
        server, port = start_server(a.media, mounts)
        tmp = tempfile.mkdtemp(prefix="vas-roles-")
        per = 60 / a.seconds / n
        try:
            cost = {}
            for mode, label in [("all", "(a) export all of main"), ("sub", "(b) export the substream"),
                                ("key", "(c) export main key frames")]:
                cpu, rate, _ = run_vasd(a.vasd, n, port, mode, tmp, a.warmup, a.seconds)
                cost[mode] = cpu * per
                print(f"x{n:<3} {label:<34} {cost[mode]:7.3f}  ({rate:5.1f} frames/s per camera)")
            frigate = [ffmpeg(f"rtsp://127.0.0.1:{port}/sub{i}", "-an", "-r", "5", "-f", "rawvideo",
                              "-pix_fmt", "yuv420p", "-") for i in range(n)]
            d = run_baseline(frigate, a.warmup, a.seconds) * per
            print(f"x{n:<3} {'(d) ffmpeg -i SUB -r 5 rawvideo':<34} {d:7.3f}")
            print(f"     ratios: b/a {cost['sub'] / cost['all']:.2f}  c/a {cost['key'] / cost['all']:.2f}"
                  f"  b/d {cost['sub'] / d:.2f}")
            print("     cameras with record + live + export on 2 cores at 80% (estimate): "
                  + "  ".join(f"{m} {int(0.8 * 2 * 60 / cost[m])}" for m in ("all", "sub", "key")))
        finally:
            server.terminate()
            server.wait()
            shutil.rmtree(tmp, ignore_errors=True)

    if a.scale:
        n = a.scale
        server, port = start_server(a.media, [(f"main{i}", "cam720.mp4") for i in range(n)])
        tmp = tempfile.mkdtemp(prefix="vas-scale-")
        try:
            cpu, _, rss = run_vasd(a.vasd, n, port, "record", tmp, a.warmup, a.seconds)
            urls = [f"rtsp://127.0.0.1:{port}/main{i}" for i in range(n)]
            cmds = segment_cmds(urls, tmp, ["-c", "copy"])
            procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for c in cmds]
            try:
                time.sleep(a.warmup)
                base = window([p.pid for p in procs], a.seconds)
                base_rss = sum(rss_bytes(p.pid) for p in procs)
            finally:
                for p in procs:
                    p.terminate()
                for p in procs:
                    p.wait()
            per = 60 / a.seconds / n
            print(f"x{n} 720p30 2 Mbit/s recorded: vasd {cpu * per:.3f} CPU s/camera-min, "
                  f"{rss / 2**20:.0f} MiB; ffmpeg -f segment {base * per:.3f}, "
                  f"{base_rss / 2**20:.0f} MiB; ratios CPU {cpu / base:.2f} memory {rss / base_rss:.2f}")
        finally:
            server.terminate()
            server.wait()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
