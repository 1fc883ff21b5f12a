"""Checks a program's recorded system calls against the sandbox of its systemd unit.

Usage:  unit_sandbox.py UNIT STRACE_LOG

UNIT is a .service file; STRACE_LOG the output of `strace -f -o STRACE_LOG PROGRAM ...` (one
line per call, with arguments) of the program that unit runs, exercised as it is in service.
A unit's SystemCallFilter=, MemoryDenyWriteExecute= and RestrictAddressFamilies= are seccomp
filters that systemd installs before exec: a call they deny fails with EPERM (or kills the
process) on a real host, yet nothing shows it where the unit is never started, such as a
container without systemd as PID 1. This replays the recorded calls through the same rules:

- SystemCallFilter: the first allow list, minus every `~` deny list after it, expanded with
  `systemd-analyze syscall-filter` of the systemd on this machine (the one the package targets);
- MemoryDenyWriteExecute: mmap with both PROT_WRITE and PROT_EXEC, mprotect or pkey_mprotect
  with PROT_EXEC, shmat with SHM_EXEC;
- RestrictAddressFamilies: socket and socketpair address families.

Prints one line per kind of call seen and per violation; exit status 1 on any violation.
"""

import re
import subprocess
import sys
from collections import Counter


def unit_settings(path):
    """Service-section assignments of a unit file, in order, as (key, value) pairs."""
    settings = []
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;" or line.startswith("["):
                continue
            key, _, value = line.partition("=")
            settings.append((key.strip(), value.strip()))
    return settings


def syscall_groups():
    """Every @group of this systemd, as a map from its name to its members (names or @groups)."""
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter"], check=True, capture_output=True, text=True
    ).stdout
    groups, current = {}, None
    for raw in out.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not raw.startswith((" ", "\t")) and line.startswith("@"):
            current = groups.setdefault(line, [])
        elif current is not None:
            current.append(line)
    return groups


def expand(items, groups, seen=None):
    seen = set() if seen is None else seen
    names = set()
    for item in items:
        if item.startswith("@"):
            if item in seen:
                continue
            seen.add(item)
            if item not in groups:
                raise SystemExit(f"unit_sandbox: unknown system call group {item}")
            names |= expand(groups[item], groups, seen)
        else:
            names.add(item)
    return names


def filter_of(settings, groups):
    """The allowed system calls, or None when the unit has no SystemCallFilter."""
    allowed = None
    for key, value in settings:
        if key != "SystemCallFilter":
            continue
        deny = value.startswith("~")
        items = value.lstrip("~").split()
        names = expand(items, groups)
        if deny:
            if allowed is None:
                raise SystemExit("unit_sandbox: a deny-only SystemCallFilter is not handled")
            allowed -= names
        elif allowed is None:
            allowed = names
        else:
            allowed |= names
    return allowed


# pid, then the call name and its arguments; "<... name resumed>" lines are continuations.
CALL = re.compile(r"^(?:\d+\s+)?([a-z_][a-z0-9_]*)\((.*)")


def calls(log):
    with open(log, errors="replace") as f:
        for line in f:
            m = CALL.match(line)
            if m:
                yield m.group(1), m.group(2)


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    unit, log = sys.argv[1], sys.argv[2]
    settings = unit_settings(unit)
    values = dict(settings)
    allowed = filter_of(settings, syscall_groups())
    mdwe = values.get("MemoryDenyWriteExecute") == "yes"
    families = values.get("RestrictAddressFamilies", "").split() or None

    used, problems = Counter(), []
    for name, args in calls(log):
        used[name] += 1
        if mdwe:
            if name == "mmap" and "PROT_WRITE" in args and "PROT_EXEC" in args:
                problems.append(f"MemoryDenyWriteExecute: {name}({args[:120]}")
            elif name in ("mprotect", "pkey_mprotect") and "PROT_EXEC" in args:
                problems.append(f"MemoryDenyWriteExecute: {name}({args[:120]}")
            elif name == "shmat" and "SHM_EXEC" in args:
                problems.append(f"MemoryDenyWriteExecute: {name}({args[:120]}")
        if families is not None and name in ("socket", "socketpair"):
            family = args.split(",", 1)[0].strip()
            if family not in families:
                problems.append(f"RestrictAddressFamilies: {name}({args[:120]}")
    if not used:
        raise SystemExit(f"unit_sandbox: no system calls in {log}")
    if allowed is not None:
        for name in sorted(used):
            if name not in allowed:
                problems.append(f"SystemCallFilter: {name} ({used[name]} call(s))")

    print(
        f"unit_sandbox: {unit}: {sum(used.values())} calls of {len(used)} kinds: "
        + " ".join(sorted(used))
    )
    # One line per distinct problem, with how often it was seen.
    for problem, n in Counter(problems).most_common():
        print(f"unit_sandbox: VIOLATION ({n}x) {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
