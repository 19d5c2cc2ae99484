"""Telling someone how an unattended download went: ``[notify] command``, run with the run's summary as JSON.

The command runs after every download that failed (failed or partial tasks, days without data,
an error that stopped it, an interruption), and after the first success that follows one, so
that whoever was told of a failure also hears that it is over. A run that only left tasks to
another live run is neither. Whether the previous download failed is kept in the ledger
(``ledger/outcome.py``). The command is a shell line (``/bin/sh -c``) that gets the summary on
its standard input and ``SPXDL_NOTIFY_SUBJECT`` (one line) in its environment; it may take
``[notify] timeout`` seconds, then it is killed with its process group. Its own failure is
logged, never fatal: the download's exit code stays the download's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
from datetime import date
from typing import Any, Callable, Iterable, Mapping

from spxdl import __version__
from spxdl.config import Settings
from spxdl.engine.records import RunSummary
from spxdl.errors import SpxdlError
from spxdl.ledger import Ledger
from spxdl.ledger.outcome import record_run
from spxdl.ledger.task import timestamp, utc_now

log = logging.getLogger(__name__)

FAILURE, RECOVERED = "failure", "recovered"
SUBJECT_VARIABLE = "SPXDL_NOTIFY_SUBJECT"
OUTPUT_SHOWN = 2000  # characters of the command's output kept in the log when it fails


def is_due(failed: bool | None, failed_before: bool | None) -> str | None:
    """The event to notify of: a failure, the first success after one, or None (nothing to tell)."""
    if failed:
        return FAILURE
    if failed is False and failed_before:
        return RECOVERED
    return None


def summary_payload(
    *, command: str, exit_code: int, event: str, settings: Settings, summaries: Iterable[RunSummary] = (),
    span: tuple[date, date] | None = None, error: str | None = None,
) -> dict[str, Any]:
    """The JSON a notify command reads: what ran, how it ended, its tasks by state, the failed tasks with their
    errors, what the checks counted (several runs of one command, as ``resume`` makes, are added up)."""
    runs = [summary.as_dict() for summary in summaries]
    states: dict[str, int] = {}
    checks: dict[str, int] = {}
    for run in runs:
        for name, count in run["tasks"].items():
            states[name] = states.get(name, 0) + count
        for name, count in run["checks"].items():
            checks[name] = checks.get(name, 0) + count
    payload = {
        "event": event,
        "command": command,
        "exit_code": exit_code,
        "host": socket.gethostname(),
        "data_dir": str(settings.data_dir.absolute()) if settings.data_is_local else settings.data_dir_shown,
        "start": span[0].isoformat() if span else None,
        "end": span[1].isoformat() if span else None,
        "tasks": states,
        "failed_tasks": [task for run in runs for task in run["failed_tasks"]],
        "no_data_tasks": [task for run in runs for task in run["no_data_tasks"]],
        "not_started": sum(len(run["not_started"]) for run in runs),
        "held_tasks": sum(run["held_tasks"] for run in runs),
        "checks": dict(sorted(checks.items())),
        "dropped": sum(run["dropped"] for run in runs),
        "rows": sum(run["rows"] for run in runs),
        "bytes": sum(run["bytes"] for run in runs),
        "seconds": round(sum(run["seconds"] for run in runs), 3),
        "interrupted_by": next((run["interrupted_by"] for run in runs if run["interrupted_by"]), None),
        "stopped_by": next((run["stopped_by"] for run in runs if run["stopped_by"]), None),
        "error": error,
        "spxdl_version": __version__,
        "finished_at": timestamp(utc_now()),
    }
    payload["subject"] = subject(payload)
    return payload


def subject(payload: Mapping[str, Any]) -> str:
    """One line for a mail subject or a chat message."""
    states = ", ".join(f"{count} {state}" for state, count in sorted(payload["tasks"].items())) or "no task run"
    what = "back to normal" if payload["event"] == RECOVERED else "FAILED"
    why = payload["error"] or payload["stopped_by"] or payload["interrupted_by"]
    return (f"spxdl {payload['command']} on {payload['host']} {what} (exit {payload['exit_code']}): {states}"
            + (f"; {why}" if why else ""))[:300]


def report_outcome(settings: Settings, *, command: str, failed: bool | None, exit_code: int,
                   payload_for: Callable[[str], Mapping[str, Any]]) -> str | None:
    """Remember how this download ended and, when due, run the notify command; the event told (or None).

    ``failed`` None (only tasks another run holds) leaves the memory as it was. ``payload_for(event)``
    builds the JSON. Nothing here raises: notifying must never change a download's outcome.
    """
    failed_before = None
    if failed is not None:
        try:
            failed_before = record_run(Ledger(settings.ledger_path), failed=failed, exit_code=exit_code,
                                       command=command)
        except (SpxdlError, OSError) as exc:  # a failure is still told; a recovery cannot be known
            log.warning("could not record how this run ended in %s: %s", settings.ledger_dir or settings.data_dir_shown,
                        exc)
    event = is_due(failed, failed_before)
    if event is not None and settings.notify_command:
        try:
            run_command(settings.notify_command, payload_for(event), settings.notify_timeout)
        except Exception as exc:  # a bug in building the summary must not turn a download's outcome
            log.error("could not notify: %r", exc, exc_info=True)
    return event


def run_command(command: str, payload: Mapping[str, Any], timeout: float) -> bool:
    """Run ``command`` with ``payload`` as JSON on its stdin; whether it ran and exited 0 (failures are logged)."""
    environment = {**os.environ, SUBJECT_VARIABLE: str(payload.get("subject", ""))}
    data = (json.dumps(payload, indent=1, default=str) + "\n").encode("utf-8")
    try:
        process = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, env=environment, start_new_session=True)
    except OSError as exc:
        log.warning("the notify command could not be started (%s): %s", command, exc)
        return False
    try:
        output, _ = process.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # its own session: the shell and whatever it started
        process.communicate()
        log.warning("the notify command took longer than %.0f s and was killed: %s", timeout, command)
        return False
    shown = output.decode("utf-8", "replace").strip()[-OUTPUT_SHOWN:]
    if process.returncode != 0:
        log.warning("the notify command exited %s: %s%s", process.returncode, command, f"\n{shown}" if shown else "")
        return False
    log.info("notified (%s): %s", payload.get("event"), command)
    return True
