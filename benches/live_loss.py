#!/usr/bin/python3
"""What a live viewer sees on a lossy link, with retransmission (NACK) and without.

Setup: a network namespace of its own (vas-loss-bench-<pid>: its loopback, and a veth pair
that leads nowhere because Chromium starts no ICE without some interface besides lo) holds the
RTSP fixture (tests/fixtures/rtsp_server.py looping --media, default cam1080.mp4: 1920x1080,
30 fps, H.264 High, 4 Mbit/s, a key frame every 60 frames = 2 s, as cameras send), one vasd
with the live view on (its WebRTC ports limited to 40000-40099) and headless Chromium on
vasd's viewer page (tests/live_support/chromium_viewer.py --seconds S), all on the
namespace's own 127.0.0.1, so the loss touches nothing else on the machine.

Loss: an nftables rule in the namespace drops N % of the UDP datagrams whose source port is
one of vasd's, at random, on the input hook (where they arrive: a drop at output would fail
vasd's send() call, which a real lossy link never does):

    table inet vasloss { chain in { type filter hook input priority 0; policy accept;
        udp sport 40000-40099 numgen random mod 100 < N counter drop } }

So only what vasd sends to the viewer is lost: the media, the retransmissions and vasd's
RTCP. What the viewer sends (its NACKs, PLIs and receiver reports) travels the other way and
is never dropped. The namespace's ephemeral ports are moved above 40099 (ip_local_port_range)
so that no socket of Chromium or the fixture can land in vasd's range and be hit by the rule.

For each loss of --loss and each mode, one Chromium viewer watches for --seconds:
  retransmission on   the page as it is: its offer has generic NACK, vasd answers NACKs
                      from mediasoup's send buffer (no RTX: the same SSRC and sequence number)
  off (the baseline)  chromium_viewer.py --no-nack strips `a=rtcp-fb:PT nack` from the offer
                      it POSTs, so vasd never retransmits; key frame requests (nack pli)
                      stay. Chromium still sends NACKs then (its receiver follows its own
                      offer, which keeps the lines), and vasd ignores them: the lost packets
                      it counts are about the datagrams dropped
and the figures are the deltas of the video inbound-rtp over the window:
  decoded     framesDecoded / (window * fps_in), fps_in the camera's rate in /api/cameras
  freezes     freezeCount, and totalFreezesDuration in ms (WebRTC's definition: a frame
              later than max(3 x the mean frame interval, mean + 150 ms)); a freeze counts
              when the next frame comes, so one still going on at the window's end is not in
              them (the stall is)
  stall       longest time framesDecoded did not grow (sampled every 100 ms)
  NACKs, lost, PLIs, dropped by Chromium (framesDropped), and the datagrams the rule dropped
              (its counter read when the viewer reports its window's start and its end)
Then, per loss, the ratios with/without retransmission, and whether the goal holds: at 2 %
loss with retransmission, at least 97 % of the frames decoded and no stall over 500 ms.

Chromium decodes in software here (headless, --disable-gpu): at 1080p30 it needs most of a
core. When even 0 % loss decodes well under 100 %, the machine cannot keep up and the
figures measure the CPU, not the loss: --media cam720.mp4 (1280x720 30 fps, GOP 1 s) is the
lighter camera.

Must run as root (network namespace, nftables). Needs a release vasd (cargo build --release;
--vasd, default <target>/release/vasd with --target $CARGO_TARGET_DIR or ./target), Debian's
chromium, nft, ip and curl. Leaves no namespace behind, also on Ctrl-C.

Usage: benches/live_loss.py [--loss 0,2,5] [--seconds 20] [--rounds 1] [--media cam1080.mp4]
                            [--json] [--vasd PATH] [--target DIR]
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

from benchlib import ROOT, Vasd, bench_media, start_rtsp, target_dir, wait_for

VIEWER = os.path.join(ROOT, "tests/live_support/chromium_viewer.py")
PORT_MIN, PORT_MAX = 40000, 40099
CAMERA = "cam"
# Goal of the live view on a lossy link (see the docstring).
GOAL_LOSS, GOAL_DECODED, GOAL_STALL_MS = 2, 0.97, 500.0
# Chromium's ICE consent check to vasd runs every few seconds; vasd drops a viewer after
# 15 s without one (live::runtime ICE_CONSENT_TIMEOUT_S), which is how a killed viewer
# leaves: until then vasd keeps sending to it, and the rule would count those drops.
LEAVE_TIMEOUT_S = 40


class Netns:
    """A network namespace of this benchmark, with its loopback up."""

    def __init__(self, name):
        self.name = name
        self.prefix = ["ip", "netns", "exec", name]
        subprocess.run(["ip", "netns", "add", name], check=True)
        try:
            self.run(["ip", "link", "set", "lo", "up"])
            # Chromium 156 never starts ICE in a namespace whose only interface is the
            # loopback (its connectionState stays "new", even with
            # --allow-loopback-in-peer-connection); any other interface that is up is enough.
            # A veth pair with both ends here: it leads nowhere, nothing is sent on it.
            self.run(["ip", "link", "add", "vasloss0", "type", "veth", "peer", "name",
                      "vasloss1"])
            self.run(["ip", "addr", "add", "10.255.0.1/30", "dev", "vasloss0"])
            self.run(["ip", "link", "set", "vasloss0", "up"])
            self.run(["ip", "link", "set", "vasloss1", "up"])
            # Ephemeral ports above vasd's range: see the docstring.
            self.run(["sysctl", "-qw", f"net.ipv4.ip_local_port_range={PORT_MAX + 901} 60999"])
        except BaseException:
            self.delete()
            raise

    def run(self, args, stdin=None):
        out = subprocess.run(self.prefix + args, input=stdin, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def popen(self, args, **kwargs):
        return subprocess.Popen(self.prefix + list(args), **kwargs)

    def set_loss(self, percent):
        """Replaces the loss rule by one dropping `percent` % (its counter starts at 0)."""
        try:
            self.run(["nft", "delete", "table", "inet", "vasloss"])
        except RuntimeError:
            pass  # not there yet
        self.run(["nft", "-f", "-"], stdin=(
            "table inet vasloss {\n"
            "  chain in {\n"
            "    type filter hook input priority 0; policy accept;\n"
            f"    udp sport {PORT_MIN}-{PORT_MAX} numgen random mod 100 < {percent} "
            "counter drop\n"
            "  }\n"
            "}\n"))

    def dropped(self):
        """Datagrams the loss rule dropped since it was set."""
        table = self.run(["nft", "list", "table", "inet", "vasloss"])
        found = re.search(r"counter packets (\d+)", table)
        return int(found.group(1)) if found else 0

    def delete(self):
        """Ends what still runs in the namespace (only this benchmark's processes run there),
        then deletes it."""
        pids = subprocess.run(["ip", "netns", "pids", self.name], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True).stdout.split()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(int(pid), sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while pids and time.monotonic() < deadline:
                pids = [p for p in pids if os.path.exists(f"/proc/{p}")]
                time.sleep(0.1)
        subprocess.run(["ip", "netns", "del", self.name], check=False)


def delta(window, key):
    first = window.get("first") or {}
    last = window.get("last") or {}
    return (last.get(key) or 0) - (first.get(key) or 0)


def frames(stats):
    return ((stats or {}).get(CAMERA) or {}).get("framesDecoded", 0)


def watch(ns, vasd, seconds, no_nack, timeout):
    """One Chromium viewer for `seconds`: returns its done line, the datagrams the rule
    dropped during its window, and whether the viewer decoded nothing at all.

    A viewer that decodes no frame within `timeout` (at high loss without retransmission no
    key frame may arrive whole) has no window: its done line then gets one made up here, from
    its first sample (the page is up) to its end, with every counter since the session began
    and that whole time as its stall."""
    args = ["/usr/bin/python3", VIEWER, vasd.url("/"), "--cameras", CAMERA,
            "--seconds", str(seconds), "--timeout", str(timeout)]
    if no_nack:
        args.append("--no-nack")
    at_launch = ns.dropped()
    proc = ns.popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    # chromium_viewer.py ends by itself; this only bounds a hang.
    guard = threading.Timer(timeout + seconds + 60, proc.kill)
    guard.start()
    at_start = None
    first_sample = None
    done = None
    dropped = 0
    try:
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "sample" and first_sample is None:
                first_sample = time.monotonic()
            # The viewer's window starts right after the first sample with a decoded frame.
            if event.get("event") == "sample" and at_start is None and \
                    frames(event.get("stats")) >= 1:
                at_start = ns.dropped()
            elif event.get("event") == "done":
                dropped = ns.dropped() - (at_launch if at_start is None else at_start)
                done = event
                ended = time.monotonic()
        proc.wait()
    finally:
        guard.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if done is None:
        sys.exit("chromium_viewer.py ended without a done line")
    blank = (not done.get("ok") and at_start is None and first_sample is not None
             and (done.get("stats") or {}).get(CAMERA))
    if blank:
        waited_ms = round((ended - first_sample) * 1000, 1)
        done["window_ms"] = waited_ms
        done["cameras"] = {CAMERA: {"first": {}, "last": done["stats"][CAMERA],
                                    "longest_stall_ms": waited_ms}}
    elif "cameras" not in done:
        # Not a window that saw no new frame (a measurement too): the viewer itself failed.
        sys.exit(f"the viewer failed: {json.dumps(done)[:2000]}")
    return done, dropped, bool(blank)


class Row:
    """The sums of one (loss, mode) over the rounds."""

    KEYS = ("framesDecoded", "freezeCount", "totalFreezesDuration", "nackCount", "packetsLost",
            "pliCount", "framesDropped", "packetsReceived")

    def __init__(self, loss, retransmit):
        self.loss = loss
        self.retransmit = retransmit
        self.window_s = 0.0
        self.expected = 0.0
        self.sums = {k: 0 for k in self.KEYS}
        self.longest_stall_ms = 0.0
        self.dropped = 0
        self.fps = []
        self.nack_lines_removed = 0
        self.blank = 0  # viewers that decoded no frame at all

    def add(self, done, dropped, fps, blank):
        self.blank += blank
        window = done["cameras"][CAMERA]
        seconds = done["window_ms"] / 1000
        self.window_s += seconds
        self.expected += seconds * fps
        self.fps.append(fps)
        for k in self.KEYS:
            self.sums[k] += delta(window, k)
        self.longest_stall_ms = max(self.longest_stall_ms, window["longest_stall_ms"])
        self.dropped += dropped
        self.nack_lines_removed += done.get("nack_lines_removed", 0)

    def decoded(self):
        return self.sums["framesDecoded"] / self.expected if self.expected else 0.0

    def freeze_ms(self):
        return self.sums["totalFreezesDuration"] * 1000  # WebRTC counts it in seconds

    def as_dict(self):
        return {"loss_percent": self.loss, "retransmission": self.retransmit,
                "window_s": round(self.window_s, 2),
                "fps_in": round(sum(self.fps) / len(self.fps), 2),
                "decoded_share": round(self.decoded(), 4),
                "frames_decoded": self.sums["framesDecoded"],
                "frames_expected": round(self.expected, 1),
                "freezes": self.sums["freezeCount"], "freeze_ms": round(self.freeze_ms()),
                "longest_stall_ms": self.longest_stall_ms, "nacks": self.sums["nackCount"],
                "packets_lost": self.sums["packetsLost"], "plis": self.sums["pliCount"],
                "frames_dropped": self.sums["framesDropped"],
                "packets_received": self.sums["packetsReceived"],
                "datagrams_dropped": self.dropped, "viewers_without_a_frame": self.blank}


def chromium_version(path):
    out = subprocess.run([path, "--version"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout.strip()
    return out or "?"


def ratio(a, b):
    return f"{a / b:.2f}" if b else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loss", default="0,2,5", help="loss percentages, comma-separated")
    ap.add_argument("--seconds", type=float, default=20, help="window per viewer")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat every (loss, mode) this often; the rows sum the rounds")
    ap.add_argument("--media", default="cam1080.mp4", help="a file of the bench media")
    ap.add_argument("--json", action="store_true", help="also print the rows as JSON")
    ap.add_argument("--target", default=target_dir())
    ap.add_argument("--vasd", default=None, help="default: <target>/release/vasd")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--timeout", type=float, default=30,
                    help="how long a viewer may wait for its first frame")
    a = ap.parse_args()
    losses = [int(x) for x in a.loss.split(",") if x != ""]
    vasd_bin = a.vasd or os.path.join(a.target, "release/vasd")
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark makes a network namespace and nftables rules")
    for tool in ("ip", "nft", "curl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found")
    if not os.access(vasd_bin, os.X_OK):
        sys.exit(f"{vasd_bin} not found: cargo build --release (or --vasd PATH)")
    if not os.access(a.chromium, os.X_OK):
        sys.exit(f"{a.chromium} not found: install Debian's chromium")
    media = bench_media(a.target)
    if not os.path.exists(os.path.join(media, a.media)):
        sys.exit(f"no {a.media} in {media}")

    # Ctrl-C raises KeyboardInterrupt (also when started in the background, where the shell
    # ignores SIGINT for it); SIGTERM becomes SystemExit: both reach the finally.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ns = Netns(f"vas-loss-bench-{os.getpid()}")
    server = vasd = None
    try:
        server, rtsp_port = start_rtsp(media, [(CAMERA, a.media)], popen=ns.popen)
        vasd = Vasd(vasd_bin,
                    f"[live]\nudp_port_min = {PORT_MIN}\nudp_port_max = {PORT_MAX}\n"
                    f'[[camera]]\nid = "{CAMERA}"\n'
                    f'url = "rtsp://127.0.0.1:{rtsp_port}/{CAMERA}"\n',
                    prefix=ns.prefix)
        wait_for("the camera in the live view",
                 lambda: vasd.live(CAMERA).get("gop_ms") and
                 vasd.live(CAMERA).get("profile_level_id"))
        # fps_in and the bitrate are rates over the last few seconds: let them settle.
        time.sleep(3)
        cam = vasd.camera(CAMERA)
        print(f"live view on a lossy link: {a.media} looped by the RTSP fixture "
              f"({cam['bitrate_kbps'] / 1000:.1f} Mbit/s measured, GOP {cam['live']['gop_ms']} "
              f"ms, fps_in {cam['fps_in']:.2f}), profile-level-id "
              f"{cam['live']['profile_level_id']}")
        print(f"  network namespace {ns.name}; loss: nft input hook, udp sport "
              f"{PORT_MIN}-{PORT_MAX} (vasd's WebRTC ports) numgen random mod 100 < N drop: "
              f"only what vasd sends is lost, the viewer's NACKs and PLIs are not")
        print(f"  viewer: headless {chromium_version(a.chromium)} (software decode) on vasd's "
              f"viewer page; retransmission off = --no-nack (no generic NACK in the offer)")
        print(f"  vasd {vasd_bin}; {a.seconds:.0f} s per viewer window, {a.rounds} round(s), "
              f"{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.2f} at the start); "
              f"decoded = framesDecoded / (window x fps_in)")

        rows = {}
        for _ in range(a.rounds):
            for loss in losses:
                ns.set_loss(loss)
                for retransmit in (True, False):
                    wait_for("the previous viewer to leave",
                             lambda: vasd.live(CAMERA).get("viewers") == 0, LEAVE_TIMEOUT_S)
                    done, dropped, blank = watch(ns, vasd, a.seconds, not retransmit,
                                                 a.timeout)
                    fps = vasd.camera(CAMERA)["fps_in"]
                    row = rows.setdefault((loss, retransmit), Row(loss, retransmit))
                    row.add(done, dropped, fps, blank)
        ns.set_loss(0)

        print()
        print(f"{'loss %':>6} {'retransmit':>10} {'fps_in':>6} {'window s':>8} "
              f"{'decoded %':>9} {'freezes':>7} {'freeze ms':>9} {'longest stall ms':>16} "
              f"{'NACKs':>6} {'lost':>6} {'PLIs':>5} {'dropped frames':>14} "
              f"{'datagrams dropped':>17}")
        for loss in losses:
            for retransmit in (True, False):
                r = rows[(loss, retransmit)]
                d = r.as_dict()
                stall = f"{d['longest_stall_ms']:.0f}" + (" *" if r.blank else "")
                print(f"{loss:>6} {'on' if retransmit else 'off':>10} {d['fps_in']:>6.2f} "
                      f"{d['window_s']:>8.1f} {r.decoded() * 100:>9.1f} {d['freezes']:>7} "
                      f"{d['freeze_ms']:>9} {stall:>16} {d['nacks']:>6} "
                      f"{d['packets_lost']:>6} {d['plis']:>5} {d['frames_dropped']:>14} "
                      f"{d['datagrams_dropped']:>17}")

        if any(r.blank for r in rows.values()):
            print(f"* a viewer decoded no frame at all within --timeout {a.timeout:.0f} s: its "
                  f"window is the whole wait from the page's first stats, its counters count "
                  f"from the session's start, its stall is that whole wait (at least)")

        print("\nwith retransmission against without (ratio on/off; - where off is 0)")
        print(f"{'loss %':>6} {'decoded share':>13} {'longest stall':>13}")
        for loss in losses:
            on, off = rows[(loss, True)], rows[(loss, False)]
            print(f"{loss:>6} {ratio(on.decoded(), off.decoded()):>13} "
                  f"{ratio(on.longest_stall_ms, off.longest_stall_ms):>13}")

        print()
        if GOAL_LOSS in losses:
            g = rows[(GOAL_LOSS, True)]
            met = g.decoded() >= GOAL_DECODED and g.longest_stall_ms <= GOAL_STALL_MS
            print(f"goal at {GOAL_LOSS} % loss with retransmission (>= {GOAL_DECODED:.0%} "
                  f"decoded, longest stall <= {GOAL_STALL_MS:.0f} ms): "
                  f"{'met' if met else 'NOT met'} ({g.decoded():.1%} decoded, longest stall "
                  f"{g.longest_stall_ms:.0f} ms)")
        else:
            print(f"goal at {GOAL_LOSS} % loss: not measured (not in --loss)")
        for (loss, retransmit), r in sorted(rows.items()):
            if retransmit and loss > 0 and r.sums["nackCount"] == 0:
                print(f"note: no NACK sent at {loss} % loss with retransmission on")
            if not retransmit and r.nack_lines_removed == 0:
                print(f"note: --no-nack removed no NACK line at {loss} % loss: the offer had "
                      f"none, so the baseline is not a baseline")
        if 0 in losses and rows[(0, True)].decoded() < 0.95:
            print(f"note: at 0 % loss only {rows[(0, True)].decoded():.1%} of the frames were "
                  f"decoded: Chromium cannot keep up with {a.media} on this machine; the "
                  f"figures measure its CPU more than the loss (try --media cam720.mp4)")
        if a.json:
            print(json.dumps([rows[(loss, rt)].as_dict() for loss in losses
                              for rt in (True, False)], indent=1))
    finally:
        if vasd is not None:
            vasd.close()
        if server is not None:
            server.kill()
            server.wait()
        ns.delete()


if __name__ == "__main__":
    main()
