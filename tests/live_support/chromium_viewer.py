"""Opens vasd's viewer page in headless Chromium and reports what every tile decodes.

Usage:  chromium_viewer.py URL --cameras a,b [--frames 30] [--timeout 90] [--chromium PATH]

Drives Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages
separated by NUL bytes on file descriptors 3 and 4), so no WebSocket library is needed. The
page's `window.vas.stats()` returns, per camera tile, the `framesDecoded`, `frameWidth` and
`frameHeight` of its `inbound-rtp` stats. Success (exit 0): every listed camera decoded
--frames frames, and two seconds later more (the video moves). Output: JSON lines with the
samples, then {"event": "done", "ok": true, "stats": {...}}.

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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("url")
    ap.add_argument("--cameras", required=True)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--timeout", type=float, default=90)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    a = ap.parse_args()
    cameras = [c for c in a.cameras.split(",") if c]
    if not os.access(a.chromium, os.X_OK):
        emit(event="done", ok=False, stats={},
             error="%s not found: install Debian's chromium (packaging/setup-debian.sh)"
             % a.chromium)
        return 1

    proc, cdp, profile = launch(a.chromium, a.url)
    ok = False
    stats = {}
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
        expr = "window.vas ? window.vas.stats() : null"

        def sample():
            r = cdp.call("Runtime.evaluate", {"expression": expr, "awaitPromise": True,
                                              "returnByValue": True}, session)
            return r.get("result", {}).get("value") or {}

        first = None
        while time.monotonic() < deadline:
            stats = sample()
            emit(event="sample", stats=stats)
            if first is None and all(stats.get(c, {}).get("framesDecoded", 0) >= a.frames
                                     for c in cameras):
                first = stats
                time.sleep(2)
                continue
            if first is not None:
                ok = all(stats[c]["framesDecoded"] > first[c]["framesDecoded"] for c in cameras)
                break
            time.sleep(1)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    emit(event="done", ok=ok, stats=stats)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
