"""A WHEP client for VAS tests and benchmarks: N aiortc viewers of one vasd camera.

Usage (with the Python that has aiortc, see tests/live_support/mod.rs):

    whep_client.py URL [--viewers N] [--frames N] [--timeout S] [--hold] [--count-only]
                   [--token T] [--delete] [--audio [--audio-frames N]]

URL is the WHEP endpoint, e.g. http://127.0.0.1:8080/whep/front. Each viewer POSTs its own
offer, sets the answer, and receives the camera's video. Output is JSON lines on stdout:

    {"event": "answered", "viewer": 0, "location": "/whep/front/<id>", "post_ms": 12.5}
    {"event": "refused", "viewer": 0, "status": 409, "body": "..."}
    {"event": "first_frame", "viewer": 0, "ms": 1834.2, "width": 1280, "height": 720}
    {"event": "progress", "frames": [31, 30], "states": ["connected", "connected"],
     "decode_errors": 0}                                  (every 0.5 s)
    {"event": "done", "frames": [...], "sizes": [[1280, 720], ...], "decode_errors": 0}

--audio adds a recvonly audio transceiver to every offer, after the video one, and then:

    {"event": "first_audio", "viewer": 0, "ms": 1650.0, "codec": "pcma"}
    progress and done lines also carry "audio_frames": [50, 49] (decoded audio frames: aiortc
    decodes one per RTP packet, usually 20 ms), and done also "audio_rms": [0.57, 0.56] (the
    RMS of every sample decoded, full scale 1.0) and "audio_codecs": ["pcma", null]

The codec is the encoding name of the answer's m=audio (its first format), lower case; null
when the server rejected m=audio (port 0): such a viewer receives video alone, its
audio_frames stay 0 and its audio_rms is 0. --audio-frames N (default 0) makes success also
need N audio frames on every viewer. Without --audio the offers and the output are as above.

Without --hold it exits once every viewer has --frames frames (status 0) or at --timeout
(status 1). With --hold it keeps receiving until killed or --timeout, for tests that restart
the camera or kill the viewer. --count-only swaps aiortc's H.264 decoder for a counter of
complete access units: the jitter buffer and depacketizer still run, the decode does not,
so a benchmark's clients leave the CPU to vasd; audio is still decoded. --delete ends each
session with DELETE.

ICE runs on loopback only (tests run vasd on 127.0.0.1), and the client advertises H.264
High and Main besides aiortc's Constrained Baseline, as browsers do: aiortc's decoder is
FFmpeg's, which decodes every profile, but its default offer lists Baseline only.
"""

import argparse
import array
import asyncio
import json
import logging
import math
import operator
import re
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


# Encoding names of the static audio payload types (RFC 3551), for an m=audio without rtpmap.
STATIC_AUDIO = {0: "pcmu", 8: "pcma", 9: "g722"}


def is_rejected(section):
    """A media section that the answerer refused: port 0 (RFC 3264 6)."""
    return section[0].split()[1] == "0"


def split_sections(sdp):
    """The SDP's session part and its media sections, each a list of lines."""
    head, sections = [], []
    for line in sdp.splitlines():
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        elif line:
            head.append(line)
    return head, sections


def audio_codec(sections):
    """The encoding name of the first format of the accepted m=audio, lower case, or None
    when there is no m=audio or it is rejected (port 0)."""
    for section in sections:
        m = section[0].split()
        if m[0] != "m=audio":
            continue
        if len(m) < 4 or is_rejected(section):
            return None
        pt = m[3]
        for line in section:
            found = re.match(r"a=rtpmap:%s ([^/\s]+)" % re.escape(pt), line)
            if found:
                return found.group(1).lower()
        return STATIC_AUDIO.get(int(pt)) if pt.isdigit() else None
    return None


def sample_squares(frame):
    """(sum of squared samples, number of samples) of an av.AudioFrame, full scale 1.0.

    Read through the buffer protocol: frame.to_ndarray() needs numpy, which the venv does not
    have. aiortc's audio decoders (Opus, G.711, G.722) all produce s16; float formats are
    taken as they are. A plane's buffer may be padded: only samples * channels are used."""
    fmt = frame.format
    channels = len(frame.layout.channels)
    if fmt.name.startswith("s16"):
        typecode, scale = "h", 1 / 32768
    elif fmt.name.startswith("flt"):
        typecode, scale = "f", 1.0
    elif fmt.name.startswith("dbl"):
        typecode, scale = "d", 1.0
    else:
        return 0.0, 0
    per_plane = frame.samples if fmt.is_planar else frame.samples * channels
    total = 0.0
    count = 0
    for plane in frame.planes:
        values = array.array(typecode)
        values.frombytes(bytes(plane)[:per_plane * values.itemsize])
        total += sum(map(operator.mul, values, values)) * scale * scale
        count += len(values)
    return total, count


class Viewer:
    def __init__(self, n, url, token, count_only, audio=False):
        self.n = n
        self.url = url
        self.token = token
        self.count_only = count_only
        self.audio = audio
        self.frames = 0
        self.size = None
        self.location = None
        self.pc = None
        self.started = None
        self.audio_codec = None
        self.audio_frames = 0
        self.audio_squares = 0.0
        self.audio_samples = 0

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

    def count_audio(self, frame):
        self.audio_frames += 1
        squares, samples = sample_squares(frame)
        self.audio_squares += squares
        self.audio_samples += samples
        if self.audio_frames == 1:
            emit(event="first_audio", viewer=self.n,
                 ms=round((time.monotonic() - self.started) * 1000, 1), codec=self.audio_codec)

    def audio_rms(self):
        if not self.audio_samples:
            return 0.0
        return round(math.sqrt(self.audio_squares / self.audio_samples), 4)

    async def start(self):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc = pc
        pc.addTransceiver("video", direction="recvonly")
        if self.audio:
            pc.addTransceiver("audio", direction="recvonly")

        @pc.on("track")
        def on_track(track):
            if track.kind == "audio":
                asyncio.ensure_future(self.receive_audio(track))
            else:
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
        if self.audio:
            self.audio_codec = audio_codec(split_sections(body)[1])
        # The answer is applied exactly as vasd sent it: aiortc is the strict client that
        # shows whether it is valid (it refuses a whole answer over one bad section).
        await pc.setRemoteDescription(RTCSessionDescription(body, "answer"))
        return True

    async def receive(self, track):
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            self.count_frame(frame.width, frame.height)

    async def receive_audio(self, track):
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            self.count_audio(frame)

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
    ap.add_argument("--audio", action="store_true")
    ap.add_argument("--audio-frames", type=int, default=0)
    a = ap.parse_args()
    if a.audio_frames and not a.audio:
        ap.error("--audio-frames needs --audio")

    logging.getLogger("aiortc.rtcrtpreceiver").addHandler(DecodeErrors())
    add_h264_profiles()
    viewers = [Viewer(n, a.url, a.token, a.count_only, a.audio) for n in range(a.viewers)]
    if a.count_only:
        # aiortc 1.16's decoder thread calls rtcrtpreceiver.get_decoder(codec) once per
        # receiver (and again when the codec changes); only video decoders are replaced, audio
        # keeps aiortc's own. One video decoder per receiver thread; route each to its viewer
        # by creation order.
        pending = list(viewers)
        real_get_decoder = aiortc.rtcrtpreceiver.get_decoder

        def get_decoder(codec):
            if not codec.mimeType.lower().startswith("video/"):
                return real_get_decoder(codec)
            return CountingDecoder(pending.pop(0).count_frame if pending else (lambda: None))

        aiortc.rtcrtpreceiver.get_decoder = get_decoder

    started = await asyncio.gather(*(v.start() for v in viewers))
    if not all(started):
        return 2
    deadline = time.monotonic() + a.timeout
    ok = False
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        progress = dict(frames=[v.frames for v in viewers],
                        states=[v.pc.connectionState for v in viewers],
                        decode_errors=DecodeErrors.count)
        if a.audio:
            progress["audio_frames"] = [v.audio_frames for v in viewers]
        emit(event="progress", **progress)
        if not a.hold and all(v.frames >= a.frames and v.audio_frames >= a.audio_frames
                              for v in viewers):
            ok = True
            break
    done = dict(frames=[v.frames for v in viewers], sizes=[v.size for v in viewers],
                decode_errors=DecodeErrors.count)
    if a.audio:
        done.update(audio_frames=[v.audio_frames for v in viewers],
                    audio_rms=[v.audio_rms() for v in viewers],
                    audio_codecs=[v.audio_codec for v in viewers])
    emit(event="done", **done)
    if a.delete:
        await asyncio.gather(*(v.delete() for v in viewers))
    await asyncio.gather(*(v.pc.close() for v in viewers))
    return 0 if ok or a.hold else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
