"""Helpers shared by the benchmark scripts: where the repository is, and process CPU time."""

import os
import socket
import subprocess

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


def start_rtsp(media, mounts, popen=subprocess.Popen):
    """The RTSP fixture serving `mounts`, (name, file in media) pairs: returns the process and
    its port. `popen` starts it (a reaper's, to own it from its first moment)."""
    args = ["/usr/bin/python3", os.path.join(ROOT, "tests/fixtures/rtsp_server.py"), "--port", "0"]
    for name, file in mounts:
        args += ["--mount", f"{name}={os.path.join(media, file)}"]
    proc = popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().split()
    if len(line) != 2 or line[0] != "READY":
        proc.kill()
        raise SystemExit("the RTSP server did not start")
    return proc, int(line[1])
