"""``LedgerStore``: the ledger's files of one data dir, read and written under the ledger lock.

The base of ``Ledger``. A task's ``_day.json`` is loaded (a corrupt or lost one rebuilt from its
Parquet footers, or adopted from the copy published next to the data) and saved; ``status.json``
and ``inventory.json`` are loaded, updated from a task's record, and rebuilt from every record
when lost or corrupt (a corrupt file is moved aside by ``read_json``, never overwritten). Every
write is ``storage.write_json_atomic``; the methods that start with ``_`` expect the caller to
hold the lock.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any, Callable, Mapping

from spxdl import storage
from spxdl.archive_fs import Archive, LocalArchive
from spxdl.errors import LedgerCorrupt, StorageError
from spxdl.ledger.lock import LedgerLock
from spxdl.ledger.mirror import published_day
from spxdl.ledger.records import (
    FORMAT_VERSION,
    archive_totals,
    day_from_files,
    file_totals,
    grand_totals,
    is_day_of,
    is_inventory,
    is_status,
    read_json,
    reconcile_day,
    state_counts,
    task_summary,
)
from spxdl.ledger.task import Task, timestamp, utc_now

log = logging.getLogger(__name__)


class LedgerStore:
    """The ledger's files of one data dir; ``archive`` holds the data files (by default the same place).

    ``mirror`` is the archive when it lies elsewhere: where copies of the ledger's files go, and
    where a lost ``_day.json`` is looked for when rebuilding.
    """

    def __init__(self, data_dir: Path, *, lock_timeout: float = 60.0, archive: Archive | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.lock_timeout = lock_timeout
        self.archive = archive if archive is not None else LocalArchive(self.data_dir)
        self.mirror = None if self.archive.holds(self.data_dir) else self.archive

    def lock(self) -> LedgerLock:
        """The ledger lock of this data dir, to hold with ``with``: re-entrant within a thread.

        Raises LedgerBusy if not acquired within ``lock_timeout``.
        """
        return LedgerLock(storage.lock_path(self.data_dir), self.lock_timeout)

    # -- files (callers hold the lock) ---------------------------------------------------------------

    def _summary_paths(self) -> tuple[Path, Path]:
        return storage.status_path(self.data_dir), storage.inventory_path(self.data_dir)

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
            day = read_json(self._day_path(task), is_day_of(task))
            if day is not None:
                return day
            corrupt = False
        except LedgerCorrupt as exc:
            corrupt = True
            if problems is not None:
                problems.append(str(exc))
        if self.mirror is not None and not corrupt:
            if footers is None:
                return None  # the archive is read for tasks the ledger does not know only when rebuilding
            published = published_day(self.data_dir, self.mirror, task)
            if published is not None:
                log.warning("adopted %s from %s", self._day_path(task), self.mirror)
                self._save_day(task, published)
                return published
        if footers is None:
            footers = self._read_footers(task)
        if not footers and not corrupt:
            return None
        day = day_from_files(task, footers)
        log.warning("rebuilt %s from %d file(s) on disk", self._day_path(task), len(day["expirations"]))
        self._save_day(task, day)
        return day

    def _repair_day(self, task: Task, footers: Mapping[date, Any] | None, problems: list[str]) -> None:
        day = self._load_day(task, problems, footers)
        if day is not None and footers is not None:
            found = reconcile_day(day, footers)
            if found:
                problems.extend(found)
                self._save_day(task, day)

    def _read_footers(self, task: Task) -> dict[date, storage.FileInfo | str]:
        """Each data file in the task dir: its verified FileInfo, or why verification failed."""
        footers: dict[date, storage.FileInfo | str] = {}
        files = self.archive.data_files(task.archive, task.root, task.trade_date)
        for expiration, path in files.items():
            try:
                footers[expiration] = self.archive.verify_parquet(path)
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
        status = self._read_summary(storage.status_path(self.data_dir), is_status)
        return status if status is not None else self._rebuild_summaries()[0]

    def _load_inventory(self) -> dict[str, Any]:
        """``inventory.json``; if lost or corrupt, both summaries are rebuilt from the days."""
        inventory = self._read_summary(storage.inventory_path(self.data_dir), is_inventory)
        return inventory if inventory is not None else self._rebuild_summaries()[1]

    def _rebuild_summaries(self, problems: list[str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Write ``status.json`` and ``inventory.json`` anew from every task's record.

        Either may be what is still fine while the other is corrupt: a corrupt one is moved aside
        first, never overwritten.
        """
        self._read_summary(storage.status_path(self.data_dir), is_status, problems)
        self._read_summary(storage.inventory_path(self.data_dir), is_inventory, problems)
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
        status.update(version=FORMAT_VERSION, states=state_counts(status["tasks"]), updated_at=timestamp(utc_now()))
        storage.write_json_atomic(storage.status_path(self.data_dir), status, compact=True)

    def _write_inventory(self, inventory: dict[str, Any]) -> None:
        archives = archive_totals(inventory["tasks"])
        inventory.update(
            version=FORMAT_VERSION, archives=archives, totals=grand_totals(archives), updated_at=timestamp(utc_now())
        )
        storage.write_json_atomic(storage.inventory_path(self.data_dir), inventory, compact=True)
