"""A WHEP client for VAS tests and benchmarks: N aiortc viewers of one vasd camera.

Usage (with the Python that has aiortc, see tests/live_support/mod.rs):

    whep_client.py URL [--viewers N] [--frames N] [--timeout S] [--hold] [--count-only]
                   [--token T] [--delete]

URL is the WHEP endpoint, e.g. http://127.0.0.1:8080/whep/front. Each viewer POSTs its own
offer, sets the answer, and receives the camera's video. Output is JSON lines on stdout:

    {"event": "answered", "viewer": 0, "location": "/whep/front/<id>", "post_ms": 12.5}
    {"event": "refused", "viewer": 0, "status": 409, "body": "..."}
    {"event": "first_frame", "viewer": 0, "ms": 1834.2, "width": 1280, "height": 720}
    {"event": "progress", "frames": [31, 30], "states": ["connected", "connected"],
     "decode_errors": 0}                                  (every 0.5 s)
    {"event": "done", "frames": [...], "sizes": [[1280, 720], ...], "decode_errors": 0}

Without --hold it exits once every viewer has --frames frames (status 0) or at --timeout
(status 1). With --hold it keeps receiving until killed or --timeout, for tests that restart
the camera or kill the viewer. --count-only swaps aiortc's H.264 decoder for a counter of
complete access units: the jitter buffer and depacketizer still run, the decode does not,
so a benchmark's clients leave the CPU to vasd. --delete ends each session with DELETE.

ICE runs on loopback only (tests run vasd on 127.0.0.1), and the client advertises H.264
High and Main besides aiortc's Constrained Baseline, as browsers do: aiortc's decoder is
FFmpeg's, which decodes every profile, but its default offer lists Baseline only.
"""

import argparse
import asyncio
import json
import logging
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import aioice.ice
import aiortc.codecs
import aiortc.rtcrtpreceiver
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpCodecParameters
from aiortc import RTCSessionDescription
from aiortc.rtcrtpparameters import RTCRtcpFeedback

aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


def emit(**fields):
    print(json.dumps(fields), flush=True)


class DecodeErrors(logging.Handler):
    """Counts aiortc's "failed to decode" warnings: corrupted or incomplete frames."""

    count = 0

    def emit(self, record):
        if "failed to decode" in record.getMessage():
            DecodeErrors.count += 1


def add_h264_profiles():
    """Appends H.264 High and Main (packetization-mode 1) to aiortc's video codecs."""
    video = aiortc.codecs.CODECS["video"]
    used = {c.payloadType for c in video}
    pt = 120
    for profile_level_id in ("640032", "4d001f"):
        while pt in used or pt + 1 in used:
            pt -= 2
        video.append(RTCRtpCodecParameters(
            mimeType="video/H264", clockRate=90000, payloadType=pt,
            rtcpFeedback=[RTCRtcpFeedback(type="nack"),
                          RTCRtcpFeedback(type="nack", parameter="pli")],
            parameters={"level-asymmetry-allowed": "1", "packetization-mode": "1",
                        "profile-level-id": profile_level_id}))
        video.append(RTCRtpCodecParameters(
            mimeType="video/rtx", clockRate=90000, payloadType=pt + 1,
            parameters={"apt": pt}))
        used |= {pt, pt + 1}


class CountingDecoder:
    """Stands in for the H.264 decoder: counts complete frames, decodes nothing."""

    def __init__(self, viewer_frames):
        self.viewer_frames = viewer_frames

    def decode(self, encoded_frame):
        self.viewer_frames()
        return []


class Viewer:
    def __init__(self, n, url, token, count_only):
        self.n = n
        self.url = url
        self.token = token
        self.count_only = count_only
        self.frames = 0
        self.size = None
        self.location = None
        self.pc = None
        self.started = None

    def count_frame(self, width=0, height=0):
        self.frames += 1
        if self.frames == 1:
            emit(event="first_frame", viewer=self.n,
                 ms=round((time.monotonic() - self.started) * 1000, 1),
                 width=width, height=height)
            self.size = [width, height]

    def _post(self, sdp):
        headers = {"Content-Type": "application/sdp"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        req = urllib.request.Request(self.url, data=sdp.encode(), method="POST",
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=15) as r:
                return r.status, r.headers.get("Location"), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, None, e.read().decode()

    async def start(self):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc = pc
        pc.addTransceiver("video", direction="recvonly")

        @pc.on("track")
        def on_track(track):
            asyncio.ensure_future(self.receive(track))

        await pc.setLocalDescription(await pc.createOffer())
        self.started = time.monotonic()
        status, location, body = await asyncio.to_thread(self._post, pc.localDescription.sdp)
        if status != 201:
            emit(event="refused", viewer=self.n, status=status, body=body.strip())
            return False
        self.location = urllib.parse.urljoin(self.url, location)
        emit(event="answered", viewer=self.n, location=location,
             post_ms=round((time.monotonic() - self.started) * 1000, 1))
        await pc.setRemoteDescription(RTCSessionDescription(body, "answer"))
        return True

    async def receive(self, track):
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            self.count_frame(frame.width, frame.height)

    async def delete(self):
        if not self.location:
            return
        headers = {"Authorization": "Bearer " + self.token} if self.token else {}
        req = urllib.request.Request(self.location, method="DELETE", headers=headers)
        try:
            await asyncio.to_thread(urllib.request.urlopen, req, None, 10)
        except urllib.error.URLError:
            pass


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("url")
    ap.add_argument("--viewers", type=int, default=1)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--hold", action="store_true")
    ap.add_argument("--count-only", action="store_true")
    ap.add_argument("--delete", action="store_true")
    ap.add_argument("--token", default="")
    a = ap.parse_args()

    logging.getLogger("aiortc.rtcrtpreceiver").addHandler(DecodeErrors())
    add_h264_profiles()
    viewers = [Viewer(n, a.url, a.token, a.count_only) for n in range(a.viewers)]
    if a.count_only:
        # One decoder per receiver thread; route each to its viewer by creation order.
        pending = list(viewers)
        aiortc.rtcrtpreceiver.get_decoder = lambda codec: CountingDecoder(
            pending.pop(0).count_frame if pending else (lambda: None))

    started = await asyncio.gather(*(v.start() for v in viewers))
    if not all(started):
        return 2
    deadline = time.monotonic() + a.timeout
    ok = False
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        emit(event="progress", frames=[v.frames for v in viewers],
             states=[v.pc.connectionState for v in viewers],
             decode_errors=DecodeErrors.count)
        if not a.hold and all(v.frames >= a.frames for v in viewers):
            ok = True
            break
    emit(event="done", frames=[v.frames for v in viewers],
         sizes=[v.size for v in viewers], decode_errors=DecodeErrors.count)
    if a.delete:
        await asyncio.gather(*(v.delete() for v in viewers))
    await asyncio.gather(*(v.pc.close() for v in viewers))
    return 0 if ok or a.hold else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
