"""Opens vasd's viewer page in headless Chromium and reports what every tile decodes.

Usage:  chromium_viewer.py URL --cameras a,b [--frames 30] [--timeout 90] [--chromium PATH]
                           [--seconds S] [--audio] [--no-nack]

Drives Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages
separated by NUL bytes on file descriptors 3 and 4), so no WebSocket library is needed.
Chromium starts on about:blank and is then sent to URL, so that --no-nack's script is in
place before the page's own. The page's `window.vas.stats()` returns, per camera tile, the
video `inbound-rtp` counters (`framesDecoded`, `frameWidth`, `frameHeight`, `framesReceived`,
`framesDropped`, `packetsReceived`, `packetsLost`, `nackCount`, `pliCount`, `freezeCount`,
`totalFreezesDuration`), `muted`, and `audio`: the audio `inbound-rtp` (`packetsReceived`,
`packetsLost`, `audioLevel`, `totalAudioEnergy`, `totalSamplesReceived`, `concealedSamples`,
`codec`) or null.

Success (exit 0): every listed camera decoded --frames frames, and two seconds later more
(the video moves). Output: JSON lines with the samples (one a second), then
{"event": "done", "ok": true, "stats": {...}}. --timeout bounds the whole wait.

--seconds S replaces that criterion by a measurement: once every listed camera decoded its
first frame (within --timeout), the stats are sampled every 100 ms for S seconds, and per
camera the longest time during which framesDecoded did not grow is kept: the longest time
between two samples that saw it grow, or from the window's start to the first, or from the
last to the window's end. Its resolution is the sample period, so moving video shows about
100 ms. The samples are printed once a second; the done line is
    {"event": "done", "ok": true, "window_ms": 10003.2, "stats": {...last...},
     "cameras": {"a": {"first": {...}, "last": {...}, "longest_stall_ms": 135.0}, ...}}
with first and last the camera's stats at the window's start and end; ok when every camera
decoded more frames at the end than at the start.

--audio also needs, at the end, stats.audio.packetsReceived > 0 and totalAudioEnergy > 0 on
every listed camera: a signal that is not silence was received and decoded. The tiles are
unmuted for that (window.vas.unmute; see stats_expression for why); without --seconds the
wait for --frames also waits for that audio.

--no-nack removes every `a=rtcp-fb:<pt> nack` line (generic NACK only; `nack pli` stays)
from the SDP offers the page POSTs, so the server never retransmits to it: the baseline of a
loss benchmark. The done line then also has "nack_lines_removed", counted over all offers.

Runs as root, so with --no-sandbox; --allow-loopback-in-peer-connection lets WebRTC use the
loopback interface, where the tests run vasd.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def emit(**fields):
    print(json.dumps(fields), flush=True)


class Cdp:
    """A DevTools protocol client over Chromium's debugging pipe."""

    def __init__(self, proc, to_chrome, from_chrome):
        self.proc = proc
        self.w = os.fdopen(to_chrome, "wb", buffering=0)
        self.r = os.fdopen(from_chrome, "rb", buffering=0)
        self.buf = b""
        self.next_id = 0

    def _read(self):
        while b"\0" not in self.buf:
            chunk = self.r.read(65536)
            if not chunk:
                raise RuntimeError("chromium closed the debugging pipe (it exited?)")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.w.write(json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply.get("result", {})


def launch(chromium, url, extra_flags=()):
    """Starts headless Chromium on `url` with the DevTools protocol on a pipe; returns the
    process, a Cdp on it, and the profile directory to remove afterwards."""
    profile = tempfile.mkdtemp(prefix="vas-chromium-")
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--mute-audio", "--autoplay-policy=no-user-gesture-required",
            "--allow-loopback-in-peer-connection", *extra_flags, "--user-data-dir=" + profile,
            "--remote-debugging-pipe", url]
    # bash puts the pipe ends at the descriptors Chromium expects (3: commands, 4: replies).
    proc = subprocess.Popen(
        ["/bin/bash", "-c", 'exec "$@" 3<&%d 4>&%d' % (to_chrome_r, from_chrome_w), "bash"]
        + args,
        pass_fds=(to_chrome_r, from_chrome_w), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    return proc, Cdp(proc, to_chrome_w, from_chrome_r), profile


# Wraps window.fetch before the page's scripts run. Generic NACK is `a=rtcp-fb:PT nack` with
# nothing after it; `nack pli` (key frame requests) must stay.
NO_NACK_SCRIPT = r"""
(() => {
  const realFetch = window.fetch;
  window.vasNackLinesRemoved = 0;
  window.fetch = function (input, init) {
    if (init && typeof init.body === "string" &&
        String(init.method || "GET").toUpperCase() === "POST") {
      const type = new Headers(init.headers || {}).get("Content-Type") || "";
      if (type.toLowerCase().split(";")[0].trim() === "application/sdp") {
        const body = init.body.replace(/^a=rtcp-fb:\d+ nack\r?\n/gm, () => {
          window.vasNackLinesRemoved += 1;
          return "";
        });
        init = Object.assign({}, init, { body });
      }
    }
    return realFetch.call(this, input, init);
  };
})();
"""

STALL_SAMPLE_S = 0.1
STALL_PRINT_S = 1.0


# Why --audio unmutes the tiles, as measured with Chromium 156 headless: while the element is
# muted, the audio inbound-rtp counts packets and totalSamplesReceived (the audio is decoded
# and pulled), but audioLevel and totalAudioEnergy stay 0, with or without --mute-audio.
# Unmuted, they follow the signal, also with --mute-audio: audioLevel 0.80 for the fixture's
# G.711 sine at 0.8 of full scale, 0.26 and 0.37 for Opus and PCMA sines peaking there. So the
# level is taken after the element's volume, which muting sets to 0, and --mute-audio only
# silences the output device: --audio unmutes and keeps --mute-audio, the host stays quiet.
# Without --autoplay-policy=no-user-gesture-required, unmuting from a script (no user
# gesture) pauses the element and the energy stays 0.
def stats_expression(cameras, unmute):
    """JavaScript for window.vas.stats(); with `unmute`, it also unmutes the listed cameras'
    tiles that are muted (they exist only after the page's first /api/cameras reply)."""
    if not unmute:
        return "window.vas ? window.vas.stats() : null"
    return ("window.vas ? window.vas.stats().then((s) => { for (const c of %s) "
            "if (s[c] && s[c].muted) window.vas.unmute(c); return s; }) : null"
            % json.dumps(cameras))


def has_audio(stats, camera):
    audio = (stats.get(camera) or {}).get("audio") or {}
    return audio.get("packetsReceived", 0) > 0 and audio.get("totalAudioEnergy", 0) > 0


def frames(stats, camera):
    return (stats.get(camera) or {}).get("framesDecoded", 0)


def wait_for_frames(sample, cameras, need_frames, need_audio, deadline):
    """Default criterion: every camera has `need_frames` (and with `need_audio` a non-silent
    signal), then two seconds later more frames. Returns (ok, last stats)."""
    first = None
    stats = {}
    while time.monotonic() < deadline:
        stats = sample()
        emit(event="sample", stats=stats)
        if first is None and all(frames(stats, c) >= need_frames and
                                 (not need_audio or has_audio(stats, c)) for c in cameras):
            first = stats
            time.sleep(2)
            continue
        if first is not None:
            ok = all(frames(stats, c) > frames(first, c) for c in cameras)
            return ok and (not need_audio or all(has_audio(stats, c) for c in cameras)), stats
        time.sleep(1)
    return False, stats


def measure_window(sample, cameras, seconds, need_audio, deadline):
    """--seconds: waits for every camera's first frame, then samples for `seconds`. Returns
    (ok, fields of the done line)."""
    stats = {}
    while True:
        stats = sample()
        emit(event="sample", stats=stats)
        if all(frames(stats, c) >= 1 for c in cameras):
            break
        if time.monotonic() >= deadline:
            return False, {"stats": stats, "error": "not every camera decoded a frame"}
        time.sleep(1)

    first = stats
    start = time.monotonic()
    # Per camera: the sample at which framesDecoded last grew (the window's start counts as
    # one), and the longest time between two such samples or until the window's end.
    grew_at = {c: start for c in cameras}
    seen = {c: frames(first, c) for c in cameras}
    longest = {c: 0.0 for c in cameras}
    next_sample = start
    next_print = start + STALL_PRINT_S
    now = start
    while now - start < seconds:
        # A slow sample delays the next one rather than causing a burst of catching up.
        next_sample = max(next_sample + STALL_SAMPLE_S, time.monotonic())
        time.sleep(max(0.0, next_sample - time.monotonic()))
        stats = sample()
        now = time.monotonic()
        for c in cameras:
            if frames(stats, c) > seen[c]:
                seen[c] = frames(stats, c)
                longest[c] = max(longest[c], now - grew_at[c])
                grew_at[c] = now
        if now >= next_print:
            emit(event="sample", stats=stats)
            next_print += STALL_PRINT_S
    for c in cameras:
        longest[c] = max(longest[c], now - grew_at[c])
    ok = all(frames(stats, c) > frames(first, c) for c in cameras)
    if need_audio:
        ok = ok and all(has_audio(stats, c) for c in cameras)
    per_camera = {c: {"first": first.get(c), "last": stats.get(c),
                      "longest_stall_ms": round(longest[c] * 1000, 1)} for c in cameras}
    return ok, {"window_ms": round((now - start) * 1000, 1), "stats": stats,
                "cameras": per_camera}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("url")
    ap.add_argument("--cameras", required=True)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--timeout", type=float, default=90)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--seconds", type=float, default=None,
                    help="measure the longest stall over S seconds instead of --frames")
    ap.add_argument("--audio", action="store_true",
                    help="also require a decoded, non-silent audio signal on every camera")
    ap.add_argument("--no-nack", action="store_true",
                    help="offer no generic NACK, so the server never retransmits")
    a = ap.parse_args()
    cameras = [c for c in a.cameras.split(",") if c]
    if not os.access(a.chromium, os.X_OK):
        emit(event="done", ok=False, stats={},
             error="%s not found: install Debian's chromium (packaging/setup-debian.sh)"
             % a.chromium)
        return 1

    proc, cdp, profile = launch(a.chromium, "about:blank")
    ok = False
    done = {"stats": {}}
    try:
        deadline = time.monotonic() + a.timeout
        page = None
        while page is None and time.monotonic() < deadline:
            targets = cdp.call("Target.getTargets")["targetInfos"]
            page = next((t for t in targets if t["type"] == "page"), None)
            if page is None:
                time.sleep(0.2)
        session = cdp.call("Target.attachToTarget",
                           {"targetId": page["targetId"], "flatten": True})["sessionId"]
        cdp.call("Page.enable", {}, session)
        if a.no_nack:
            cdp.call("Page.addScriptToEvaluateOnNewDocument", {"source": NO_NACK_SCRIPT},
                     session)
        cdp.call("Page.navigate", {"url": a.url}, session)

        def evaluate(expr):
            r = cdp.call("Runtime.evaluate", {"expression": expr, "awaitPromise": True,
                                              "returnByValue": True}, session)
            return r.get("result", {}).get("value")

        expr = stats_expression(cameras, a.audio)

        def sample():
            return evaluate(expr) or {}

        if a.seconds is None:
            ok, stats = wait_for_frames(sample, cameras, a.frames, a.audio, deadline)
            done = {"stats": stats}
        else:
            ok, done = measure_window(sample, cameras, a.seconds, a.audio, deadline)
        if a.no_nack:
            done["nack_lines_removed"] = evaluate("window.vasNackLinesRemoved") or 0
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    emit(event="done", ok=ok, **done)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
