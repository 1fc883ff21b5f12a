"""Helpers shared by the benchmark scripts: where the repository is, process CPU time, the
RTSP fixture, and a vasd on a config of its own."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (fields 14 and 15 of proc(5))."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] here is field 3: the command name, which may hold spaces, is cut off first.
    return (int(fields[11]) + int(fields[12])) / TICK


def free_port():
    """A TCP port on the loopback that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid):
    """Resident memory of a process (VmRSS of proc(5)), in bytes; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


def start_rtsp(media, mounts, popen=subprocess.Popen, live=()):
    """The RTSP fixture serving `mounts`, (name, file in media) pairs, and `live`, (name, spec)
    pairs of live mounts (spec as after `--live NAME=`, e.g. "640x360@30,audio=pcma"): returns
    the process and its port. `popen` starts it (a reaper's, to own it from its first moment;
    or one that runs it in a network namespace)."""
    args = ["/usr/bin/python3", os.path.join(ROOT, "tests/fixtures/rtsp_server.py"), "--port", "0"]
    for name, file in mounts:
        args += ["--mount", f"{name}={os.path.join(media, file)}"]
    for name, spec in live:
        args += ["--live", f"{name}={spec}"]
    proc = popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().split()
    if len(line) != 2 or line[0] != "READY":
        proc.kill()
        raise SystemExit("the RTSP server did not start")
    return proc, int(line[1])


def target_dir():
    """Cargo's target directory: $CARGO_TARGET_DIR when set, else <repository>/target."""
    return os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")


def bench_media(target):
    """<target>/bench-media with the synthetic camera files; make_media.sh keeps the files
    that are already valid, so only the first run encodes (about 25 s on 2 cores)."""
    media = os.path.join(target, "bench-media")
    subprocess.run(["bash", os.path.join(ROOT, "tests/fixtures/make_media.sh"), media],
                   check=True, stdout=subprocess.DEVNULL)
    return media


def wait_for(what, cond, timeout=60):
    """Polls cond() every 0.2 s until it is true; exits the benchmark after `timeout` s. An
    OSError (vasd's API not up yet) counts as false."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


def http_get(url, prefix=()):
    """The body of a successful GET of `url`, as bytes. With a `prefix` (e.g. `ip netns exec
    NS`) curl does the request under it: how a benchmark reaches a vasd in another network
    namespace. Raises OSError when there is no answer or it is an error status."""
    if not prefix:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read()
    out = subprocess.run(list(prefix) + ["curl", "-sf", "--noproxy", "*", "--max-time", "5",
                                         url],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if out.returncode != 0:
        raise OSError(f"curl {url}: exit status {out.returncode}")
    return out.stdout


def http_json(url, prefix=()):
    """GET `url` (see http_get) and parse the reply as JSON."""
    return json.loads(http_get(url, prefix))


# simplelog's level field, e.g. "2025-01-01T00:00:00Z [WARN] cam-front: ...".
PROBLEM = re.compile(r"\[(WARN|ERROR)\]")


class Vasd:
    """vasd on a config of its own: a temporary directory with vas.toml (`body` after a
    `[server]` section with the API on a free loopback port) and vasd.log (its stderr).
    `prefix` goes before the command (e.g. `ip netns exec NS`); the frame export is off
    through AI_FRAME_EXPORT_ENABLED, as it is not what the live benchmarks measure."""

    def __init__(self, binary, body, prefix=(), log_level="info"):
        self.dir = tempfile.mkdtemp(prefix="vas-bench-")
        self.port = free_port()
        self.prefix = list(prefix)
        self.config = os.path.join(self.dir, "vas.toml")
        self.log_path = os.path.join(self.dir, "vasd.log")
        with open(self.config, "w") as f:
            f.write(f'[server]\nlisten = "127.0.0.1:{self.port}"\n{body}')
        env = dict(os.environ, AI_FRAME_EXPORT_ENABLED="false")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                self.prefix + [binary, "--config", self.config, "--log-level", log_level],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env)
        # `ip netns exec` execs the command in place, so this is vasd's pid either way.
        self.pid = self.proc.pid
        deadline = time.monotonic() + 20
        while True:
            try:
                http_get(self.url("/healthz"), self.prefix)
                break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_lines()[-20:]
                self.stop()
                sys.exit("vasd did not start:\n" + "".join(tail))
            time.sleep(0.1)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path):
        return http_json(self.url(path), self.prefix)

    def cameras(self):
        """/api/cameras as a dict by camera id."""
        return {c["id"]: c for c in self.get("/api/cameras")}

    def camera(self, cam):
        return self.cameras()[cam]

    def live(self, cam):
        """The camera's live section ({} when it has none)."""
        return self.camera(cam).get("live") or {}

    def log_lines(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.readlines()
        except FileNotFoundError:
            return []

    def problems(self):
        """The warning and error lines of vasd's log so far."""
        return [line for line in self.log_lines() if PROBLEM.search(line)]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self, out=sys.stdout, shown=20):
        """Stops vasd and removes its directory; with warnings or errors in the log, prints
        the first `shown` of them and keeps the directory so the whole log can be read. A
        vasd that exited by itself gets the end of its log printed."""
        exited = self.proc.poll()
        self.stop()
        problems = self.problems()
        if exited is not None:
            print(f"\nvasd exited by itself (status {exited}); the end of {self.log_path}:",
                  file=out)
            for line in self.log_lines()[-shown:]:
                print("  " + line.rstrip(), file=out)
        elif problems:
            print(f"\nvasd logged {len(problems)} warnings or errors (log kept: "
                  f"{self.log_path}); the first {min(shown, len(problems))}:", file=out)
            for line in problems[:shown]:
                print("  " + line.rstrip(), file=out)
        else:
            print("vasd logged no warnings or errors", file=out)
            shutil.rmtree(self.dir, ignore_errors=True)
        return problems
