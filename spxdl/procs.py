"""Process liveness on this host: is a pid running, and is it still the process we think it is.

The ledger asks it whether a claim's process is gone; storage asks it whether a temp file's
writer is. On Linux ``/proc`` gives a process's state (a zombie is not running) and its start
time (a process that started after a claim was made holds a reused pid); elsewhere (macOS) only
``os.kill(pid, 0)`` is asked and the start time is unknown.
"""

from __future__ import annotations

import functools
import os
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

PID_START_SLACK = 2.0  # seconds; /proc gives a process's start time to within about one second
GONE_STATES = ("Z", "X")  # zombie, dead: exited, waiting to be reaped


class ProcessFacts(NamedTuple):
    """What ``/proc/<pid>/stat`` says about a process."""

    state: str  # one letter: R running, S sleeping, Z zombie, ...
    started: float  # epoch seconds


@functools.lru_cache(maxsize=1)
def boot_time() -> float:
    """Boot time (epoch seconds) from ``/proc/stat``; OSError where there is none."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def process_facts(pid: int) -> ProcessFacts | None:
    """State and start time of ``pid`` from ``/proc``; None where unknown (no such pid, or macOS)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        # the command name, in parentheses, may hold spaces and parentheses: split after the last one
        fields = text[text.rindex(")") + 2 :].split()
        return ProcessFacts(fields[0], boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether a running process with ``pid`` exists on this host (a zombie is not running)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    facts = process_facts(pid)
    return facts is None or facts.state not in GONE_STATES


def process_alive(pid: int, existed_at: datetime) -> bool:
    """Whether ``pid`` is a running process on this host that already existed at ``existed_at``.

    Anything but an int is no process. A zombie counts as gone. On Linux a process that started
    after ``existed_at`` holds a reused pid, so the process of that moment is gone.
    """
    if not isinstance(pid, int) or not pid_alive(pid):
        return False
    facts = process_facts(pid)
    return facts is None or facts.started <= existed_at.timestamp() + PID_START_SLACK
