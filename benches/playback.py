#!/usr/bin/python3
"""Playback of recordings over the API: index start-up, serving clips, downloads under load.

Three parts, each printed beside a baseline measured in the same run:

  index   A record dir of N segments (default 10^5) over 10 cameras and several days, every
          one a hard link of one real 60 s segment (libavformat, movflags
          frag_keyframe+empty_moov+default_base_moof, as vasd writes them) under its own
          start-time name, 60 s apart, so each camera's segments form one span. vasd starts
          with no cameras on that dir: the time its log gives for reading the index, and the
          time from exec to /healthz and to a complete /api/recordings reply.
          Baseline: `find DIR -name '*.mp4' -printf '%s\\n' | wc -l` (a walk that stats every
          file). Both run on a warm page cache: the figures are CPU and syscall cost, not
          the disk's seek time. Goal: index under 2 s for 10^5 segments.
  serve   10 minutes of 1080p25 H.264 ~4 Mbit/s (GOP 1 s) + AAC, split by ffmpeg into 60 s
          segments in vasd's format and named as one span. vasd's video.mp4 (fragmented) and
          download=1 (progressive) of the whole span, fetched with curl to /dev/null, against
          ffmpeg's concat demuxer remuxing the same files (-c copy): fragmented to stdout
          (/dev/null), and progressive (+faststart) to a file, which is what a download
          needs. CPU time of vasd from /proc, of ffmpeg from getrusage(RUSAGE_CHILDREN);
          median of --repeats. Then the time to the first body byte of video.mp4 for
          --starts start times across the span, and of ffmpeg's first output byte (its
          process start included: that is what a remuxing server that runs ffmpeg per
          request pays). Goals: CPU ratio <= 1.0, time to first byte < 100 ms.
  load    --downloads concurrent downloads (curl) of a 1-hour span (the 60 s segments
          hard-linked under 60 consecutive names) while vasd records --recorders 720p30
          cameras from the RTSP fixture. /healthz latency every 50 ms and vasd's RSS every
          200 ms, for 10 s before the downloads (the baseline) and during them; then the
          drop counters of every recording camera from /api/cameras, as deltas over the
          downloads. Goals: /healthz p99 < 50 ms, RSS growth < 20 MB, no drops.

--quick: 10^4 segments, a 2-minute clip, 10-minute downloads; a few minutes in all.
The encoded clips are cached in the media dir (--media), so only the first run encodes.

Usage: benches/playback.py [index|serve|load ...] [--quick] [--segments N] [--vasd PATH]
"""

import argparse
import http.client
import json
import math
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from benchlib import ROOT, cpu_seconds, free_port, rss_bytes, start_rtsp

SEGMENT_S = 60
MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
HEALTH_PERIOD_S = 0.05
RSS_PERIOD_S = 0.2
BASELINE_WINDOW_S = 10
# ext4 refuses more than 65000 links to one inode: the index dir links to one copy of the
# segment per this many names.
LINKS_PER_INODE = 60000
# The camera served in the load part: not one of the recording cameras cam0..camN.
ARCHIVE = "archive"


class Reaper:
    """Every process and directory this run makes, ended and removed however the run ends."""

    def __init__(self):
        self.procs = []
        self.dirs = []
        self.lock = threading.Lock()

    def popen(self, args, **kw):
        p = subprocess.Popen(args, **kw)
        with self.lock:
            self.procs.append(p)
        return p

    def mkdtemp(self, prefix):
        d = tempfile.mkdtemp(prefix=prefix)
        self.dirs.append(d)
        return d

    @staticmethod
    def stop(p, timeout=15):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def close(self):
        with self.lock:
            procs = list(reversed(self.procs))
        for p in procs:
            self.stop(p)
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)


REAPER = Reaper()


# ---------------------------------------------------------------------------------------
# Small helpers


def pct(values, p):
    """Nearest-rank percentile of a non-empty list."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def segment_name(camera, start_ms):
    """`<camera>/<YYYY-MM-DD>/<HH-MM-SS.mmm>.mp4`, as record::segment::segment_path names it."""
    t = time.gmtime(start_ms // 1000)
    return (f"{camera}/{t.tm_year:04}-{t.tm_mon:02}-{t.tm_mday:02}/"
            f"{t.tm_hour:02}-{t.tm_min:02}-{t.tm_sec:02}.{start_ms % 1000:03}.mp4")


def utc(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def base_ms(days_back):
    """Midnight UTC `days_back` days ago: segment times are in the past, as recordings are."""
    return (int(time.time()) // 86400 - days_back) * 86400 * 1000


def duration_s(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                          "-of", "csv=p=0", path], capture_output=True, text=True)
    try:
        return float(out.stdout.strip())
    except ValueError:
        return None


def encode(path, seconds, args):
    """ffmpeg-encodes `path` unless a file of about `seconds` is there; via a temporary name,
    so an interrupted encode never leaves a short file under the final name."""
    d = duration_s(path) if os.path.exists(path) else None
    if d is not None and abs(d - seconds) < 1.5:
        return
    tmp = f"{path}.tmp-{os.getpid()}"
    print(f"(encoding {os.path.basename(path)}, {seconds} s; cached for later runs)",
          file=sys.stderr, flush=True)
    try:
        subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args,
                        "-f", "mp4", tmp], check=True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def http_get(port, path, timeout=10):
    """(status, body) of a GET on vasd."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def get_json(port, path):
    status, body = http_get(port, path)
    if status != 200:
        raise SystemExit(f"GET {path}: {status} {body[:400]!r}")
    return json.loads(body)


# ---------------------------------------------------------------------------------------
# vasd


class Vasd:
    """vasd on a config of its own, its log in a file; `started` is when it was exec'd."""

    def __init__(self, binary, tmp, name, record_dir, cameras_toml=""):
        self.port = free_port()
        self.cfg = os.path.join(tmp, f"{name}.toml")
        self.log = os.path.join(tmp, f"{name}.log")
        with open(self.cfg, "w") as f:
            f.write(f'[server]\nlisten = "127.0.0.1:{self.port}"\n')
            # keep_days = 0: the bench's segments are days old and must not be retired.
            f.write(f'[record]\ndir = "{record_dir}"\nkeep_days = 0\n')
            f.write("[export]\nenabled = false\n")
            f.write(cameras_toml)
        env = dict(os.environ, AI_FRAME_EXPORT_ENABLED="false")
        with open(self.log, "w") as log:
            self.started = time.monotonic()
            self.proc = REAPER.popen([binary, "--config", self.cfg, "--log-level", "info"],
                                     stdout=subprocess.DEVNULL, stderr=log, env=env)
        self.healthy_at = self.wait_healthy()

    def fail(self, why):
        raise SystemExit(f"vasd: {why}\n--- {self.log} (last lines) ---\n{self.tail()}")

    def tail(self, n=20):
        with open(self.log, errors="replace") as f:
            return "".join(f.readlines()[-n:])

    def wait_healthy(self, timeout=120):
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.fail(f"exited with {self.proc.returncode} before /healthz answered")
            try:
                if http_get(self.port, "/healthz", timeout=2)[0] == 200:
                    return time.monotonic()
            except OSError:
                pass
            # A fine poll: the start-up time of a small index is a few ms.
            time.sleep(0.002)
        self.fail("/healthz did not answer")

    def problems(self):
        """WARN and ERROR lines of its log."""
        with open(self.log, errors="replace") as f:
            return [line.rstrip() for line in f if "[WARN]" in line or "[ERROR]" in line]

    def stop(self):
        Reaper.stop(self.proc)
        if self.proc.returncode not in (0, -signal.SIGTERM):
            self.fail(f"exited with {self.proc.returncode} when stopped")


def report_problems(vasd, what):
    lines = vasd.problems()
    if lines:
        print(f"  vasd logged {len(lines)} warning(s)/error(s) during {what}; first ones:")
        for line in lines[:5]:
            print(f"    {line[:300]}")


# ---------------------------------------------------------------------------------------
# index


def index_segment(media):
    """One real 60 s segment in vasd's format (small: only its structure matters here)."""
    path = os.path.join(media, "pb_index_60s.mp4")
    encode(path, SEGMENT_S, [
        "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={SEGMENT_S}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={SEGMENT_S}",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25",
        "-sc_threshold", "0", "-b:v", "300k", "-pix_fmt", "yuv420p", "-c:a", "aac",
        "-b:a", "32k", "-ac", "1", "-shortest", "-movflags", MOVFLAGS])
    return path


def build_index_dir(source, root, total, cameras):
    """`total` names over `cameras` cameras, 60 s apart, hard links of copies of `source`."""
    per = [total // cameras + (1 if c < total % cameras else 0) for c in range(cameras)]
    start = base_ms(math.ceil(max(per) * SEGMENT_S / 86400) + 1)
    rec = os.path.join(root, "rec")
    copies = os.path.join(root, "copies")
    os.makedirs(copies)
    made_dirs = set()
    links = 0
    inode = None
    for c in range(cameras):
        for i in range(per[c]):
            if links % LINKS_PER_INODE == 0:
                inode = os.path.join(copies, f"{links // LINKS_PER_INODE}.mp4")
                shutil.copyfile(source, inode)
            name = os.path.join(rec, segment_name(f"cam{c:02}", start + i * SEGMENT_S * 1000))
            d = os.path.dirname(name)
            if d not in made_dirs:
                os.makedirs(d)
                made_dirs.add(d)
            os.link(inode, name)
            links += 1
    days = len({d.rsplit("/", 1)[1] for d in made_dirs})
    return rec, days


def time_find(rec, total):
    t0 = time.monotonic()
    out = subprocess.run(["bash", "-c", f"find '{rec}' -name '*.mp4' -printf '%s\\n' | wc -l"],
                         capture_output=True, text=True, check=True)
    wall = time.monotonic() - t0
    if int(out.stdout) != total:
        raise SystemExit(f"find counted {out.stdout.strip()} files, expected {total}")
    return wall


INDEX_LINE = re.compile(r"recordings index: (\d+) segment\(s\) of (\d+) camera\(s\) in .* "
                        r"read in (\d+) ms")


def index_run(a, tmp, rec, total, cameras, n):
    vasd = Vasd(a.vasd, tmp, f"index{n}", rec)
    try:
        health = vasd.healthy_at - vasd.started
        t0 = time.monotonic()
        status, body = http_get(vasd.port, "/api/recordings", timeout=60)
        t1 = time.monotonic()
        if status != 200:
            vasd.fail(f"GET /api/recordings: {status} {body[:400]!r}")
        listing = json.loads(body)
        spans = sum(len(c["spans"]) for c in listing["cameras"])
        with open(vasd.log, errors="replace") as f:
            m = next((INDEX_LINE.search(line) for line in f if INDEX_LINE.search(line)), None)
        if not m:
            vasd.fail("no 'recordings index' line in its log")
        if (int(m.group(1)), int(m.group(2))) != (total, cameras):
            vasd.fail(f"its index has {m.group(1)} segments of {m.group(2)} cameras, "
                      f"expected {total} of {cameras}")
        rss = rss_bytes(vasd.proc.pid)
        result = dict(index=int(m.group(3)) / 1000, health=health, listing=t1 - vasd.started,
                      list_only=t1 - t0, spans=spans, list_bytes=len(body), rss=rss)
        if n == 0:
            report_problems(vasd, "the index start")
    finally:
        vasd.stop()
    return result


def part_index(a, tmp, media):
    total, cameras = a.segments, a.index_cameras
    root = os.path.join(tmp, "index")
    os.makedirs(root)
    t0 = time.monotonic()
    rec, days = build_index_dir(index_segment(media), root, total, cameras)
    made = time.monotonic() - t0
    time_find(rec, total)  # warms the dentry and inode caches for both sides alike
    finds = [time_find(rec, total) for _ in range(a.repeats)]
    runs = [index_run(a, tmp, rec, total, cameras, n) for n in range(a.repeats)]
    # vasd on an empty record dir: what start-up and memory cost without any index.
    empty = os.path.join(root, "empty")
    os.makedirs(empty)
    bare = []
    for n in range(a.repeats):
        v = Vasd(a.vasd, tmp, f"empty{n}", empty)
        bare.append((v.healthy_at - v.started, rss_bytes(v.proc.pid)))
        v.stop()
    bare_health = statistics.median(h for h, _ in bare)
    bare_rss = statistics.median(r for _, r in bare)
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    find = statistics.median(finds)
    print(f"\nindex start-up: {total} segments (60 s, hard links) of {cameras} cameras over "
          f"{days} day(s), warm page cache; median of {a.repeats} (dir made in {made:.1f} s)")
    print(f"  {'vasd: index read (its log line)':<44} {med['index'] * 1000:8.0f} ms")
    print(f"  {'vasd: exec to /healthz answering':<44} {med['health'] * 1000:8.0f} ms")
    print(f"  {'vasd: exec to /api/recordings answered':<44} {med['listing'] * 1000:8.0f} ms"
          f"   (the listing alone {med['list_only'] * 1000:.1f} ms, {runs[0]['spans']} spans, "
          f"{runs[0]['list_bytes'] / 1000:.1f} kB)")
    print(f"  {'vasd: RSS with the index':<44} {med['rss'] / 2**20:8.1f} MiB "
          f"({(med['rss'] - bare_rss) / total:.0f} B per segment over an empty dir's)")
    print(f"  {'baseline: vasd on an empty dir, to /healthz':<44} {bare_health * 1000:8.0f} ms"
          f"   (RSS {bare_rss / 2**20:.1f} MiB)")
    print(f"  {'baseline: find -printf %s | wc -l':<44} {find * 1000:8.0f} ms")
    print(f"  ratios: index read / find {med['index'] / find:.2f}, (exec to /healthz - empty "
          f"dir's) / find {(med['health'] - bare_health) / find:.2f}; goal: index read < 2 s "
          f"per 10^5 segments ({'met' if med['index'] < 2 * total / 1e5 else 'NOT met'})")
    shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# serve


def serve_clip(media, minutes):
    """A 1080p25 H.264 ~4 Mbit/s clip with a 1 s GOP and AAC audio, cached in `media`.
    ultrafast: the plain test pattern then reaches ~4 Mbit/s by itself, and the encode of
    10 minutes stays near 90 s on 2 cores."""
    seconds = minutes * 60
    path = os.path.join(media, f"pb1080_{minutes}min.mp4")
    encode(path, seconds, [
        "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25",
        "-sc_threshold", "0", "-b:v", "4M", "-maxrate", "4M", "-bufsize", "8M",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-ac", "1", "-shortest"])
    return path


def split(clip, out):
    """The clip as 60 s segments in vasd's format (libavformat, the recorder's movflags), in
    order. Unlike vasd's recorder, ffmpeg's segment muxer ends each with an audio-only moof."""
    os.makedirs(out)
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", clip,
                    "-map", "0", "-c", "copy", "-f", "segment", "-segment_time", str(SEGMENT_S),
                    "-reset_timestamps", "1", "-segment_format", "mp4",
                    "-segment_format_options", f"movflags={MOVFLAGS}",
                    os.path.join(out, "%04d.mp4")], check=True)
    return sorted(os.path.join(out, f) for f in os.listdir(out))


def place(pieces, rec, camera, start_ms, count):
    """`count` consecutive 60 s names of `camera` from `start_ms`, linked to `pieces` in turn
    (looped when count is larger): one continuous span. Returns the paths in order."""
    paths = []
    for i in range(count):
        p = os.path.join(rec, segment_name(camera, start_ms + i * SEGMENT_S * 1000))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        os.link(pieces[i % len(pieces)], p)
        paths.append(p)
    return paths


def one_span(port, camera, segments):
    listing = get_json(port, f"/api/recordings/{camera}")
    spans = listing["spans"]
    if len(spans) != 1 or spans[0]["segments"] != segments:
        raise SystemExit(f"GET /api/recordings/{camera}: expected one span of {segments} "
                         f"segments, got {json.dumps(spans)[:800]}")
    return spans[0]


def curl(url, headers=None):
    """Fetches url to /dev/null with curl: (status, bytes, time to first byte, total)."""
    args = ["curl", "-sS", "-o", "/dev/null", "-w",
            "%{http_code} %{size_download} %{time_starttransfer} %{time_total}"]
    if headers:
        args += ["-D", headers]
    out = subprocess.run(args + [url], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"curl {url}: exit {out.returncode}: {out.stderr.strip()}")
    code, size, first, total = out.stdout.split()
    return int(code), int(size), float(first), float(total)


def vasd_fetch(vasd, url, expect_min_bytes, headers=None):
    c0 = cpu_seconds(vasd.proc.pid)
    code, size, _, wall = curl(url, headers)
    cpu = cpu_seconds(vasd.proc.pid) - c0
    if code != 200 or size < expect_min_bytes:
        vasd.fail(f"GET {url}: status {code}, {size} bytes (expected 200 and at least "
                  f"{expect_min_bytes})")
    return cpu, wall, size


def ffmpeg_remux(listfile, out, *extra):
    args = ["ffmpeg", "-nostdin", "-loglevel", "error", *extra, "-f", "concat", "-safe", "0",
            "-i", listfile, "-map", "0", "-c", "copy"]
    return args + out


def ffmpeg_run(args, stdout=subprocess.DEVNULL):
    c0, t0 = children_cpu(), time.monotonic()
    p = subprocess.run(args, stdout=stdout, stderr=subprocess.PIPE, text=True)
    wall, cpu = time.monotonic() - t0, children_cpu() - c0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: exit {p.returncode}: {p.stderr.strip()[:400]}")
    return cpu, wall


def packets(src, *before):
    """{codec_type: packets} that ffprobe reads from src (a URL, or a list with -f concat)."""
    out = subprocess.run(["ffprobe", "-v", "error", *before, "-i", src, "-count_packets",
                          "-show_entries", "stream=codec_type,nb_read_packets", "-of", "csv=p=0"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"ffprobe {src}: exit {out.returncode}: {out.stderr.strip()[:400]}")
    counts = {}
    for line in out.stdout.split():
        kind, n = line.split(",")[:2]
        counts[kind] = counts.get(kind, 0) + int(n)
    return counts


def vasd_first_byte(port, path):
    """Seconds from sending the request to the first byte of the body, and the reply's
    X-Vas-Start-Unix-Ms."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        t0 = time.monotonic()
        conn.request("GET", path)
        r = conn.getresponse()
        if r.status != 200:
            raise SystemExit(f"GET {path}: {r.status} {r.read()[:400]!r}")
        if not r.read(1):
            raise SystemExit(f"GET {path}: an empty body")
        return time.monotonic() - t0, int(r.getheader("X-Vas-Start-Unix-Ms", "0"))
    finally:
        conn.close()


def ffmpeg_first_byte(listfile, offset_s):
    args = ffmpeg_remux(listfile, ["-t", "60", "-movflags", "frag_keyframe+empty_moov",
                                   "-f", "mp4", "-"], "-ss", f"{offset_s:.3f}")
    t0 = time.monotonic()
    p = REAPER.popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        first = os.read(p.stdout.fileno(), 1)
        t = time.monotonic() - t0
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
    if not first:
        raise SystemExit(f"{' '.join(args)}: no output")
    return t


def part_serve(a, tmp, media):
    minutes = a.clip_minutes
    clip = serve_clip(media, minutes)
    root = os.path.join(tmp, "serve")
    pieces = split(clip, os.path.join(root, "split"))
    if len(pieces) != minutes:
        raise SystemExit(f"ffmpeg split {clip} into {len(pieces)} segments, not {minutes}")
    rec = os.path.join(root, "rec")
    start_ms = base_ms(1) + 9 * 3600 * 1000
    files = place(pieces, rec, "pb", start_ms, minutes)
    listfile = os.path.join(root, "concat.txt")
    with open(listfile, "w") as f:
        f.writelines(f"file '{p}'\n" for p in files)
    source = sum(os.path.getsize(p) for p in files)
    for p in files:  # both sides read from the page cache
        with open(p, "rb") as f:
            while f.read(1 << 20):
                pass

    vasd = Vasd(a.vasd, tmp, "serve", rec)
    try:
        span = one_span(vasd.port, "pb", minutes)
        seconds = minutes * 60
        q = f"start={span['start_unix_ms'] / 1000:.3f}&duration={seconds}"
        frag = f"http://127.0.0.1:{vasd.port}/api/recordings/pb/video.mp4?{q}"
        dl = frag + "&download=1"
        # Both replies' headers checked once: a wrong reply must not pass as a fast one.
        hdr = os.path.join(root, "headers")
        vasd_fetch(vasd, frag, 0.95 * source, hdr)
        with open(hdr) as f:
            h = f.read().lower()
        if "x-vas-start-unix-ms: " + str(span["start_unix_ms"]) not in h:
            vasd.fail(f"GET {frag}: X-Vas-Start-Unix-Ms is not the span's start "
                      f"{span['start_unix_ms']}:\n{h}")
        _, _, dl_size = vasd_fetch(vasd, dl, 0.95 * source, hdr)
        with open(hdr) as f:
            h = f.read().lower()
        if f"content-length: {dl_size}" not in h or "attachment" not in h:
            vasd.fail(f"GET {dl}: no Content-Length {dl_size} or no attachment:\n{h}")

        out = os.path.join(root, "ffmpeg-out.mp4")
        rows = {"vf": [], "ff": [], "vd": [], "fd": []}
        for _ in range(a.repeats):
            rows["vf"].append(vasd_fetch(vasd, frag, 0.95 * source)[:2])
            rows["ff"].append(ffmpeg_run(ffmpeg_remux(
                listfile, ["-movflags", "frag_keyframe+empty_moov", "-f", "mp4", "-"])))
            rows["vd"].append(vasd_fetch(vasd, dl, 0.95 * source)[:2])
            rows["fd"].append(ffmpeg_run(ffmpeg_remux(
                listfile, ["-movflags", "+faststart", "-f", "mp4", "-y", out])))
            os.unlink(out)
        med = {k: (statistics.median(c for c, _ in v), statistics.median(w for _, w in v))
               for k, v in rows.items()}

        # Start times across the span, off the key frames (x.37 s), the last one a minute
        # before the end so each asks for a full minute.
        starts = [span["start_unix_ms"] + 370 + round(i * (seconds - 61) * 1000 / (a.starts - 1))
                  for i in range(a.starts)]
        vt, back = [], []
        for s in starts:
            t, got = vasd_first_byte(vasd.port, f"/api/recordings/pb/video.mp4?"
                                                f"start={s / 1000:.3f}&duration=60")
            vt.append(t)
            back.append(s - got)
        ft = [ffmpeg_first_byte(listfile, (s - span["start_unix_ms"]) / 1000) for s in starts]
        # What a player gets: every packet of the segments, in both forms. ffmpeg's segment
        # muxer ends each segment with a moof of only the audio left after the last video
        # frame (vasd's recorder writes none), so an audio-only difference points there.
        counted = [("segments", packets(listfile, "-f", "concat", "-safe", "0")),
                   ("video.mp4", packets(frag)), ("download=1", packets(dl))]
        report_problems(vasd, "serving")
    finally:
        vasd.stop()

    mb = source / 1e6
    print(f"\nserving {minutes} min of 1080p25 H.264 + AAC ({source * 8 / seconds / 1e6:.1f} "
          f"Mbit/s, {minutes} segments, {mb:.0f} MB) as one clip; median of {a.repeats}")
    print(f"  {'':<50} {'CPU s':>7} {'wall s':>7} {'MB/s':>7}")

    def row(label, key):
        cpu, wall = med[key]
        print(f"  {label:<50} {cpu:7.3f} {wall:7.3f} {mb / wall:7.0f}")

    row("vasd video.mp4 (fragmented), curl", "vf")
    row("baseline: ffmpeg concat -c copy frag > /dev/null", "ff")
    row("vasd video.mp4&download=1 (progressive)", "vd")
    row("baseline: ffmpeg concat -c copy +faststart file", "fd")
    print(f"  ratios vasd/ffmpeg: fragmented CPU {med['vf'][0] / med['ff'][0]:.2f} wall "
          f"{med['vf'][1] / med['ff'][1]:.2f}; progressive CPU {med['vd'][0] / med['fd'][0]:.2f} "
          f"wall {med['vd'][1] / med['fd'][1]:.2f}; goal: CPU ratio <= 1.0")
    print(f"  download=1 is {dl_size / source:.4f} x the segment bytes; ffprobe packets "
          "(video/audio): " + ", ".join(f"{k} {c.get('video', 0)}/{c.get('audio', 0)}"
                                         for k, c in counted)
          + (" (the same)" if all(c == counted[0][1] for _, c in counted) else
             " (DIFFER: " + ", ".join(f"{k} {c.get(t, 0) - counted[0][1].get(t, 0):+d} {t}"
                                      for k, c in counted[1:] for t in ("video", "audio")
                                      if c.get(t, 0) != counted[0][1].get(t, 0)) + ")"))
    print(f"  time to first byte, {a.starts} starts across the span (ms): vasd p50 "
          f"{pct(vt, 50) * 1000:.1f} max {max(vt) * 1000:.1f}; ffmpeg -ss (its start included) p50 "
          f"{pct(ft, 50) * 1000:.1f} max {max(ft) * 1000:.1f}; goal < 100 ms")
    print(f"  clip start before the asked time (key frame at or before it): "
          f"{min(back)}..{max(back)} ms (GOP 1000 ms)")
    return pieces


# ---------------------------------------------------------------------------------------
# load


class Sampler(threading.Thread):
    """Calls fn every period seconds (without catching up after a slow call) until stop()."""

    def __init__(self, period, fn):
        super().__init__(daemon=True)
        self.period, self.fn = period, fn
        self.values = []
        self.halt = threading.Event()

    def run(self):
        due = time.monotonic()
        while not self.halt.is_set():
            self.values.append(self.fn())
            due += self.period
            wait = due - time.monotonic()
            if wait > 0:
                self.halt.wait(wait)
            else:
                due = time.monotonic()

    def stop(self):
        self.halt.set()
        self.join()
        return self.values


def healthz_latency(port):
    """Seconds for a GET /healthz on a new connection, as a monitoring probe makes it; None
    when it failed."""
    t0 = time.monotonic()
    try:
        status, _ = http_get(port, "/healthz", timeout=5)
    except OSError:
        return None
    return time.monotonic() - t0 if status == 200 else None


def sample(port, pid, seconds=None, during=None):
    """/healthz latencies and RSS samples over `seconds`, or while `during()` runs."""
    health = Sampler(HEALTH_PERIOD_S, lambda: healthz_latency(port))
    rss = Sampler(RSS_PERIOD_S, lambda: rss_bytes(pid))
    health.start()
    rss.start()
    result = None
    try:
        if during is None:
            time.sleep(seconds)
        else:
            result = during()
    finally:
        h, r = health.stop(), rss.stop()
    return h, r, result


def drops(cams):
    """Per camera: the counters that tell of lost media, flattened."""
    out = {}
    for c in cams:
        rec = c.get("record") or {}
        queues = c.get("queues") or {}
        out[c["id"]] = {
            "state": c.get("state"),
            "record_state": rec.get("state"),
            "record.queue_dropped": rec.get("queue_dropped", 0),
            "record.units_skipped": rec.get("units_skipped", 0),
            "record.overflow_cuts": rec.get("overflow_cuts", 0),
            "record.write_errors": rec.get("write_errors", 0),
            "queues.dropped": sum(q.get("dropped", 0) for q in queues.values()),
            "rtp_packets_lost": c.get("rtp_packets_lost", 0),
            "discontinuities": c.get("discontinuities", 0),
            "reconnects": c.get("reconnects", 0),
            "packets": c.get("packets", 0),
        }
    return out


def health_line(label, lat):
    ok = [x for x in lat if x is not None]
    failed = len(lat) - len(ok)
    if not ok:
        return f"  {label:<34} no /healthz answered ({failed} failed)"
    return (f"  {label:<34} {len(lat):5d} {pct(ok, 50) * 1000:7.1f} {pct(ok, 99) * 1000:7.1f} "
            f"{max(ok) * 1000:7.1f} {failed:7d}")


def part_load(a, tmp, media, pieces):
    subprocess.run(["bash", os.path.join(ROOT, "tests/fixtures/make_media.sh"), media],
                   check=True, stdout=subprocess.DEVNULL)
    root = os.path.join(tmp, "load")
    if pieces is None:
        pieces = split(serve_clip(media, a.clip_minutes), os.path.join(root, "split"))
    rec = os.path.join(root, "rec")
    minutes = a.download_minutes
    start_ms = base_ms(1) + 12 * 3600 * 1000
    files = place(pieces, rec, ARCHIVE, start_ms, minutes)
    source = sum(os.path.getsize(p) for p in files)
    for p in pieces:  # the links share the pieces' pages: reading the pieces warms them all
        with open(p, "rb") as f:
            while f.read(1 << 20):
                pass

    n = a.recorders
    _, rtsp = start_rtsp(media, [(f"cam{i}", "cam720.mp4") for i in range(n)], REAPER.popen)
    cams = "".join(f'[[camera]]\nid = "cam{i}"\nurl = "rtsp://127.0.0.1:{rtsp}/cam{i}"\n'
                   f"record = true\nlive = false\n" for i in range(n))
    vasd = Vasd(a.vasd, tmp, "load", rec, cams)
    try:
        one_span(vasd.port, ARCHIVE, minutes)
        deadline = time.monotonic() + 60
        while True:
            now = drops(get_json(vasd.port, "/api/cameras"))
            if all(v["state"] == "streaming" and v["record_state"] == "recording"
                   for v in now.values()) and len(now) == n:
                break
            if time.monotonic() > deadline:
                vasd.fail(f"not all {n} cameras stream and record after 60 s: "
                          f"{ {k: (v['state'], v['record_state']) for k, v in now.items()} }")
            time.sleep(0.5)
        pid = vasd.proc.pid

        base_h, base_r, _ = sample(vasd.port, pid, seconds=BASELINE_WINDOW_S)
        before = drops(get_json(vasd.port, "/api/cameras"))
        rss0 = rss_bytes(pid)
        cpu0 = cpu_seconds(pid)
        url = (f"http://127.0.0.1:{vasd.port}/api/recordings/{ARCHIVE}/video.mp4?"
               f"start={start_ms / 1000:.3f}&duration={minutes * 60}")

        def downloads():
            args = ["curl", "-sS", "-o", "/dev/null", "-w",
                    "%{http_code} %{size_download} %{time_starttransfer} %{time_total}", url]
            t0 = time.monotonic()
            procs = [REAPER.popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(a.downloads)]
            outs = [p.communicate() for p in procs]
            return time.monotonic() - t0, [(p.returncode, o, e) for p, (o, e) in zip(procs, outs)]

        load_h, load_r, (wall, results) = sample(vasd.port, pid, during=downloads)
        cpu = cpu_seconds(pid) - cpu0
        after = drops(get_json(vasd.port, "/api/cameras"))
        report_problems(vasd, "the load part")
    finally:
        vasd.stop()

    sizes, firsts = [], []
    for code, out, err in results:
        if code != 0:
            raise SystemExit(f"curl {url}: exit {code}: {err.strip()}")
        status, size, first, _ = out.split()
        if status != "200" or int(size) < 0.95 * source:
            raise SystemExit(f"GET {url}: status {status}, {size} bytes of about {source}")
        sizes.append(int(size))
        firsts.append(float(first))
    total = sum(sizes)
    print(f"\n{a.downloads} concurrent downloads of {minutes} min ({source / 1e6:.0f} MB each, "
          f"video.mp4) while vasd records {n} x 720p30 2 Mbit/s cameras")
    print(f"  downloads: {wall:.1f} s wall for all, {total / wall / 1e6:.0f} MB/s together "
          f"({total / wall * 8 / 1e9:.2f} Gbit/s, {total / wall / a.downloads / 1e6:.0f} MB/s "
          f"each, {minutes * 60 * a.downloads / wall:.0f} x real time); first byte max "
          f"{max(firsts) * 1000:.0f} ms; vasd CPU {cpu:.1f} s ({cpu / wall * 100:.0f}% of a core)")
    print(f"  /healthz latency (ms)              {'n':>5} {'p50':>7} {'p99':>7} {'max':>7} "
          f"{'failed':>7}")
    print(health_line(f"baseline: {BASELINE_WINDOW_S} s before, recording", base_h))
    print(health_line("during the downloads", load_h))
    ok_b = [x for x in base_h if x is not None]
    ok_l = [x for x in load_h if x is not None]
    if ok_b and ok_l:
        print(f"  ratios during/baseline: p50 {pct(ok_l, 50) / pct(ok_b, 50):.2f} p99 "
              f"{pct(ok_l, 99) / pct(ok_b, 99):.2f}; goal: p99 < 50 ms "
              f"({'met' if pct(ok_l, 99) < 0.05 and len(ok_l) == len(load_h) else 'NOT met'})")
    grow = max(load_r) - rss0
    print(f"  vasd RSS before {rss0 / 2**20:.1f} MiB; peak growth during the downloads "
          f"{grow / 2**20:+.1f} MiB (baseline window: {(max(base_r) - min(base_r)) / 2**20:.1f} "
          f"MiB from lowest to highest); goal < 20 MB "
          f"({'met' if grow < 20e6 else 'NOT met'})")
    keys = ["record.queue_dropped", "record.units_skipped", "record.overflow_cuts",
            "record.write_errors", "queues.dropped", "rtp_packets_lost", "discontinuities",
            "reconnects"]
    short = ["rec.q_drop", "rec.skip", "rec.cuts", "rec.werr", "queues.drop", "rtp_lost",
             "discont", "reconn"]
    print("  drop counters from /api/cameras, deltas over the downloads (units: access units "
          "received, to show each camera kept streaming)")
    print(f"  {'camera':<8} {'state':<10} {'units':>6}" + "".join(f" {s:>11}" for s in short))
    bad = 0
    for cam in sorted(after):
        b, e = before.get(cam, {}), after[cam]
        deltas = [e[k] - b.get(k, 0) for k in keys]
        bad += sum(deltas)
        print(f"  {cam:<8} {e['state']:<10} {e['packets'] - b.get('packets', 0):>6}"
              + "".join(f" {d:>11}" for d in deltas))
    print("  columns: " + ", ".join(f"{s} = {k}" for s, k in zip(short, keys)))
    print("  since vasd started, all cameras: "
          + ", ".join(f"{s} {sum(e[k] for e in after.values())}" for s, k in zip(short, keys)))
    print(f"  goal: no drops during the downloads ({'met' if bad == 0 else 'NOT met'})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("parts", nargs="*", default=["index", "serve", "load"])
    ap.add_argument("--quick", action="store_true",
                    help="10^4 segments, a 2-minute clip, 10-minute downloads")
    ap.add_argument("--segments", type=int, help="index part: segments (default 100000)")
    ap.add_argument("--index-cameras", type=int, default=10)
    ap.add_argument("--clip-minutes", type=int, help="serve part: clip length (default 10)")
    ap.add_argument("--download-minutes", type=int, help="load part: each download (default 60)")
    ap.add_argument("--downloads", type=int, default=4)
    ap.add_argument("--recorders", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--starts", type=int, default=10)
    ap.add_argument("--vasd", default=os.path.join(ROOT, "target/release/vasd"))
    ap.add_argument("--media", default=os.path.join(ROOT, "target/bench-media"))
    a = ap.parse_args()
    a.segments = a.segments or (10_000 if a.quick else 100_000)
    a.clip_minutes = a.clip_minutes or (2 if a.quick else 10)
    a.download_minutes = a.download_minutes or (10 if a.quick else 60)
    for p in a.parts:
        if p not in ("index", "serve", "load"):
            sys.exit(f"unknown part {p!r}: use index, serve, load")
    if a.starts < 2:
        sys.exit("--starts must be at least 2")
    os.makedirs(a.media, exist_ok=True)
    # SIGTERM ends the run like Ctrl-C does: through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t0 = time.monotonic()
    try:
        tmp = REAPER.mkdtemp("vas-playback-")
        print(f"playback bench, vasd {a.vasd}{' (--quick)' if a.quick else ''}; "
              f"{os.cpu_count()} cores, everything on 127.0.0.1", flush=True)
        pieces = None
        if "index" in a.parts:
            part_index(a, tmp, a.media)
            sys.stdout.flush()
        if "serve" in a.parts:
            pieces = part_serve(a, tmp, a.media)
            sys.stdout.flush()
        if "load" in a.parts:
            part_load(a, tmp, a.media, pieces)
        print(f"\n(run took {time.monotonic() - t0:.0f} s)")
    except KeyboardInterrupt:
        sys.exit("interrupted")
    finally:
        REAPER.close()


if __name__ == "__main__":
    main()
