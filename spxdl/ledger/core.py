"""The ledger of one data dir: claims and heartbeats, expiration records, task outcomes, summaries, rebuild.

Three kinds of JSON file, all rewritten atomically (``storage.write_json_atomic``) while holding
the ledger lock (``LedgerLock`` on ``storage.lock_path``):

- ``<task dir>/_day.json``: one task's claim, state, covered DTE windows and per-expiration file
  inventory. Per-expiration updates touch only this file, so their cost does not grow with the
  archive.
- ``<data_dir>/status.json``: one summary entry per task, rewritten when a task is claimed,
  released or finished (never per expiration or heartbeat).
- ``<data_dir>/inventory.json``: totals and per-task file counts, bytes and rows, rewritten when a
  task finishes.

A corrupt file is moved aside to ``<name>.corrupt-<UTC time>`` and rebuilt: summaries from the
``_day.json`` files, a ``_day.json`` from the Parquet footers in its directory (``store.py``, the
base of ``Ledger``, reads, writes and rebuilds the files). ``docs/ledger.md`` describes the formats
and the rules.

The data files live in the ledger's ``archive`` (by default its own directory); when they live
elsewhere (``data_dir = s3://...``), copies of the ledger's files are published there (``mirror.py``).
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any, Collection, Iterator, Mapping

from spxdl import storage
from spxdl.archive_fs import Archive
from spxdl.ledger import claims
from spxdl.ledger.mirror import publish_changed, publish_copies, tasks_on_disk
from spxdl.ledger.records import merge_windows, new_day, new_expiration_entry, reset_downloading, set_file, window_covered
from spxdl.ledger.store import LedgerStore
from spxdl.ledger.task import EXPIRATION_STATES, FINAL_STATES, ExpirationState, Task, TaskState, timestamp, utc_now

log = logging.getLogger(__name__)


def _check_state(state: str, allowed: tuple[str, ...], what: str) -> None:
    if state not in allowed:
        raise ValueError(f"{state!r} is not a {what} state (one of {', '.join(allowed)})")


class Ledger(LedgerStore):
    """The ledger of one data dir. Every method takes the lock; instances are cheap and stateless.

    ``data_dir`` holds the ledger's files, ``archive`` the data files (by default the same place);
    ``mirror`` is the archive when it lies elsewhere, where copies of the ledger's files go. Its
    files are read and written by its base, ``LedgerStore``.
    """

    def __init__(self, data_dir: Path, *, lock_timeout: float = 60.0, stale_after: float = 60.0,
                 archive: Archive | None = None, owner: str | None = None, run_pid: int | None = None) -> None:
        if lock_timeout < 0 or stale_after <= 0:
            raise ValueError("lock_timeout must be >= 0 and stale_after > 0")
        super().__init__(data_dir, lock_timeout=lock_timeout, archive=archive)
        self.stale_after = stale_after
        self.owner = owner  # whom this process claims for, when it works for several runs (claims.py)
        self.run_pid = run_pid  # the run's process, recorded in each claim (None: this process's parent)

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
            if holder and not claims.is_own(holder, self.owner):
                if claims.is_live(holder, self.stale_after):
                    return False
                why = claims.why_stale(holder, self.stale_after)
                log.warning("taking over %s from %s (%s)", task.key, claims.describe(holder), why)
            now = timestamp(utc_now())
            day["claim"] = claims.new_claim(now, min_dte=min_dte, max_dte=max_dte, owner=self.owner,
                                             run_pid=self.run_pid)
            day.update(state=TaskState.IN_PROGRESS, started_at=now, finished_at=None, error=None)
            reset_downloading(day)
            self._save_day(task, day)
            self._publish(task, day, inventory=False)
            return True

    def heartbeat(self, task: Task) -> bool:
        """Refresh our claim's heartbeat; False (and nothing written) if we no longer hold it."""
        with self.lock():
            day = self._load_day(task)
            claim = day["claim"] if day else None
            if not claim or not claims.is_own(claim, self.owner):
                log.warning("not refreshing %s: this process does not hold it (%s)", task.key, claims.describe(claim))
                return False
            claim["heartbeat"] = timestamp(utc_now())
            self._save_day(task, day)
            return True

    def release(self, task: Task, workers: Collection[int] = ()) -> bool:
        """Drop the claim of this process or of one of its ``workers`` (pids: an interrupted task).

        States stay as they are. False if someone else's live claim holds the task.
        """
        with self.lock():
            day = self._load_day(task)
            if day is None or day["claim"] is None:
                return True
            if not claims.may_end(day["claim"], self.stale_after, self.owner, workers):
                return False
            day["claim"] = None
            self._save_day(task, day)
            self._publish(task, day, inventory=False)
            publish_copies(self.data_dir, self.mirror, self._day_path(task))
            return True

    def note_listed(self, task: Task, count: int) -> None:
        """Note in our claim how many expirations the task's DTE window holds (``status`` shows the share done)."""
        with self.lock():
            day = self._load_day(task)
            claim = day["claim"] if day else None
            if claim and claims.is_own(claim, self.owner):
                claim["listed"] = count
                self._save_day(task, day)

    def is_held(self, task: Task) -> bool:
        """Whether another process holds a live claim on ``task``."""
        day = self.day(task)
        claim = day["claim"] if day else None
        return bool(claim) and not claims.is_own(claim, self.owner) and claims.is_live(claim, self.stale_after)

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
        dropped: int = 0,
    ) -> None:
        """Store one expiration's state and, with ``info``, its verified file. Touches only ``_day.json``.

        A record keeps its last file until another ``info`` replaces it (a failed re-download
        leaves the previous file in place, with its counts). ``complete`` needs ``info``. ``checks``
        counts what each check flagged in the rows received for the file ``info`` names, ``dropped``
        the rows ``[validation] mode = drop`` left out of it.
        """
        _check_state(state, EXPIRATION_STATES, "expiration")
        if state == ExpirationState.COMPLETE and info is None:
            raise ValueError("a complete expiration needs the FileInfo of its verified file")
        with self.lock():
            day = self._load_day(task) or new_day(task)
            entry = day["expirations"].setdefault(expiration.isoformat(), new_expiration_entry())
            if info is not None:  # a new file: its own counts (a failure keeps the last file's)
                set_file(entry, info)
                entry.update(checks=dict(checks or {}), dropped=dropped)
            entry.update(state=state, attempts=attempts, error=error, updated_at=timestamp(utc_now()))
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
            if day["claim"] and not claims.may_end(day["claim"], self.stale_after, self.owner):
                log.warning("not finishing %s: %s holds it", task.key, claims.describe(day["claim"]))
                return False
            covered = merge_windows(day["covered"], min_dte, max_dte) if state == TaskState.SUCCESS else []
            day.update(state=state, covered=covered, claim=None, error=error, finished_at=timestamp(utc_now()))
            self._save_day(task, day)
            self._publish(task, day, inventory=True)
            publish_copies(self.data_dir, self.mirror, self._day_path(task))
            return True

    # -- reading -----------------------------------------------------------------------------------

    def day(self, task: Task) -> dict[str, Any] | None:
        """The task's ``_day.json`` content (rebuilt if corrupt); None if the ledger has no trace of it."""
        with self.lock():
            return self._load_day(task)

    def is_done(self, task: Task, *, min_dte: int, max_dte: int) -> bool:
        """Whether the task is ``success`` with a covered window containing ``[min_dte, max_dte]``."""
        day = self.day(task)
        succeeded = day is not None and day["state"] == TaskState.SUCCESS
        return succeeded and window_covered(day["covered"], min_dte, max_dte)

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

    def tasks_on_disk(self) -> list[Task]:
        """Every task with a directory in the ledger (and where the data lives, when that is elsewhere), sorted."""
        return tasks_on_disk(self.data_dir, self.mirror)

    # -- rebuilding --------------------------------------------------------------------------------

    def rebuild(self, *, verify_files: bool = True) -> dict[str, Any]:
        """Rebuild the ledger from the ``_day.json`` files and the Parquet footers.

        Corrupt files are moved aside and rebuilt. With ``verify_files`` every data file's footer
        and checksum is compared with its record (read outside the lock, so run this while no
        download writes into the data dir). Returns tasks, files, rows, bytes and problems.
        """
        problems: list[str] = []
        for task in self.tasks_on_disk():
            footers = self._read_footers(task) if verify_files else None
            with self.lock():
                self._repair_day(task, footers, problems)
                publish_changed(self.data_dir, self.mirror, self._day_path(task))
        with self.lock():
            _status, inventory = self._rebuild_summaries(problems)
            publish_copies(self.data_dir, self.mirror, *self._summary_paths())
        return {"tasks": len(inventory["tasks"]), **inventory["totals"], "problems": problems}

    def publish_summaries(self) -> None:
        """Publish ``status.json`` and ``inventory.json`` next to the data, when it lives elsewhere."""
        if self.mirror is None:
            return
        with self.lock():
            self._load_status()
            self._load_inventory()
            publish_copies(self.data_dir, self.mirror, *self._summary_paths())
