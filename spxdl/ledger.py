"""The ledger: which tasks are done, who is working on which, and what lies on disk.

Three kinds of JSON file, all rewritten atomically (``storage.write_json_atomic``) while holding
one lock (``fcntl.flock`` on ``<data_dir>/.spxdl.lock`` plus a ``threading.Lock`` per process):

- ``<task dir>/_day.json``: one task's claim, state, covered DTE windows and per-expiration file
  inventory. Per-expiration updates touch only this file, so their cost does not grow with the
  archive.
- ``<data_dir>/status.json``: one summary entry per task, rewritten when a task is claimed,
  released or finished (never per expiration or heartbeat).
- ``<data_dir>/inventory.json``: totals and per-task file counts, bytes and rows, rewritten when a
  task finishes.

A corrupt file is moved aside to ``<name>.corrupt-<UTC time>`` and rebuilt: summaries from the
``_day.json`` files, a ``_day.json`` from the Parquet footers in its directory. ``docs/ledger.md``
describes the formats and the rules.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from spxdl import procs, storage
from spxdl.errors import LedgerBusy, LedgerCorrupt, StorageError

log = logging.getLogger(__name__)

TASK_STATES = ("queued", "in_progress", "success", "partial", "failed", "no_data")
FINAL_STATES = ("success", "partial", "failed", "no_data")
EXPIRATION_STATES = ("pending", "downloading", "complete", "failed", "no_data")
FORMAT_VERSION = 1

LOCK_POLL_FIRST = 0.0005  # seconds; lock holders keep it for about one fsync, so start small
LOCK_POLL_MAX = 0.02


@dataclass(frozen=True, order=True)
class Task:
    """One unit of work: one trade date of one root in one archive (dataset and interval)."""

    archive: str
    root: str
    trade_date: date

    @property
    def key(self) -> str:
        """The task's name in the ledger, e.g. ``greeks-1m/SPXW/2024-01-15``."""
        return f"{self.archive}/{self.root}/{self.trade_date.isoformat()}"

    @classmethod
    def from_key(cls, key: str) -> Task:
        """The task named by ``key``; ValueError if it is not ``archive/root/YYYY-MM-DD``."""
        archive, root, trade_date = key.split("/")
        return cls(archive, root, date.fromisoformat(trade_date))

    def identity(self) -> dict[str, str]:
        """The fields that name this task inside its ``_day.json``."""
        return {"archive": self.archive, "root": self.root, "trade_date": self.trade_date.isoformat()}

    @classmethod
    def from_identity(cls, fields: Mapping[str, Any]) -> Task:
        """The task a ``_day.json`` (or any mapping with its identity fields) belongs to."""
        return cls(str(fields["archive"]), str(fields["root"]), date.fromisoformat(fields["trade_date"]))


# ---------------------------------------------------------------------------------------------
# Time


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)


def timestamp(moment: datetime) -> str:
    """``moment`` as the ISO text the ledger stores (UTC, microseconds, ``+00:00``)."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def parse_timestamp(text: str) -> datetime:
    """The instant of a stored timestamp."""
    return datetime.fromisoformat(text)


# ---------------------------------------------------------------------------------------------
# The lock's in-process half


class _ProcessLocks:
    """This process's side of the ledger lock: one threading.Lock per lock file, per-thread depths."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._local = threading.local()

    def thread_lock(self, key: str) -> threading.Lock:
        """The threading.Lock of the lock file ``key``."""
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def depths(self) -> dict[str, int]:
        """How deep the calling thread is inside each lock file's lock."""
        if not hasattr(self._local, "depths"):
            self._local.depths = {}
        return self._local.depths


_PROCESS_LOCKS = _ProcessLocks()


def _forget_locks_after_fork() -> None:
    # A forked child inherits the parent's lock objects and depths, but not the threads holding
    # them: it starts afresh and takes the file lock itself.
    global _PROCESS_LOCKS
    _PROCESS_LOCKS = _ProcessLocks()


os.register_at_fork(after_in_child=_forget_locks_after_fork)


# ---------------------------------------------------------------------------------------------
# JSON files


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


def _is_day_of(task: Task) -> Callable[[Any], bool]:
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


def _is_status(content: Any) -> bool:
    """Whether a parsed ``status.json`` has the expected shape."""
    return _has_task_entries(content, lambda entry: isinstance(entry, dict) and entry.get("state") in TASK_STATES)


def _is_inventory(content: Any) -> bool:
    """Whether a parsed ``inventory.json`` has the expected shape."""
    return _has_task_entries(
        content,
        lambda entry: isinstance(entry, dict) and all(isinstance(entry.get(f), int) for f in ("files", "rows", "bytes")),
    )


# ---------------------------------------------------------------------------------------------
# Day records (pure functions on the content of a _day.json)


def new_day(task: Task) -> dict[str, Any]:
    """The ``_day.json`` content of a task nobody has worked on."""
    now = timestamp(utc_now())
    return {
        "version": FORMAT_VERSION,
        **task.identity(),
        "state": "queued",
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
        "state": "pending",
        "file": None,
        "rows": 0,
        "bytes": 0,
        "sha256": None,
        "attempts": 0,
        "error": None,
        "checks": {},
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
        if entry["state"] == "downloading":
            entry["state"] = "pending"


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


def file_totals(day: Mapping[str, Any]) -> dict[str, int]:
    """Files, rows and bytes the task's records point at."""
    entries = [entry for entry in day["expirations"].values() if entry.get("file")]
    return {
        "files": len(entries),
        "rows": sum(entry.get("rows", 0) for entry in entries),
        "bytes": sum(entry.get("bytes", 0) for entry in entries),
    }


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
        entry["state"] = "complete"
        entry["updated_at"] = day["created_at"]
        set_file(entry, found)
        day["expirations"][expiration.isoformat()] = entry
    if day["expirations"]:
        day["state"] = "partial"
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
                entry["state"] = "complete"
                set_file(entry, found)
        elif entry is not None and entry.get("file"):
            problems.append(f"{key} {name}: recorded file {entry['file']}: {found or 'missing'}")
            entry["state"] = "pending"
            set_file(entry, None)
        elif found is not None:
            problems.append(f"{key} {name}: unrecorded file {found}")
    if day["state"] == "success" and any(e["state"] != "complete" for e in day["expirations"].values()):
        day["state"] = "partial"
        day["covered"] = []
    return problems


def _describes(entry: Mapping[str, Any], info: storage.FileInfo) -> bool:
    """Whether a complete record names exactly this verified file."""
    return entry["state"] == "complete" and (
        entry.get("file"), entry.get("rows"), entry.get("bytes"), entry.get("sha256")
    ) == (Path(info.path).name, info.rows, info.bytes, info.sha256)


# ---------------------------------------------------------------------------------------------
# The ledger


def _check_state(state: str, allowed: tuple[str, ...], what: str) -> None:
    if state not in allowed:
        raise ValueError(f"{state!r} is not a {what} state (one of {', '.join(allowed)})")


class Ledger:
    """The ledger of one data dir. Every method takes the lock; instances are cheap and stateless."""

    def __init__(self, data_dir: Path, *, lock_timeout: float = 60.0, stale_after: float = 60.0) -> None:
        if lock_timeout < 0 or stale_after <= 0:
            raise ValueError("lock_timeout must be >= 0 and stale_after > 0")
        self.data_dir = Path(data_dir)
        self.lock_timeout = lock_timeout
        self.stale_after = stale_after
        self._lock_file = storage.lock_path(self.data_dir)

    # -- the lock ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the ledger lock: the flock on ``.spxdl.lock`` and this process's threading.Lock.

        Reentrant within a thread. Raises LedgerBusy if not acquired within ``lock_timeout``.
        """
        locks = _PROCESS_LOCKS
        key = os.path.realpath(self._lock_file)
        depths = locks.depths()
        if depths.get(key, 0) > 0:
            depths[key] += 1
            try:
                yield
            finally:
                depths[key] -= 1
            return
        thread_lock = locks.thread_lock(key)
        fd = self._acquire(thread_lock)
        owner = os.getpid()
        depths[key] = 1
        try:
            yield
        finally:
            depths[key] = 0
            if os.getpid() == owner:  # a forked child must not unlock the parent's shared descriptor
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            thread_lock.release()

    def _acquire(self, thread_lock: threading.Lock) -> int:
        """Take the threading.Lock, then the flock on a fresh descriptor; returns the descriptor."""
        deadline = time.monotonic() + self.lock_timeout
        if not thread_lock.acquire(timeout=self.lock_timeout):
            raise self._busy()
        try:
            return self._flock_until(deadline)
        except BaseException:
            thread_lock.release()
            raise

    def _flock_until(self, deadline: float) -> int:
        """Open the lock file anew and poll a non-blocking flock until it succeeds or time is up."""
        self._lock_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        pause = LOCK_POLL_FIRST
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise self._busy() from None
                    time.sleep(pause)
                    pause = min(pause * 2, LOCK_POLL_MAX)
        except BaseException:
            os.close(fd)
            raise

    def _busy(self) -> LedgerBusy:
        return LedgerBusy(
            f"could not lock the ledger ({self._lock_file}) within {self.lock_timeout:g} s; "
            "another spxdl run may be using this data dir: wait for it to finish, or raise the lock timeout"
        )

    # -- claims ----------------------------------------------------------------------------------

    def claim(self, task: Task, *, min_dte: int, max_dte: int) -> bool:
        """Take ``task`` for this process unless a live claim of another process holds it.

        A claim is taken over (with a warning) when its process is gone from this host or its
        heartbeat is older than ``stale_after`` seconds. The task becomes ``in_progress`` and
        expirations left ``downloading`` go back to ``pending``. False: a live run holds it.
        """
        if min_dte > max_dte:
            raise ValueError(f"min_dte {min_dte} is above max_dte {max_dte}")
        with self.lock():
            day = self._load_day(task) or new_day(task)
            holder = day["claim"]
            if holder and not self._is_own(holder):
                if self._is_live(holder):
                    return False
                log.warning("taking over %s from %s (%s)", task.key, _describe(holder), self._why_stale(holder))
            now = timestamp(utc_now())
            day["claim"] = {
                "pid": os.getpid(),
                "ppid": os.getppid(),
                "host": socket.gethostname(),
                "started_at": now,
                "heartbeat": now,
                "min_dte": min_dte,
                "max_dte": max_dte,
            }
            day.update(state="in_progress", started_at=now, finished_at=None, error=None)
            reset_downloading(day)
            self._save_day(task, day)
            self._publish(task, day, inventory=False)
            return True

    def heartbeat(self, task: Task) -> bool:
        """Refresh our claim's heartbeat; False (and nothing written) if we no longer hold it."""
        with self.lock():
            day = self._load_day(task)
            claim = day["claim"] if day else None
            if not claim or not self._is_own(claim):
                log.warning("not refreshing %s: this process does not hold it (%s)", task.key, _describe(claim))
                return False
            claim["heartbeat"] = timestamp(utc_now())
            self._save_day(task, day)
            return True

    def release(self, task: Task) -> bool:
        """Drop the claim of this process or of one of its children (an interrupted task).

        States stay as they are. False if someone else's live claim holds the task.
        """
        with self.lock():
            day = self._load_day(task)
            if day is None or day["claim"] is None:
                return True
            if not self._may_end(day["claim"]):
                return False
            day["claim"] = None
            self._save_day(task, day)
            self._publish(task, day, inventory=False)
            return True

    def is_held(self, task: Task) -> bool:
        """Whether another process holds a live claim on ``task``."""
        day = self.day(task)
        claim = day["claim"] if day else None
        return bool(claim) and not self._is_own(claim) and self._is_live(claim)

    def _is_own(self, claim: Mapping[str, Any]) -> bool:
        return claim.get("host") == socket.gethostname() and claim.get("pid") == os.getpid()

    def _may_end(self, claim: Mapping[str, Any]) -> bool:
        """Ours, a child's of ours (the engine's parent releasing its workers' tasks), or dead."""
        ours = claim.get("host") == socket.gethostname() and os.getpid() in (claim.get("pid"), claim.get("ppid"))
        return ours or not self._is_live(claim)

    def _is_live(self, claim: Mapping[str, Any]) -> bool:
        return self._why_stale(claim) is None

    def _why_stale(self, claim: Mapping[str, Any]) -> str | None:
        """Why ``claim`` is stale, or None if it is live."""
        try:
            age = (utc_now() - parse_timestamp(claim["heartbeat"])).total_seconds()
            started = parse_timestamp(claim["started_at"])
        except (KeyError, TypeError, ValueError):
            return "unreadable claim"
        if age > self.stale_after:
            return f"heartbeat {age:.0f} s old"
        if claim.get("host") == socket.gethostname() and not procs.process_alive(claim.get("pid"), started):
            return "its process is gone"
        return None

    # -- recording ---------------------------------------------------------------------------------

    def record_expiration(
        self,
        task: Task,
        expiration: date,
        state: str,
        *,
        info: storage.FileInfo | None = None,
        attempts: int = 0,
        error: str | None = None,
        checks: Mapping[str, int] | None = None,
        extra_columns: tuple[str, ...] = (),
    ) -> None:
        """Store one expiration's state and, with ``info``, its verified file. Touches only ``_day.json``.

        A record keeps its last file until another ``info`` replaces it (a failed re-download
        leaves the previous file in place). ``complete`` needs ``info``.
        """
        _check_state(state, EXPIRATION_STATES, "expiration")
        if state == "complete" and info is None:
            raise ValueError("a complete expiration needs the FileInfo of its verified file")
        with self.lock():
            day = self._load_day(task) or new_day(task)
            entry = day["expirations"].setdefault(expiration.isoformat(), new_expiration_entry())
            if info is not None:
                set_file(entry, info)
            entry.update(
                state=state,
                attempts=attempts,
                error=error,
                checks=dict(checks or {}),
                updated_at=timestamp(utc_now()),
            )
            if extra_columns:
                entry["extra_columns"] = list(extra_columns)
            else:
                entry.pop("extra_columns", None)
            self._save_day(task, day)

    def finish(self, task: Task, state: str, *, min_dte: int, max_dte: int, error: str | None = None) -> bool:
        """Set the task's final state, drop the claim and update ``status.json`` and ``inventory.json``.

        ``success`` adds ``[min_dte, max_dte]`` to the covered windows; any other state clears them
        (what failed is not known per window). False (nothing written) if another live claim holds
        the task.
        """
        _check_state(state, FINAL_STATES, "final task")
        with self.lock():
            day = self._load_day(task) or new_day(task)
            if day["claim"] and not self._may_end(day["claim"]):
                log.warning("not finishing %s: %s holds it", task.key, _describe(day["claim"]))
                return False
            covered = merge_windows(day["covered"], min_dte, max_dte) if state == "success" else []
            day.update(state=state, covered=covered, claim=None, error=error, finished_at=timestamp(utc_now()))
            self._save_day(task, day)
            self._publish(task, day, inventory=True)
            return True

    # -- reading -----------------------------------------------------------------------------------

    def day(self, task: Task) -> dict[str, Any] | None:
        """The task's ``_day.json`` content (rebuilt if corrupt); None if the ledger has no trace of it."""
        with self.lock():
            return self._load_day(task)

    def is_done(self, task: Task, *, min_dte: int, max_dte: int) -> bool:
        """Whether the task is ``success`` with a covered window containing ``[min_dte, max_dte]``."""
        day = self.day(task)
        return day is not None and day["state"] == "success" and window_covered(day["covered"], min_dte, max_dte)

    def expiration_states(self, task: Task) -> dict[date, str]:
        """The state of every expiration the task's record knows."""
        day = self.day(task)
        if day is None:
            return {}
        return {date.fromisoformat(name): entry["state"] for name, entry in day["expirations"].items()}

    def status(self) -> dict[str, Any]:
        """The content of ``status.json`` (rebuilt first if missing or corrupt)."""
        with self.lock():
            return self._load_status()

    def inventory(self) -> dict[str, Any]:
        """The content of ``inventory.json`` (rebuilt first if missing or corrupt)."""
        with self.lock():
            return self._load_inventory()

    def tasks(self) -> Iterator[tuple[Task, dict[str, Any]]]:
        """Every task ``status.json`` knows, in order, with its summary entry."""
        entries = self.status()["tasks"]
        for key in sorted(entries, key=Task.from_key):
            yield Task.from_key(key), entries[key]

    # -- rebuilding --------------------------------------------------------------------------------

    def rebuild(self, *, verify_files: bool = True) -> dict[str, Any]:
        """Rebuild the ledger from the ``_day.json`` files and the Parquet footers.

        Corrupt files are moved aside and rebuilt. With ``verify_files`` every data file's footer
        and checksum is compared with its record (read outside the lock, so run this while no
        download writes into the data dir). Returns tasks, files, rows, bytes and problems.
        """
        problems: list[str] = []
        for archive, root, trade_date, _directory in storage.iter_task_dirs(self.data_dir):
            task = Task(archive, root, trade_date)
            footers = self._read_footers(task) if verify_files else None
            with self.lock():
                self._repair_day(task, footers, problems)
        with self.lock():
            self._read_summary(storage.status_path(self.data_dir), _is_status, problems)
            self._read_summary(storage.inventory_path(self.data_dir), _is_inventory, problems)
            _status, inventory = self._rebuild_summaries(problems)
        return {"tasks": len(inventory["tasks"]), **inventory["totals"], "problems": problems}

    def _repair_day(self, task: Task, footers: Mapping[date, Any] | None, problems: list[str]) -> None:
        day = self._load_day(task, problems, footers)
        if day is not None and footers is not None:
            found = reconcile_day(day, footers)
            if found:
                problems.extend(found)
                self._save_day(task, day)

    # -- files (callers hold the lock) ---------------------------------------------------------------

    def _day_path(self, task: Task) -> Path:
        return storage.day_json_path(self.data_dir, task.archive, task.root, task.trade_date)

    def _save_day(self, task: Task, day: dict[str, Any]) -> None:
        day["updated_at"] = timestamp(utc_now())
        storage.write_json_atomic(self._day_path(task), day)

    def _load_day(
        self, task: Task, problems: list[str] | None = None, footers: Mapping[date, Any] | None = None
    ) -> dict[str, Any] | None:
        """The task's record; a corrupt or lost one is rebuilt from its files and saved.

        ``footers``, if given, are the task dir's files as already read. None if there is neither
        a record nor a data file.
        """
        try:
            day = read_json(self._day_path(task), _is_day_of(task))
            if day is not None:
                return day
            corrupt = False
        except LedgerCorrupt as exc:
            corrupt = True
            if problems is not None:
                problems.append(str(exc))
        if footers is None:
            footers = self._read_footers(task)
        if not footers and not corrupt:
            return None
        day = day_from_files(task, footers)
        log.warning("rebuilt %s from %d file(s) on disk", self._day_path(task), len(day["expirations"]))
        self._save_day(task, day)
        return day

    def _read_footers(self, task: Task) -> dict[date, storage.FileInfo | str]:
        """Each data file in the task dir: its verified FileInfo, or why verification failed."""
        footers: dict[date, storage.FileInfo | str] = {}
        for expiration, path in storage.data_files(self.data_dir, task.archive, task.root, task.trade_date).items():
            try:
                footers[expiration] = storage.verify_parquet(path)
            except StorageError as exc:
                footers[expiration] = f"{path.name} is unreadable: {exc}"
        return footers

    def _read_summary(
        self, path: Path, is_valid: Callable[[Any], bool], problems: list[str] | None = None
    ) -> dict[str, Any] | None:
        try:
            return read_json(path, is_valid)
        except LedgerCorrupt as exc:
            if problems is not None:
                problems.append(str(exc))
            return None

    def _load_status(self) -> dict[str, Any]:
        """``status.json``; if lost or corrupt, both summaries are rebuilt from the days."""
        status = self._read_summary(storage.status_path(self.data_dir), _is_status)
        return status if status is not None else self._rebuild_summaries()[0]

    def _load_inventory(self) -> dict[str, Any]:
        """``inventory.json``; if lost or corrupt, both summaries are rebuilt from the days."""
        inventory = self._read_summary(storage.inventory_path(self.data_dir), _is_inventory)
        return inventory if inventory is not None else self._rebuild_summaries()[1]

    def _rebuild_summaries(self, problems: list[str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Write ``status.json`` and ``inventory.json`` anew from every task's record."""
        status: dict[str, Any] = {"version": FORMAT_VERSION, "tasks": {}}
        inventory: dict[str, Any] = {"version": FORMAT_VERSION, "tasks": {}}
        for archive, root, trade_date, _directory in storage.iter_task_dirs(self.data_dir):
            task = Task(archive, root, trade_date)
            day = self._load_day(task, problems)
            if day is not None:
                status["tasks"][task.key] = task_summary(day)
                inventory["tasks"][task.key] = file_totals(day)
        self._write_status(status)
        self._write_inventory(inventory)
        return status, inventory

    def _publish(self, task: Task, day: Mapping[str, Any], *, inventory: bool) -> None:
        """Put the task's summary into ``status.json`` and, if asked, its files into ``inventory.json``."""
        status = self._load_status()
        status["tasks"][task.key] = task_summary(day)
        self._write_status(status)
        if inventory:
            content = self._load_inventory()
            content["tasks"][task.key] = file_totals(day)
            self._write_inventory(content)

    def _write_status(self, status: dict[str, Any]) -> None:
        counts = {state: 0 for state in TASK_STATES}
        for entry in status["tasks"].values():
            counts[entry["state"]] += 1
        status.update(version=FORMAT_VERSION, states=counts, updated_at=timestamp(utc_now()))
        storage.write_json_atomic(storage.status_path(self.data_dir), status, compact=True)

    def _write_inventory(self, inventory: dict[str, Any]) -> None:
        archives: dict[str, dict[str, int]] = {}
        for key, entry in inventory["tasks"].items():
            totals = archives.setdefault(Task.from_key(key).archive, {"tasks": 0, "files": 0, "rows": 0, "bytes": 0})
            totals["tasks"] += 1
            for field in ("files", "rows", "bytes"):
                totals[field] += entry[field]
        grand = {field: sum(totals[field] for totals in archives.values()) for field in ("files", "rows", "bytes")}
        inventory.update(
            version=FORMAT_VERSION, archives=archives, totals=grand, updated_at=timestamp(utc_now())
        )
        storage.write_json_atomic(storage.inventory_path(self.data_dir), inventory, compact=True)


def _describe(claim: Mapping[str, Any] | None) -> str:
    """A claim as ``pid N on HOST`` for log lines."""
    if not claim:
        return "no claim"
    return f"pid {claim.get('pid')} on {claim.get('host')}"
