"""Plays recordings in vasd's viewer page in headless Chromium and reports what it decodes.

Usage:  chromium_playback.py URL --camera front --at T1[,T2...] [--screenshot PATH]
                             [--timeout 60] [--chromium PATH]

URL is the viewer page (it may end in #token=...); T1, T2... are Unix seconds. For each moment
in order: wait until the page's Recordings section has drawn at least one span for the camera,
call `window.vas.play(camera, T)` (what a click on the bar at T does), then poll
`window.vas.playback()` until the player's currentTime has advanced by 2 s or more and it has
decoded more than 10 frames. --timeout is the budget of each moment, in seconds.

Output, JSON lines:
  {"event": "played", "at": T, "start": ..., "currentTime": ..., "framesDecoded": ...,
   "videoWidth": ..., "videoHeight": ..., "error": ..., "src": ...}  for each moment;
  {"event": "screenshot", "path": ..., "bytes": ...}  after the first moment, with --screenshot;
  {"event": "timeout", "at": T, "waiting_for": "spans" or "playback", ...last playback()...}
  or {"event": "error", "error": ...} and exit 1 when something does not happen.
Exit 0 when every moment played.

Chromium is started as chromium_viewer.py starts it (same flags, DevTools protocol on a pipe).
Its --autoplay-policy=no-user-gesture-required matters here: the page's muted <video> must
start without a user gesture.
"""

import argparse
import base64
import json
import os
import shutil
import sys
import time

# The same directory is on sys.path when this file is run as a script.
from chromium_viewer import emit, launch

POLL_S = 0.25


def moments(text):
    try:
        out = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("not a comma separated list of Unix seconds: %r" % text)
    if not out:
        raise argparse.ArgumentTypeError("no moment given")
    return out


class Page:
    """Evaluates JavaScript in the page that Chromium opened."""

    def __init__(self, cdp, session):
        self.cdp = cdp
        self.session = session

    def eval(self, expression):
        r = self.cdp.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                               "returnByValue": True}, self.session)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise RuntimeError("%s: %s" % (expression,
                                           d.get("exception", {}).get("description") or d))
        return r.get("result", {}).get("value")

    def playback(self):
        # Null until the page has loaded and defined window.vas.
        return self.eval("window.vas && window.vas.playback ? window.vas.playback() : null") or {}

    def screenshot(self, path):
        # The Recordings section is below the live grid, so the whole page is captured rather
        # than the window.
        size = self.cdp.call("Page.getLayoutMetrics", {}, self.session)["cssContentSize"]
        shot = self.cdp.call("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                     "scale": 1}}, self.session)
        data = base64.b64decode(shot["data"])
        with open(path, "wb") as f:
            f.write(data)
        return len(data)


def attach(cdp, deadline):
    page = None
    while page is None:
        targets = cdp.call("Target.getTargets")["targetInfos"]
        page = next((t for t in targets if t["type"] == "page"), None)
        if page is None:
            if time.monotonic() > deadline:
                raise RuntimeError("chromium opened no page")
            time.sleep(0.2)
    session = cdp.call("Target.attachToTarget",
                       {"targetId": page["targetId"], "flatten": True})["sessionId"]
    return Page(cdp, session)


def play_one(page, camera, at, timeout):
    """Plays `at`; returns (True, the played line) or (False, the timeout line)."""
    deadline = time.monotonic() + timeout
    state = page.playback()
    while state.get("spans", {}).get(camera, 0) < 1:
        if time.monotonic() > deadline:
            return False, dict(event="timeout", at=at, waiting_for="spans", **state)
        time.sleep(POLL_S)
        state = page.playback()

    started = page.eval("window.vas.play(%s, %s)" % (json.dumps(camera), json.dumps(at)))
    if not started:
        line = dict(event="error", at=at, **page.playback())
        line["error"] = "window.vas.play returned nothing: the page found no span"
        return False, line
    # A new src starts the element again from 0, but measuring from here does not depend on it.
    base = page.playback().get("currentTime", 0)
    while True:
        state = page.playback()
        # Until the element has taken the new src, its state is the previous clip's.
        current = state.get("src", "").endswith(started["src"])
        if (current and state.get("currentTime", 0) - base >= 2
                and state.get("framesDecoded", 0) > 10):
            return True, dict(event="played", at=at, start=started["start"],
                              currentTime=state["currentTime"],
                              framesDecoded=state["framesDecoded"],
                              videoWidth=state["videoWidth"], videoHeight=state["videoHeight"],
                              error=state["error"], src=state["src"])
        if time.monotonic() > deadline:
            return False, dict(event="timeout", at=at, waiting_for="playback", **state)
        time.sleep(POLL_S)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("url")
    ap.add_argument("--camera", required=True)
    ap.add_argument("--at", type=moments, required=True,
                    help="one or more Unix seconds, comma separated")
    ap.add_argument("--screenshot", help="write a PNG of the page here after the first moment")
    ap.add_argument("--timeout", type=float, default=60, help="seconds per moment")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    a = ap.parse_args()
    if not os.access(a.chromium, os.X_OK):
        emit(event="error", error="%s not found: install Debian's chromium "
             "(packaging/setup-debian.sh)" % a.chromium)
        return 1

    # A window wide enough for a readable 24-hour bar.
    proc, cdp, profile = launch(a.chromium, a.url, ["--window-size=1280,1024"])
    try:
        page = attach(cdp, time.monotonic() + a.timeout)
        for i, at in enumerate(a.at):
            ok, line = play_one(page, a.camera, at, a.timeout)
            emit(**line)
            if not ok:
                return 1
            if i == 0 and a.screenshot:
                emit(event="screenshot", path=a.screenshot, bytes=page.screenshot(a.screenshot))
        return 0
    except RuntimeError as e:
        emit(event="error", error=str(e))
        return 1
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
