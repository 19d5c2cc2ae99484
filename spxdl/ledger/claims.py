"""Claims: which process works on a task, and whether that process is still there.

A claim lives in its task's ``_day.json``: worker pid, the pid of the run it works for, host, ``started_at``,
``heartbeat`` and the requested DTE window; and, from a process that works for several runs at
once (a Dask worker), the ``owner``: the run it claimed for, so that two runs' tasks in one
process never take each other's claims for their own. It is stale when its heartbeat is older than
``stale_after`` seconds (whatever host made it), or when it was made on this host and its process
is gone (exited, a zombie, or its pid now belongs to a newer process: ``procs.process_alive``).
"""

from __future__ import annotations

import os
import socket
from typing import Any, Collection, Mapping

from spxdl import procs
from spxdl.ledger.task import parse_timestamp, utc_now


def new_claim(now: str, *, min_dte: int, max_dte: int, owner: str | None = None,
              run_pid: int | None = None) -> dict[str, Any]:
    """A claim of this process (for ``owner``, if it works for several), made and beaten at ``now``.

    ``ppid`` is the run's process (``run_pid``; by default this one's parent): a worker forked by
    multiprocessing's fork server has that server for its parent, not the run it works for.
    """
    claim: dict[str, Any] = {
        "pid": os.getpid(),
        "ppid": os.getppid() if run_pid is None else run_pid,
        "host": socket.gethostname(),
        "started_at": now,
        "heartbeat": now,
        "min_dte": min_dte,
        "max_dte": max_dte,
    }
    if owner is not None:
        claim["owner"] = owner
    return claim


def is_own(claim: Mapping[str, Any], owner: str | None = None) -> bool:
    """Whether ``claim`` is this process's (and ``owner``'s)."""
    return (claim.get("host") == socket.gethostname() and claim.get("pid") == os.getpid()
            and claim.get("owner") == owner)


def why_stale(claim: Mapping[str, Any], stale_after: float) -> str | None:
    """Why ``claim`` is stale, or None if it is live."""
    try:
        age = (utc_now() - parse_timestamp(claim["heartbeat"])).total_seconds()
        started = parse_timestamp(claim["started_at"])
    except (KeyError, TypeError, ValueError):
        return "unreadable claim"
    if age > stale_after:
        return f"heartbeat {age:.0f} s old"
    if claim.get("host") == socket.gethostname() and not procs.process_alive(claim.get("pid"), started):
        return "its process is gone"
    return None


def is_live(claim: Mapping[str, Any], stale_after: float) -> bool:
    """Whether ``claim`` is not stale."""
    return why_stale(claim, stale_after) is None


def may_end(
    claim: Mapping[str, Any], stale_after: float, owner: str | None = None, workers: Collection[int] = ()
) -> bool:
    """Whether this process may drop ``claim``: ours (``owner``'s), one of our ``workers``' (pids on
    this host: the engine's parent releases the tasks of the workers it started), or stale."""
    ours = claim.get("host") == socket.gethostname() and claim.get("pid") in workers
    return is_own(claim, owner) or ours or not is_live(claim, stale_after)


def describe(claim: Mapping[str, Any] | None) -> str:
    """A claim as ``pid N on HOST`` for log lines."""
    if not claim:
        return "no claim"
    run = f" (run {claim['owner']})" if claim.get("owner") else ""
    return f"pid {claim.get('pid')} on {claim.get('host')}{run}"
