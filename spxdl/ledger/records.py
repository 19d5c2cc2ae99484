"""The content of the ledger's JSON files: pure functions on day records and summaries, and their checks.

A ``_day.json`` holds one task's claim, state, covered DTE windows and per-expiration records;
``status.json`` and ``inventory.json`` hold one summary entry per task. ``read_json`` is the one
way these files are read: content that is not JSON or fails its check is moved aside
(``storage.move_aside``) and reported as ``LedgerCorrupt``, for the caller to rebuild.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from spxdl import storage
from spxdl.errors import LedgerCorrupt
from spxdl.ledger.task import EXPIRATION_STATES, TASK_STATES, ExpirationState, Task, TaskState, timestamp, utc_now

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
TOTALS = ("files", "rows", "bytes")


def read_json(path: Path, is_valid: Callable[[Any], bool]) -> Any | None:
    """The content of ``path``; None if it does not exist.

    Raises LedgerCorrupt after moving the file aside if it is not JSON or fails ``is_valid``.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        content = json.loads(data)
        valid = is_valid(content)
    except (ValueError, TypeError, KeyError, AttributeError):
        valid = False
    if not valid:
        moved = storage.move_aside(path, hidden=False)
        log.warning("ledger file %s is corrupt; moved it to %s and rebuilding it", path, moved)
        raise LedgerCorrupt(f"{path} is corrupt (moved to {moved})", path=str(path), moved_to=str(moved))
    return content


# The checks below may raise on malformed content; read_json counts that as corrupt.


def _is_windows(windows: Any) -> bool:
    """Whether ``windows`` is a list of ``[min_dte, max_dte]`` integer pairs."""
    return isinstance(windows, list) and all(
        isinstance(window, list) and len(window) == 2 and all(isinstance(v, int) for v in window)
        for window in windows
    )


def _is_expiration_record(name: str, entry: Any) -> bool:
    """Whether ``name: entry`` is an expiration record: an ISO date and a dict with a known state."""
    date.fromisoformat(name)
    return isinstance(entry, dict) and entry.get("state") in EXPIRATION_STATES


def is_day_of(task: Task) -> Callable[[Any], bool]:
    """A check that a parsed ``_day.json`` is well formed and belongs to ``task``."""

    def check(day: Any) -> bool:
        return (
            isinstance(day, dict)
            and Task.from_identity(day) == task
            and day.get("state") in TASK_STATES
            and _is_windows(day.get("covered"))
            and (day.get("claim") is None or isinstance(day["claim"], dict))
            and isinstance(day.get("expirations"), dict)
            and all(_is_expiration_record(name, entry) for name, entry in day["expirations"].items())
        )

    return check


def _is_task_key(key: str) -> bool:
    """Whether ``key`` names a task (raises if not)."""
    Task.from_key(key)
    return True


def _has_task_entries(content: Any, is_entry: Callable[[Any], bool]) -> bool:
    """Whether ``content`` is a summary whose ``tasks`` maps task keys to valid entries."""
    return (
        isinstance(content, dict)
        and isinstance(content.get("tasks"), dict)
        and all(_is_task_key(key) and is_entry(entry) for key, entry in content["tasks"].items())
    )


def is_status(content: Any) -> bool:
    """Whether a parsed ``status.json`` has the expected shape."""
    return _has_task_entries(content, lambda entry: isinstance(entry, dict) and entry.get("state") in TASK_STATES)


def is_inventory(content: Any) -> bool:
    """Whether a parsed ``inventory.json`` has the expected shape."""
    return _has_task_entries(
        content,
        lambda entry: isinstance(entry, dict) and all(isinstance(entry.get(f), int) for f in TOTALS),
    )


# Day records


def new_day(task: Task) -> dict[str, Any]:
    """The ``_day.json`` content of a task nobody has worked on."""
    now = timestamp(utc_now())
    return {
        "version": FORMAT_VERSION,
        **task.identity(),
        "state": TaskState.QUEUED,
        "covered": [],
        "claim": None,
        "expirations": {},
        "error": None,
        "created_at": now,
        "updated_at": now,
        "started_at": None,
        "finished_at": None,
    }


def new_expiration_entry() -> dict[str, Any]:
    """The record of an expiration nothing has been stored for."""
    return {
        "state": ExpirationState.PENDING,
        "file": None,
        "rows": 0,
        "bytes": 0,
        "sha256": None,
        "attempts": 0,
        "error": None,
        "checks": {},
        "dropped": 0,
        "updated_at": None,
    }


def set_file(entry: dict[str, Any], info: storage.FileInfo | None) -> None:
    """Point an expiration record at a verified file (its name inside the task dir), or at none."""
    entry["file"] = Path(info.path).name if info else None
    entry["rows"] = info.rows if info else 0
    entry["bytes"] = info.bytes if info else 0
    entry["sha256"] = info.sha256 if info else None


def reset_downloading(day: dict[str, Any]) -> None:
    """Expirations a dead run left ``downloading`` go back to ``pending``."""
    for entry in day["expirations"].values():
        if entry["state"] == ExpirationState.DOWNLOADING:
            entry["state"] = ExpirationState.PENDING


def merge_windows(covered: list[list[int]], min_dte: int, max_dte: int) -> list[list[int]]:
    """``covered`` (sorted ``[min, max]`` DTE windows) plus ``[min_dte, max_dte]``, merged."""
    merged: list[list[int]] = []
    for low, high in sorted([*covered, [min_dte, max_dte]]):
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return merged


def window_covered(covered: list[list[int]], min_dte: int, max_dte: int) -> bool:
    """Whether one of the ``covered`` windows contains ``[min_dte, max_dte]``."""
    return any(low <= min_dte and max_dte <= high for low, high in covered)


def file_totals(day: Mapping[str, Any]) -> dict[str, Any]:
    """Files, rows and bytes the task's records point at; with the checks' counts and the rows dropped, when any."""
    entries = [entry for entry in day["expirations"].values() if entry.get("file")]
    totals: dict[str, Any] = {
        "files": len(entries),
        "rows": sum(entry.get("rows", 0) for entry in entries),
        "bytes": sum(entry.get("bytes", 0) for entry in entries),
    }
    checks = sum_checks(entry.get("checks") or {} for entry in entries)
    if checks:
        totals["checks"] = checks
    dropped = sum(entry.get("dropped", 0) for entry in entries)
    if dropped:
        totals["dropped"] = dropped
    return totals


def sum_checks(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Check name -> the sum of its counts, the checks that counted something only."""
    summed: dict[str, int] = {}
    for one in counts:
        for name, count in one.items():
            if count:
                summed[name] = summed.get(name, 0) + count
    return summed


def last_file_at(day: Mapping[str, Any]) -> str | None:
    """When the task's latest file landed (the newest record of a complete expiration), or None."""
    times = [entry.get("updated_at") for entry in day["expirations"].values()
             if entry.get("state") == ExpirationState.COMPLETE and entry.get("file") and entry.get("updated_at")]
    return max(times) if times else None


def task_summary(day: Mapping[str, Any]) -> dict[str, Any]:
    """The task's entry in ``status.json``."""
    by_state = {state: 0 for state in EXPIRATION_STATES}
    for entry in day["expirations"].values():
        by_state[entry["state"]] += 1
    claim = day.get("claim")
    totals = file_totals(day)
    return {
        "state": day["state"],
        "started_at": day.get("started_at"),
        "finished_at": day.get("finished_at"),
        "covered": day["covered"],
        "expirations": by_state,
        "rows": totals["rows"],
        "bytes": totals["bytes"],
        "error": day.get("error"),
        "claimed_by": f"{claim['host']}:{claim['pid']}" if claim else None,
        "last_file_at": last_file_at(day),
    }


def day_from_files(task: Task, footers: Mapping[date, storage.FileInfo | str]) -> dict[str, Any]:
    """A ``_day.json`` rebuilt from the task dir's files: ``partial`` if any verified, else ``queued``.

    ``footers`` maps each expiration found on disk to its verified file or to why it failed.
    """
    day = new_day(task)
    for expiration, found in sorted(footers.items()):
        if isinstance(found, str):
            continue
        entry = new_expiration_entry()
        entry["state"] = ExpirationState.COMPLETE
        entry["updated_at"] = day["created_at"]
        set_file(entry, found)
        day["expirations"][expiration.isoformat()] = entry
    if day["expirations"]:
        day["state"] = TaskState.PARTIAL
    return day


def reconcile_day(day: dict[str, Any], footers: Mapping[date, storage.FileInfo | str]) -> list[str]:
    """Make the records agree with the files on disk; returns one line per disagreement.

    Recorded files that are gone or unreadable become ``pending`` (a ``success`` task drops to
    ``partial`` and loses its coverage, so it is planned again); verified files the records do
    not know, or know differently, are adopted as ``complete``.
    """
    problems: list[str] = []
    key = Task.from_identity(day).key
    recorded = {date.fromisoformat(name) for name in day["expirations"]}
    for expiration in sorted(recorded | set(footers)):
        name = expiration.isoformat()
        entry = day["expirations"].get(name)
        found = footers.get(expiration)
        if found is not None and not isinstance(found, str):
            if entry is None or not _describes(entry, found):
                problems.append(f"{key} {name}: adopted {Path(found.path).name} as found on disk")
                entry = day["expirations"].setdefault(name, new_expiration_entry())
                entry["state"] = ExpirationState.COMPLETE
                set_file(entry, found)
        elif entry is not None and entry.get("file"):
            problems.append(f"{key} {name}: recorded file {entry['file']}: {found or 'missing'}")
            entry["state"] = ExpirationState.PENDING
            set_file(entry, None)
        elif found is not None:
            problems.append(f"{key} {name}: unrecorded file {found}")
    complete = ExpirationState.COMPLETE
    if day["state"] == TaskState.SUCCESS and any(e["state"] != complete for e in day["expirations"].values()):
        day["state"] = TaskState.PARTIAL
        day["covered"] = []
    return problems


def _describes(entry: Mapping[str, Any], info: storage.FileInfo) -> bool:
    """Whether a complete record names exactly this verified file."""
    return entry["state"] == ExpirationState.COMPLETE and (
        entry.get("file"), entry.get("rows"), entry.get("bytes"), entry.get("sha256")
    ) == (Path(info.path).name, info.rows, info.bytes, info.sha256)


# Summaries


def state_counts(tasks: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """How many of the ``status.json`` entries ``tasks`` are in each task state."""
    counts = {state: 0 for state in TASK_STATES}
    for entry in tasks.values():
        counts[entry["state"]] += 1
    return counts


def archive_totals(tasks: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Tasks, files, rows and bytes per archive (and checks and dropped rows, when any), from the
    ``inventory.json`` entries ``tasks``."""
    archives: dict[str, dict[str, Any]] = {}
    for key, entry in tasks.items():
        totals = archives.setdefault(Task.from_key(key).archive, {"tasks": 0, "files": 0, "rows": 0, "bytes": 0})
        totals["tasks"] += 1
        for field in TOTALS:
            totals[field] += entry[field]
        if entry.get("checks"):
            totals["checks"] = sum_checks([totals.get("checks", {}), entry["checks"]])
        if entry.get("dropped"):
            totals["dropped"] = totals.get("dropped", 0) + entry["dropped"]
    return archives


def grand_totals(archives: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Files, rows and bytes of all archives together."""
    return {field: sum(totals[field] for totals in archives.values()) for field in TOTALS}
