#!/usr/bin/python3
"""CPU cost of vasd against the tools people use today, on the same streams, in one run.

For each camera count N, the RTSP fixture (tests/fixtures/rtsp_server.py: files looped from
memory without re-encoding; its own CPU is not counted) serves N mounts of a 1080p30 4 Mbit/s
H.264 file. Then, one after the other, each side runs on the same N streams, warms up, and
its user+system CPU time is read from /proc over the window:

  ingest   vasd (record, live, export off)   vs  N x ffmpeg -c copy -f null
  record   vasd recording 60 s segments      vs  N x ffmpeg -c copy -f segment (mp4)
  export   vasd decoding into the shm ring   vs  N x ffmpeg -pix_fmt nv12 -f null (decode only)
                                             and N x GStreamer rtspsrc..avdec_h264..NV12..shmsink

Real-camera kinds (640x360 files of tests/fixtures/make_media.sh):

  record-aac    H.264 + AAC 48 kHz, AAC kept     vs  N x ffmpeg -c:v copy -c:a copy -f segment
  record-pcma   H.264 + G.711 A-law 8 kHz,       vs  N x ffmpeg -c:v copy -c:a aac -f segment
                transcoded to AAC
  export-h265   H.265 decoded into the shm ring  vs  N x ffmpeg -pix_fmt nv12 -f null

Figures are CPU seconds per camera-minute (lower is better) and the ratio to each baseline.
Passthrough work is tiny, so windows are long and counts are several cameras.

Usage: benches/cpu.py [ingest|record|export|record-aac|record-pcma|export-h265 ...]
                     [--cameras 1,8] [--seconds 60]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import ROOT, cpu_seconds, free_port, start_rtsp

# Built by: cargo build --release -p frames --example wake_latency
WAKE_LATENCY = os.path.join(ROOT, "target/release/examples/wake_latency")


# mode -> (file served, what vasd does)
MEDIA = {
    "ingest": ("cam1080.mp4", "ingest"),
    "record": ("cam1080.mp4", "record"),
    "export": ("cam1080.mp4", "export"),
    "record-aac": ("cam_aac.mp4", "record"),
    "record-pcma": ("cam_pcma.mkv", "record"),
    "export-h265": ("cam_h265.mp4", "export"),
}


def start_server(media, mounts):
    """The RTSP fixture serving `mounts`, (name, file in media) pairs; returns it and its port."""
    return start_rtsp(media, mounts)


def window(pids, seconds):
    before = sum(cpu_seconds(p) for p in pids)
    time.sleep(seconds)
    return sum(cpu_seconds(p) for p in pids) - before


def cameras_json(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/cameras", timeout=5) as r:
        return json.load(r)


def run_vasd(vasd, urls, mode, tmp, warmup, seconds):
    """CPU of vasd over the window, and the per-camera rate of the work it did."""
    port = free_port()
    cfg = os.path.join(tmp, "vas.toml")
    with open(cfg, "w") as f:
        f.write(f'[server]\nlisten = "127.0.0.1:{port}"\n')
        f.write(f'[record]\ndir = "{tmp}/rec"\nsegment_seconds = 60\n')
        f.write(f'[export]\nshm_dir = "/dev/shm/vas-bench-{os.getpid()}"\n')
        for i, url in enumerate(urls):
            f.write(f'[[camera]]\nid = "cam{i}"\nurl = "{url}"\nlive = false\n')
            f.write(f'record = {"true" if mode == "record" else "false"}\n')
    env = dict(os.environ, AI_FRAME_EXPORT_ENABLED="true" if mode == "export" else "false")
    proc = subprocess.Popen([vasd, "--config", cfg, "--log-level", "warn"], env=env)
    try:
        time.sleep(warmup)
        key = "frames_exported" if mode == "export" else "packets"

        def count():
            cams = cameras_json(port)
            if mode == "export":
                return sum((c.get("export") or {}).get(key, 0) for c in cams)
            return sum(c[key] for c in cams)

        c0 = count()
        waker = None
        if mode == "export" and os.path.exists(WAKE_LATENCY):
            # A reader blocked on the futex of camera 0 for the whole window.
            waker = subprocess.Popen([WAKE_LATENCY, f"/dev/shm/vas-bench-{os.getpid()}", "cam0",
                                      str(int(seconds * 25))], stdout=subprocess.PIPE, text=True)
        cpu = window([proc.pid], seconds)
        rate = (count() - c0) / seconds / len(urls)
        note = None
        if waker is not None:
            out, _ = waker.communicate(timeout=30)
            note = f"reader on camera 0: {out.strip()}"
    finally:
        proc.terminate()
        proc.wait()
    return cpu, rate, note


def run_baseline(commands, warmup, seconds):
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for c in commands]
    try:
        time.sleep(warmup)
        cpu = window([p.pid for p in procs], seconds)
        alive = sum(p.poll() is None for p in procs)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
    if alive != len(procs):
        sys.exit(f"{len(procs) - alive} baseline process(es) died during the run: {commands[0]}")
    return cpu


def ffmpeg(url, *out):
    return ["ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", url, *out]


def segment_cmds(urls, tmp, codecs):
    cmds = []
    for i, u in enumerate(urls):
        d = os.path.join(tmp, f"ffseg{i}")
        os.makedirs(d, exist_ok=True)
        cmds.append(ffmpeg(u, *codecs, "-f", "segment", "-segment_time", "60",
                           "-segment_format", "mp4", os.path.join(d, "%05d.mp4")))
    return cmds


def baselines(mode, urls, tmp):
    """(name, one command per camera) of the tools vasd is compared with."""
    if mode == "record-aac":
        return [("ffmpeg -c:v copy -c:a copy -f segment",
                 segment_cmds(urls, tmp, ["-c:v", "copy", "-c:a", "copy"]))]
    if mode == "record-pcma":
        return [("ffmpeg -c:v copy -c:a aac -f segment",
                 segment_cmds(urls, tmp, ["-c:v", "copy", "-c:a", "aac"]))]
    if mode == "export-h265":
        return [("ffmpeg -pix_fmt nv12 -f null",
                 [ffmpeg(u, "-pix_fmt", "nv12", "-f", "null", "-") for u in urls])]
    if mode == "ingest":
        return [("ffmpeg -c copy -f null", [ffmpeg(u, "-c", "copy", "-f", "null", "-") for u in urls])]
    if mode == "record":
        cmds = []
        for i, u in enumerate(urls):
            d = os.path.join(tmp, f"ffseg{i}")
            os.makedirs(d, exist_ok=True)
            cmds.append(ffmpeg(u, "-c", "copy", "-f", "segment", "-segment_time", "60",
                               "-segment_format", "mp4", os.path.join(d, "%05d.mp4")))
        return [("ffmpeg -f segment", cmds)]
    gst = [["gst-launch-1.0", "-q", "rtspsrc", f"location={u}", "protocols=tcp", "!",
            "rtph264depay", "!", "h264parse", "!", "avdec_h264", "!", "videoconvert", "!",
            "video/x-raw,format=NV12", "!", "shmsink", f"socket-path={tmp}/gst{i}.sock",
            "shm-size=20000000", "wait-for-connection=false", "sync=false"]
           for i, u in enumerate(urls)]
    return [("ffmpeg -pix_fmt nv12 -f null", [ffmpeg(u, "-pix_fmt", "nv12", "-f", "null", "-") for u in urls]),
            ("gst ... avdec_h264 ! NV12 ! shmsink", gst)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("modes", nargs="*", default=["ingest", "record", "export"])
    ap.add_argument("--cameras", default="1,8")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--vasd", default=os.path.join(ROOT, "target/release/vasd"))
    ap.add_argument("--media", default=os.path.join(ROOT, "target/bench-media"))
    a = ap.parse_args()
    subprocess.run(["bash", os.path.join(ROOT, "tests/fixtures/make_media.sh"), a.media],
                   check=True, stdout=subprocess.DEVNULL)
    print(f"1080p30 H.264 4 Mbit/s (real-camera kinds: 640x360) over RTSP/TCP, "
          f"{a.seconds:.0f} s windows; CPU seconds per camera-minute (lower is better)")
    for mode in a.modes:
        if mode not in MEDIA:
            sys.exit(f"unknown mode {mode!r}: use {', '.join(MEDIA)}")
        file, vasd_mode = MEDIA[mode]
        for n in [int(x) for x in a.cameras.split(",")]:
            server, port = start_server(a.media, [(f"cam{i}", file) for i in range(n)])
            tmp = tempfile.mkdtemp(prefix="vas-bench-")
            try:
                urls = [f"rtsp://127.0.0.1:{port}/cam{i}" for i in range(n)]
                vasd_cpu, rate, note = run_vasd(a.vasd, urls, vasd_mode, tmp, a.warmup,
                                                a.seconds)
                per = 60 / a.seconds / n
                unit = "frames" if vasd_mode == "export" else "units"
                print(f"{mode:>7} x{n:<2} vasd {vasd_cpu * per:7.3f}  ({rate:5.1f} {unit}/s per camera)")
                if note:
                    print(f"{'':>11} {note}")
                for name, cmds in baselines(mode, urls, tmp):
                    base = run_baseline(cmds, a.warmup, a.seconds)
                    ratio = vasd_cpu / base if base else float("nan")
                    print(f"{'':>11} {name:<36} {base * per:7.3f}   vasd/baseline {ratio:5.2f}")
            finally:
                server.terminate()
                server.wait()
                shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
