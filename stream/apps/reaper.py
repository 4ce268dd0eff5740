"""Nothing outlives a killed run: the processes of a Ray cluster this run started end with it.

``sagc enhance --ray auto`` starts a local cluster when none runs. Ray ties the processes it
starts itself to the driver, but the agents and workers those start notice a killed driver only
after their own timeouts. :func:`watch` starts a small process in a session of its own that
records every process descending from the driver while it lives and, once the driver is gone
(``kill -9`` included), kills what it recorded and is still running. Linux (it reads ``/proc``);
elsewhere it is a no-op. Run as ``python -m sagc.stream.apps.reaper PID``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["descendants", "watch"]

_PERIOD = 0.25  # seconds between looks at the process table


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of ``pid``, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    return int(fields[1]), int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """Every process below ``root`` now: pid → start time (which tells a reused pid apart)."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            children.setdefault(stat[0], []).append((int(entry), stat[1]))
    found: dict[int, int] = {}
    stack = [root]
    while stack:
        for pid, started in children.get(stack.pop(), []):
            if pid not in found:
                found[pid] = started
                stack.append(pid)
    return found


def _reap(driver: int) -> None:
    seen: dict[int, int] = {}
    while _stat(driver) is not None:
        seen.update(descendants(driver))
        time.sleep(_PERIOD)
    for pid, started in seen.items():
        stat = _stat(pid)
        if stat is not None and stat[1] == started and pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def watch(driver: int | None = None) -> subprocess.Popen[bytes] | None:
    """Start the watcher for ``driver`` (default: this process); None where ``/proc`` is missing.
    Terminate it once the cluster was shut down normally."""
    if not Path("/proc/self/stat").exists():
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "sagc.stream.apps.reaper", str(driver or os.getpid())],
        start_new_session=True,  # not in the driver's process group: a Ctrl-C or kill of the group spares it
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


if __name__ == "__main__":
    _reap(int(sys.argv[1]))
