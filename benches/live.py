#!/usr/bin/python3
"""CPU of the live view per viewer, the time from a WHEP request to the first picture, what
audio costs, and what an unwatched live view costs.

Viewers are aiortc clients (tests/live_support/whep_client.py), many in one process, in
--count-only mode for the CPU figures: ICE, DTLS, SRTP and the jitter buffer run, the H.264
decode does not (audio is still decoded), so the clients leave the two cores to vasd. What
they receive is counted to show every viewer really gets the stream. CPU is vasd's user +
system time over a window after a warm-up, in % of one core.

Default mode: one 1080p30 H.264 camera (tests/fixtures/rtsp_server.py looping cam1080.mp4:
4 Mbit/s, a key frame every 60 frames = 2 s) feeds one vasd with the live view on. Then:

  CPU       vasd's CPU over the window with 0, then N viewers (--viewers, default 1, 10, 25).
  first     time from a viewer's WHEP POST to its first decoded frame (a decoding client),
  frame     several trials one after the other, printed beside the camera's GOP: an RTSP
            camera cannot be asked for a key frame, so a viewer waits for the next one (the
            mean wait is half a GOP plus the connection setup).

--audio: what the camera's audio costs. The fixture serves three live mounts with the same
video (--audio-video, default 1280x720@30: x264 ultrafast zerolatency, a key frame every
second): `video` without audio, `pcma` with 8 kHz G.711 A-law (20 ms packets), `aac` with
16 kHz mono AAC-LC. The fixture's live video is a moving ball, a few hundred kbit/s (a
camera sends 1-4 Mbit/s), so the video costs vasd less per viewer than a camera's would and
the audio's share looks larger than it is. One vasd has four cameras: those three and
`aac_off`, the aac mount again with live_audio = false. Then:

  CPU       vasd's CPU with 0 viewers, then with N viewers (--viewers, default 1, 10 here) of
            one camera at a time; the audio cameras' viewers offer audio (whep_client.py
            --audio) and must receive audio frames. Printed beside video only: the ratio of
            vasd's CPU, and of the CPU the viewers add (over 0 viewers). PCMA goes out as the
            camera sent it; AAC is transcoded to Opus (libopus) while someone listens.
  transcode one audio viewer of `aac` against one of `aac_off` (same source, same viewer, the
            answer rejects its m=audio): the difference is the AAC decode, the Opus encode
            and the audio packets, per camera watched. --rounds alternating pairs (default 1).
  first     time from the WHEP POST to the first audio frame (whep_client first_audio) and
  audio     to the first decoded video frame, --trials viewers one after the other, per
            audio camera: with AAC the transcoder opens when the first listener comes.

--idle [N] (N default 16): "an unwatched live view costs nothing". The fixture serves N
mounts of cam_pcma20.mkv (cam_pcma.mkv remuxed here with its audio in 20 ms packets, as
cameras send: 640x360 30 fps H.264 800 kbit/s, 8 kHz G.711 A-law; files are sent as they
are, so the fixture stays light), and a vasd with N cameras on them runs with
live = true (the live view on, nobody watching) and then with live = false; --rounds pairs
(default 3), alternating, one vasd after the other on the same fixture. The cameras send
audio in both; with the live view on vasd reads it (with live = false no role needs it and
vasd reads none), so the audio reaching the idle live view is part of what is measured.
Printed: each window with the camera and live counters (audio packets read, units and audio
units taken by the live thread), then the median of both and the ratio on/off (goal:
<= 1.02) with the spread of the per-pair ratios, since the difference is small and the
noise is not.

--seconds is the window (default 30, 20 with --audio); --warmup precedes every window. The
modes run one after the other when several are given.

Needs a release vasd (cargo build --release; --vasd, default <target>/release/vasd with
--target $CARGO_TARGET_DIR or ./target) and the Python of tests/live_support (made here like
the tests do if missing: <target>/live-venv from requirements.txt).

Usage: benches/live.py [--viewers 1,10,25] [--seconds 30] [--trials 8] [--vasd PATH]
       benches/live.py --audio [--viewers 1,10] [--audio-video 1280x720@30] [--rounds 1]
       benches/live.py --idle [16] [--rounds 3] [--seconds 30]
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time

from benchlib import ROOT, Vasd, bench_media, cpu_seconds, start_rtsp, target_dir, wait_for

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

    def _progress(self, key):
        progress = [e for e in self.events if e["event"] == "progress"]
        return progress[-1].get(key, []) if progress else []

    def frames(self):
        return self._progress("frames")

    def audio_frames(self):
        return self._progress("audio_frames")

    def first(self, event):
        return [e for e in self.events if e["event"] == event]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def cpu_over(pid, seconds):
    """CPU share of a core the process used over the next `seconds`."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


class Watch:
    """What one measurement with viewers saw: vasd's CPU (share of a core), per viewer the
    video frames and audio frames per second, the audio codecs answered, the camera's live
    section at the window's end, and the audio RTP packets per second vasd sent."""

    def __init__(self, cpu, fps, audio_fps, codecs, live, audio_rtp):
        self.cpu = cpu
        self.fps = fps
        self.audio_fps = audio_fps
        self.codecs = codecs
        self.live = live
        self.audio_rtp = audio_rtp


def measure_viewers(python, vasd, cam, n, warmup, seconds, audio=False, want_audio=None):
    """vasd's CPU with `n` count-only viewers of `cam`. With `audio` they offer audio; with
    `want_audio` too they must all receive audio frames before the window starts."""
    args = ["--viewers", str(n), "--count-only", "--hold",
            "--timeout", str(warmup + seconds + 120)]
    if audio:
        args.append("--audio")
    client = Client(python, vasd.url(f"/whep/{cam}"), args)
    want_audio = audio if want_audio is None else want_audio

    def receiving():
        if len(client.frames()) != n or min(client.frames()) == 0:
            return False
        return not want_audio or min(client.audio_frames() or [0]) > 0

    try:
        wait_for(f"{n} viewers of {cam} receiving", receiving)
        time.sleep(warmup)
        live0 = vasd.live(cam)
        f0, a0, c0, t0 = (sum(client.frames()), sum(client.audio_frames()),
                          cpu_seconds(vasd.pid), time.monotonic())
        time.sleep(seconds)
        f1, a1, c1, t1 = (sum(client.frames()), sum(client.audio_frames()),
                          cpu_seconds(vasd.pid), time.monotonic())
        live1 = vasd.live(cam)
        refused = client.first("refused")
        if refused:
            sys.exit(f"viewers refused: {refused}")
        codecs = sorted({str(e.get("codec")) for e in client.first("first_audio")})
    finally:
        client.stop()
    wait_for("the viewers to leave", lambda: vasd.live(cam).get("viewers") == 0)
    span = t1 - t0
    audio_rtp = (live1.get("audio_rtp_packets_sent", 0)
                 - live0.get("audio_rtp_packets_sent", 0)) / span
    return Watch((c1 - c0) / span, (f1 - f0) / span / n, (a1 - a0) / span / n, codecs, live1,
                 audio_rtp)


def first_frame_ms(python, vasd, cam, audio=False):
    """One decoding viewer: ms from its POST to its first frame, to its POST's answer, and
    with `audio` to its first audio frame."""
    args = ["--frames", "1", "--timeout", "30"]
    if audio:
        args += ["--audio", "--audio-frames", "1"]
    client = Client(python, vasd.url(f"/whep/{cam}"), args)
    client.proc.wait(60)
    time.sleep(0.2)
    first = client.first("first_frame")
    posted = client.first("answered")
    first_audio = client.first("first_audio")
    wait_for("the viewer to leave", lambda: vasd.live(cam).get("viewers") == 0)
    if not first or (audio and not first_audio):
        sys.exit(f"no frame decoded: {client.events}")
    return first[0]["ms"], posted[0]["post_ms"], first_audio[0]["ms"] if audio else None


def camera_toml(cam, url, extra=""):
    return f'[[camera]]\nid = "{cam}"\nurl = "{url}"\n{extra}'


def ratio(a, b):
    return f"{a / b:.2f}" if b > 0 else "-"


def run_default(a, python, media):
    counts = [int(n) for n in a.viewers.split(",")]
    seconds = a.seconds or 30
    server, rtsp_port = start_rtsp(media, [("cam", "cam1080.mp4")])
    vasd = None
    try:
        vasd = Vasd(a.vasd, f"[live]\nmax_viewers = {max(counts)}\n"
                    + camera_toml("cam", f"rtsp://127.0.0.1:{rtsp_port}/cam"))
        wait_for("the camera in the live view",
                 lambda: vasd.live("cam").get("gop_ms") and vasd.live("cam").get(
                     "profile_level_id"))
        print(f"live view CPU, one 1080p30 H.264 camera (4 Mbit/s), vasd {a.vasd}, "
              f"{seconds:.0f} s per row; viewers count frames, they do not decode")
        print(f"{'viewers':>8} {'vasd CPU % of a core':>21} {'per viewer':>11} "
              f"{'frames/s per viewer':>20}")
        time.sleep(a.warmup)
        idle = cpu_over(vasd.pid, seconds)
        print(f"{0:>8} {idle * 100:>21.1f} {'-':>11} {'-':>20}")
        for n in counts:
            w = measure_viewers(python, vasd, "cam", n, a.warmup, seconds)
            print(f"{n:>8} {w.cpu * 100:>21.1f} {(w.cpu - idle) * 100 / n:>11.2f} "
                  f"{w.fps:>20.1f}", flush=True)

        gop_ms = vasd.live("cam")["gop_ms"]
        trials = []
        for _ in range(a.trials):
            # Join at a random point of the GOP, as real viewers do; back-to-back trials
            # would otherwise all land at about the same phase.
            time.sleep(random.uniform(0, gop_ms / 1000))
            trials.append(first_frame_ms(python, vasd, "cam"))
        frames = sorted(t[0] for t in trials)
        posts = sorted(t[1] for t in trials)
        print(f"\ntime from WHEP POST to the first decoded frame ({a.trials} viewers one after "
              f"the other, decoding aiortc client)")
        print(f"{'GOP (ms)':>9} {'first frame min':>16} {'median':>8} {'max':>8} "
              f"{'POST answered (median)':>23}")
        print(f"{gop_ms:>9} {frames[0]:>16.0f} {statistics.median(frames):>8.0f} "
              f"{frames[-1]:>8.0f} {statistics.median(posts):>23.1f}")
    finally:
        if vasd is not None:
            vasd.close()
        server.kill()
        server.wait()


# The --audio cameras: (camera id, fixture mount, audio of the mount, extra camera TOML).
AUDIO_CAMERAS = [
    ("video", "video", None, ""),
    ("pcma", "pcma", "pcma", ""),
    ("aac", "aac", "aac", ""),
    ("aac_off", "aac", "aac", "live_audio = false\n"),
]
# What the live view reports (live.audio) and what a viewer is answered, per audio camera.
EXPECTED_AUDIO = {"video": (None, []), "pcma": ("pcma", ["pcma"]),
                  "aac": ("aac->opus", ["opus"]), "aac_off": (None, [])}


def run_audio(a, python):
    counts = [int(n) for n in (a.viewers or "1,10").split(",")]
    seconds = a.seconds or 20
    rounds = a.rounds or 1
    # A dict: aac_off shares the aac mount.
    mounts = list({mount: a.audio_video + (f",audio={kind}" if kind else "")
                   for _cam, mount, kind, _extra in AUDIO_CAMERAS}.items())
    server, rtsp_port = start_rtsp(None, [], live=mounts)
    vasd = None
    try:
        vasd = Vasd(a.vasd, f"[live]\nmax_viewers = {max(counts)}\n" + "".join(
            camera_toml(cam, f"rtsp://127.0.0.1:{rtsp_port}/{mount}", extra)
            for cam, mount, _kind, extra in AUDIO_CAMERAS))
        wait_for("the cameras in the live view", lambda: all(
            (c.get("live") or {}).get("gop_ms") for c in vasd.cameras().values()))
        time.sleep(3)  # fps_in and the bitrate are rates over the last seconds
        cams = vasd.cameras()
        print(f"live view audio, vasd {a.vasd}; the RTSP fixture's live mounts, video "
              f"{a.audio_video} H.264 (x264 ultrafast zerolatency), the same on every camera")
        for cam, mount, kind, extra in AUDIO_CAMERAS:
            c = cams[cam]
            live = c["live"]
            print(f"  {cam:<8} mount /{mount:<6} audio {kind or 'none':<5} "
                  f"{extra.strip() or '':<18} {c['fps_in']:.1f} fps "
                  f"{c['bitrate_kbps']:.0f} kbit/s GOP {live['gop_ms']} ms, live audio "
                  f"{live.get('audio')}")
            if live.get("audio") != EXPECTED_AUDIO[cam][0]:
                print(f"  note: {cam}'s live audio is {live.get('audio')}, expected "
                      f"{EXPECTED_AUDIO[cam][0]}")
        print(f"  the live video is the fixture's moving ball: "
              f"{cams['video']['bitrate_kbps']:.0f} kbit/s, far less than a real camera's 1-4 "
              f"Mbit/s, so per viewer video costs vasd less than it would and audio's share "
              f"looks larger")
        print(f"  {seconds:.0f} s per row after {a.warmup:.0f} s; count-only aiortc viewers "
              f"(audio viewers decode the audio); {os.cpu_count()} CPUs; load average "
              f"{os.getloadavg()[0]:.2f} at the start")

        time.sleep(a.warmup)
        idle = cpu_over(vasd.pid, seconds)
        print(f"\nvasd CPU per camera watched, against video only ({idle * 100:.1f} % of a "
              f"core with no viewer; added: CPU over that; x video: ratio to the video camera "
              f"at the same viewer count; fps: per viewer; audio RTP/s: the camera's audio "
              f"packets vasd sent, audio_rtp_packets_sent, once per camera, not per viewer)")
        print(f"{'camera':>8} {'viewers':>7} {'vasd CPU %':>10} {'x video':>7} "
              f"{'added %':>7} {'x video':>7} {'per viewer %':>12} {'video fps':>9} "
              f"{'audio fps':>9} {'answered':>8} {'audio RTP/s':>11} {'transcoding':>11}")
        base = {}
        for cam in ("video", "pcma", "aac"):
            for n in counts:
                w = measure_viewers(python, vasd, cam, n, a.warmup, seconds,
                                    audio=cam != "video")
                added = w.cpu - idle
                if cam == "video":
                    base[n] = w
                b = base[n]
                print(f"{cam:>8} {n:>7} {w.cpu * 100:>10.1f} {ratio(w.cpu, b.cpu):>7} "
                      f"{added * 100:>7.1f} {ratio(added, b.cpu - idle):>7} "
                      f"{added * 100 / n:>12.2f} {w.fps:>9.1f} "
                      f"{w.audio_fps if cam != 'video' else 0:>9.1f} "
                      f"{','.join(w.codecs) or '-':>8} {w.audio_rtp:>11.1f} "
                      f"{str(w.live.get('audio_transcoding')):>11}", flush=True)
                if cam != "video" and w.codecs != EXPECTED_AUDIO[cam][1]:
                    print(f"  note: {cam}'s viewers were answered {w.codecs}, expected "
                          f"{EXPECTED_AUDIO[cam][1]}")

        print(f"\ntranscode cost: one audio viewer of aac (AAC -> Opus) against one of aac_off "
              f"(live_audio = false: video only), {rounds} round(s)")
        print(f"{'round':>5} {'aac CPU %':>9} {'aac_off CPU %':>13} {'difference %':>12} "
              f"{'ratio':>6} {'transcoding':>11} {'aac_off answered':>16}")
        diffs = []
        for r in range(rounds):
            on = measure_viewers(python, vasd, "aac", 1, a.warmup, seconds, audio=True)
            transcoding = on.live.get("audio_transcoding")
            off = measure_viewers(python, vasd, "aac_off", 1, a.warmup, seconds, audio=True,
                                  want_audio=False)
            diffs.append(on.cpu - off.cpu)
            print(f"{r + 1:>5} {on.cpu * 100:>9.1f} {off.cpu * 100:>13.1f} "
                  f"{(on.cpu - off.cpu) * 100:>12.2f} {ratio(on.cpu, off.cpu):>6} "
                  f"{str(transcoding):>11} {','.join(off.codecs) or 'no audio':>16}",
                  flush=True)
        if rounds > 1:
            print(f"{'median':>5} {'':>9} {'':>13} {statistics.median(diffs) * 100:>12.2f}")
        after = vasd.live("aac")
        print(f"  after the viewers left: aac audio_transcoding = "
              f"{after.get('audio_transcoding')}")

        print(f"\ntime from the WHEP POST to the first frame ({a.trials} decoding viewers one "
              f"after the other per camera, joining at a random point of the GOP)")
        print(f"{'camera':>8} {'GOP ms':>6} {'video median':>12} {'max':>6} "
              f"{'audio median':>12} {'max':>6} {'POST answered':>13}")
        for cam in ("pcma", "aac"):
            gop_ms = vasd.live(cam)["gop_ms"]
            trials = []
            for _ in range(a.trials):
                time.sleep(random.uniform(0, gop_ms / 1000))
                trials.append(first_frame_ms(python, vasd, cam, audio=True))
            video = [t[0] for t in trials]
            posts = [t[1] for t in trials]
            audio = [t[2] for t in trials]
            print(f"{cam:>8} {gop_ms:>6} {statistics.median(video):>12.0f} {max(video):>6.0f} "
                  f"{statistics.median(audio):>12.0f} {max(audio):>6.0f} "
                  f"{statistics.median(posts):>13.1f}", flush=True)
    finally:
        if vasd is not None:
            vasd.close()
        server.kill()
        server.wait()


# cam_pcma.mkv with its audio in 20 ms packets; see idle_media.
IDLE_MEDIA = "cam_pcma20.mkv"


def idle_media(media):
    """cam_pcma.mkv with its audio in 160-sample (20 ms) blocks, 50 packets a second, as
    cameras send G.711: make_media.sh's file has blocks of 1024 samples (128 ms), 8 a second.
    The video is copied. Made once beside the other bench media (under a temporary name
    first, so a killed run leaves no half file)."""
    path = os.path.join(media, IDLE_MEDIA)
    if not os.path.exists(path):
        tmp = os.path.join(media, f".tmp-{os.getpid()}-{IDLE_MEDIA}")
        subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                        "-i", os.path.join(media, "cam_pcma.mkv"), "-map", "0", "-c:v", "copy",
                        "-af", "asetnsamples=n=160", "-c:a", "pcm_alaw", "-f", "matroska",
                        tmp], check=True)
        os.rename(tmp, path)
    return IDLE_MEDIA


def run_idle(a, media):
    n = a.idle
    seconds = a.seconds or 30
    rounds = a.rounds or 3
    names = [f"c{i}" for i in range(n)]
    server, rtsp_port = start_rtsp(media, [(name, idle_media(media)) for name in names])
    windows = {True: [], False: []}
    try:
        print(f"idle live view: {n} cameras, each a mount of {IDLE_MEDIA} (640x360 30 fps "
              f"H.264 800 kbit/s + 8 kHz G.711 A-law in 20 ms packets) on one RTSP fixture; "
              f"no viewer")
        print(f"  live = true (live view on, unwatched) against live = false, one vasd after "
              f"the other, {rounds} pair(s) alternating; {seconds:.0f} s windows after "
              f"{a.warmup:.0f} s; vasd {a.vasd}; {os.cpu_count()} CPUs; load average "
              f"{os.getloadavg()[0]:.2f} at the start")
        print(f"{'pair':>4} {'live':>5} {'vasd CPU %':>10} {'fixture CPU %':>13} "
              f"{'fps_in (all)':>12} {'audio pkts/s':>13} {'live units/s':>12} "
              f"{'live audio units/s':>18}")
        for r in range(rounds):
            # Alternate which configuration comes first, so a drift of the machine does not
            # always favour the same one.
            for live in ((False, True) if r % 2 == 0 else (True, False)):
                body = "".join(camera_toml(name, f"rtsp://127.0.0.1:{rtsp_port}/{name}",
                                           "" if live else "live = false\n")
                               for name in names)
                vasd = Vasd(a.vasd, body)
                try:
                    def ready():
                        cams = vasd.cameras()
                        # With live = false no role needs the audio, and vasd reads none
                        # (audio_packets stays 0).
                        return all(c["fps_in"] > 0 and (not live or (
                            c["audio_packets"] > 0 and (c.get("live") or {}).get("gop_ms")))
                                   for c in cams.values())
                    wait_for(f"{n} cameras streaming", ready)
                    time.sleep(a.warmup)
                    before = vasd.cameras()
                    s0, c0, t0 = (cpu_seconds(server.pid), cpu_seconds(vasd.pid),
                                  time.monotonic())
                    time.sleep(seconds)
                    s1, c1, t1 = (cpu_seconds(server.pid), cpu_seconds(vasd.pid),
                                  time.monotonic())
                    after = vasd.cameras()
                finally:
                    vasd.close()
                span = t1 - t0
                cpu = (c1 - c0) / span

                def live_rate(key):
                    return sum(((after[c].get("live") or {}).get(key, 0) or 0)
                               - ((before[c].get("live") or {}).get(key, 0) or 0)
                               for c in names) / span
                fps = sum(after[c]["fps_in"] for c in names)
                audio = sum(after[c]["audio_packets"] - before[c]["audio_packets"]
                            for c in names) / span
                windows[live].append(cpu)
                print(f"{r + 1:>4} {'true' if live else 'false':>5} {cpu * 100:>10.1f} "
                      f"{(s1 - s0) / span * 100:>13.1f} {fps:>12.0f} {audio:>13.0f} "
                      f"{live_rate('units_received'):>12.0f} "
                      f"{live_rate('audio_units_received'):>18.0f}", flush=True)
        on = statistics.median(windows[True])
        off = statistics.median(windows[False])
        pairs = [x / y for x, y in zip(windows[True], windows[False]) if y > 0]
        print(f"\nmedian vasd CPU: live on {on * 100:.1f} %, live off {off * 100:.1f} % of a "
              f"core; ratio on/off {on / off:.3f} (per pair {min(pairs):.3f} to "
              f"{max(pairs):.3f}); goal <= 1.02: {'met' if on / off <= 1.02 else 'NOT met'}")
    finally:
        server.kill()
        server.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--viewers", default=None,
                    help="viewer counts (default 1,10,25; 1,10 with --audio)")
    ap.add_argument("--seconds", type=float, default=None,
                    help="window per row (default 30; 20 with --audio)")
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--audio", action="store_true", help="what the camera's audio costs")
    ap.add_argument("--audio-video", default="1280x720@30",
                    help="the video of the --audio cameras, WxH@FPS")
    ap.add_argument("--idle", type=int, nargs="?", const=16, default=None, metavar="N",
                    help="N unwatched cameras with the live view on against off")
    ap.add_argument("--rounds", type=int, default=None,
                    help="alternating pairs of --idle (default 3) and of the transcode "
                         "comparison of --audio (default 1)")
    ap.add_argument("--target", default=target_dir())
    ap.add_argument("--vasd", default=None, help="default: <target>/release/vasd")
    a = ap.parse_args()
    a.vasd = a.vasd or os.path.join(a.target, "release/vasd")
    if not os.access(a.vasd, os.X_OK):
        sys.exit(f"{a.vasd} not found: cargo build --release (or --vasd PATH)")
    media = bench_media(a.target)
    first = True
    if not a.audio and a.idle is None:
        a.viewers = a.viewers or "1,10,25"
        run_default(a, venv_python(a.target), media)
        first = False
    if a.audio:
        if not first:
            print()
        run_audio(a, venv_python(a.target))
        first = False
    if a.idle is not None:
        if not first:
            print()
        run_idle(a, media)


if __name__ == "__main__":
    main()
