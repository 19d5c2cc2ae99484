"""Reading the archive back: task status, gaps against the trading calendar, verification, repair.

Everything here reads; only :func:`repair` changes the disk, and it never deletes data: a file
that fails verification is moved aside (a hidden ``.<name>.corrupt-<time>`` next to it) and its
task is planned again.

Each function takes the data dir and, optionally, its ``Ledger``: where the data lives apart from
the ledger (an object store), the ledger knows both (``engine.shared.ledger_for`` builds it).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path, PurePath
from typing import Any, Iterable, Iterator

from spxdl import datasets, shapes, storage
from spxdl.archive_fs import Archive, LocalArchive, Location
from spxdl.errors import LedgerBusy, StorageError
from spxdl.ledger import ExpirationState, Ledger, RunBook, RunRecordState, Task, TaskState
from spxdl.trading_calendar import TradingCalendar
from spxdl.urls import redact

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ status


@dataclass(frozen=True)
class TaskLine:
    """One task as ``spxdl status`` shows it."""

    key: str
    archive: str
    root: str
    trade_date: date
    state: str
    expirations: dict[str, int]
    rows: int
    bytes: int
    seconds: float | None
    error: str | None
    claimed_by: str | None


def _duration(entry: dict[str, Any]) -> float | None:
    started, finished = entry.get("started_at"), entry.get("finished_at")
    if not started or not finished:
        return None
    return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()


def shown_state(ledger: Ledger, task: Task, entry: dict[str, Any]) -> str:
    """A task's state as a user should read it: ``interrupted`` for an ``in_progress`` task that no live run
    holds (the run that claimed it was stopped or died; the next run resumes it)."""
    if entry["state"] == TaskState.IN_PROGRESS and not ledger.is_held(task):
        return TaskState.INTERRUPTED
    return entry["state"]


def task_lines(ledger: Ledger) -> list[TaskLine]:
    """Every task the ledger knows, in (archive, root, date) order."""
    lines = []
    for task, entry in ledger.tasks():
        state = shown_state(ledger, task, entry)
        lines.append(TaskLine(
            key=task.key,
            archive=task.archive,
            root=task.root,
            trade_date=task.trade_date,
            state=state,
            expirations={name: count for name, count in entry.get("expirations", {}).items() if count},
            rows=entry.get("rows", 0),
            bytes=entry.get("bytes", 0),
            seconds=_duration(entry),
            error=entry.get("error"),
            claimed_by=entry.get("claimed_by") if state == TaskState.IN_PROGRESS else None,
        ))
    return lines


def status_report(data_dir: Path | str, *, ledger: Ledger | None = None) -> dict[str, Any]:
    """Tasks, totals by state, rows and bytes, the last day whose every task succeeded, and the runs
    now running or interrupted before all their tasks were done (``spxdl resume`` finishes those)."""
    ledger = ledger if ledger is not None else Ledger(Path(data_dir))
    lines = task_lines(ledger)
    runs = [view.as_dict() for view in RunBook(ledger).views()
            if view.state == RunRecordState.RUNNING or view.remaining]
    states: dict[str, int] = {}
    for line in lines:
        states[line.state] = states.get(line.state, 0) + 1
    return {
        "data_dir": redact(str(data_dir)),
        "tasks": [asdict(line) for line in lines],
        "totals": {
            "tasks": len(lines),
            "states": states,
            "rows": sum(line.rows for line in lines),
            "bytes": sum(line.bytes for line in lines),
        },
        "last_complete_day": last_complete_day(lines),
        "runs": runs,
    }


def last_complete_day(lines: Iterable[TaskLine]) -> date | None:
    """The latest trade date on which every task the ledger knows is ``success``."""
    by_day: dict[date, bool] = {}
    for line in lines:
        by_day[line.trade_date] = by_day.get(line.trade_date, True) and line.state == TaskState.SUCCESS
    complete = [day for day, ok in by_day.items() if ok]
    return max(complete) if complete else None


def incomplete_tasks(ledger: Ledger) -> list[Task]:
    """Tasks the ledger knows that are not ``success``: failed, partial, no data, or left unfinished."""
    return [task for task, entry in ledger.tasks() if entry["state"] != TaskState.SUCCESS]


# ------------------------------------------------------------------ gaps


@dataclass(frozen=True)
class Gap:
    """A trading day of one archive and root without complete data, and why."""

    archive: str
    root: str
    trade_date: date
    state: str  # "missing" (never downloaded) or the ledger's task state
    error: str | None = None

    @property
    def key(self) -> str:
        return Task(self.archive, self.root, self.trade_date).key


def find_gaps(
    data_dir: Path | str,
    calendar: TradingCalendar,
    start: date,
    end: date,
    *,
    archives: Iterable[str],
    roots: Iterable[str],
    min_dte: int,
    max_dte: int,
    ledger: Ledger | None = None,
) -> list[Gap]:
    """Trading days in ``start..end`` whose task is not done for the DTE window (``no_data`` days too).

    Each archive is judged with its dataset's roots and window (an index: its index, no window).
    """
    ledger = ledger if ledger is not None else Ledger(Path(data_dir))
    known = {task: entry for task, entry in ledger.tasks()} if ledger.data_dir.exists() else {}
    gaps = []
    roots = tuple(roots)
    for archive in archives:
        dataset = _dataset_of(archive)
        low, high = dataset.dte_window(min_dte, max_dte) if dataset else (min_dte, max_dte)
        for root in dataset.roots_for(roots) if dataset else roots:
            for day in calendar.trading_days(start, end):
                task = Task(archive, root, day)
                entry = known.get(task)
                if entry is None:
                    gaps.append(Gap(archive, root, day, "missing"))
                elif not ledger.is_done(task, min_dte=low, max_dte=high):
                    state = shown_state(ledger, task, entry)
                    state = state if state != TaskState.SUCCESS else "narrower DTE window"
                    gaps.append(Gap(archive, root, day, state, entry.get("error")))
    return gaps


# ------------------------------------------------------------------ verify and repair


BAD_KINDS = ("checksum", "rows", "unreadable", "schema")  # a data file whose content cannot be trusted


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the archive: ``kind`` is missing, checksum, rows, unreadable, schema, extra or temp."""

    kind: str
    path: str
    detail: str
    task: str | None = None


@dataclass
class VerifyReport:
    """What ``verify`` looked at and what it found."""

    tasks: int = 0
    files: int = 0
    rows: int = 0
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)
    older_schema: list[tuple[str, str]] = field(default_factory=list)  # (path, its schema version): sound, older
    older_days: set[date] = field(default_factory=set)  # trade dates holding such files

    @property
    def ok(self) -> bool:
        return not self.problems

    def bad_files(self) -> list[Path]:
        """Data files whose content cannot be trusted (moved aside by repair)."""
        return [Path(p.path) for p in self.problems if p.kind in BAD_KINDS]


def _schema_version_of(archive: Archive, path: Location) -> str | None:
    metadata = archive.parquet_metadata(path).metadata or {}
    value = metadata.get(b"schema_version")
    return value.decode() if value is not None else None


def _dataset_of(archive: str) -> datasets.Dataset | None:
    """The dataset of an archive directory name (``greeks-1m``, ``eod``, ``index_price-1m``)."""
    name = archive.split("-", 1)[0]
    return datasets.DATASETS.get(name)


def _verify_recorded_file(
    files: Archive, task: Task, directory: Location, name: str, entry: dict[str, Any], report: VerifyReport
) -> None:
    path = directory / entry["file"]
    shown = files.show(path)
    if not files.exists(path):
        report.problems.append(Problem("missing", shown, f"recorded for {name}, not on disk", task.key))
        return
    try:
        info = files.verify_parquet(path)
    except StorageError as exc:
        report.problems.append(Problem("unreadable", shown, str(exc), task.key))
        return
    report.files += 1
    report.rows += info.rows
    report.bytes += info.bytes
    if info.sha256 != entry.get("sha256"):
        report.problems.append(Problem("checksum", shown, "sha256 differs from the ledger's", task.key))
    elif info.rows != entry.get("rows"):
        report.problems.append(Problem("rows", shown, f"{info.rows} rows, ledger says {entry.get('rows')}", task.key))
    dataset = _dataset_of(task.archive)
    if dataset is None:
        return
    version = _schema_version_of(files, path)
    if version is not None and version.isdigit() and int(version) < dataset.schema_version:
        report.older_schema.append((shown, version))  # sound: its columns are a prefix of today's
        report.older_days.add(task.trade_date)
    elif version != str(dataset.schema_version):
        report.problems.append(Problem("schema", shown, f"schema version {version} is not {dataset.schema_version}", task.key))


def _verify_task(ledger: Ledger, task: Task, directory: Location, report: VerifyReport) -> None:
    files = ledger.archive
    day = ledger.day(task) or {"expirations": {}}
    recorded = set()
    for name, entry in sorted(day["expirations"].items()):
        if entry.get("state") == ExpirationState.COMPLETE and entry.get("file"):
            recorded.add(entry["file"])
            _verify_recorded_file(files, task, directory, name, entry, report)
    for name in files.names(directory):
        shown = files.show(directory / name)
        if storage.temp_file_pid(name) is not None:
            report.problems.append(Problem("temp", shown, "temp file of an unfinished write", task.key))
        elif PurePath(name).suffix == ".parquet" and name not in recorded:
            report.problems.append(Problem("extra", shown, "data file the ledger does not record as complete", task.key))


def iter_tasks_in_range(
    data_dir: Path, start: date | None, end: date | None, *, ledger: Ledger | None = None
) -> Iterator[tuple[Task, Location]]:
    """Task directories (in the ledger, or where the data lives) whose trade date lies in ``start..end``
    (either bound optional)."""
    ledger = ledger if ledger is not None else Ledger(data_dir)
    for task in ledger.tasks_on_disk():
        if (start is None or task.trade_date >= start) and (end is None or task.trade_date <= end):
            yield task, ledger.archive.task_dir(task.archive, task.root, task.trade_date)


def verify_archive(
    data_dir: Path, start: date | None = None, end: date | None = None, *, ledger: Ledger | None = None
) -> VerifyReport:
    """Check every recorded file's existence, footer, rows, sha256 and schema version against the ledger.

    Also reports data files the ledger does not know and temp files left by unfinished writes.
    """
    ledger = ledger if ledger is not None else Ledger(data_dir)
    ledger.archive.check()  # an object store that does not answer, refuses us or lacks the bucket: say so once
    report = VerifyReport()
    for task, directory in iter_tasks_in_range(data_dir, start, end, ledger=ledger):
        report.tasks += 1
        _verify_task(ledger, task, directory, report)
    return report


def quarantine(path: Location, archive: Archive | None = None) -> Location:
    """Move a bad data file aside (hidden, so readers skip it); returns its new path."""
    archive = archive if archive is not None else LocalArchive(Path(path).parent)
    target = archive.move_aside(path, hidden=True)
    log.warning("moved %s aside to %s", archive.show(path), target.name)
    return target


def repair(data_dir: Path, report: VerifyReport, *, ledger: Ledger | None = None) -> dict[str, Any]:
    """Move bad files aside, remove dead temp files, and rebuild the ledger from what is on disk.

    Tasks that lost a file drop to ``partial`` and are planned again by the next run. Refused
    (LedgerBusy) while a live run holds a task: a file it is about to record would look bad.
    """
    ledger = ledger if ledger is not None else Ledger(data_dir)
    files = ledger.archive
    busy = [task.key for task, entry in ledger.tasks() if entry.get("claimed_by") and ledger.is_held(task)]
    if busy:
        raise LedgerBusy(
            f"a live spxdl run is downloading into {redact(str(data_dir))} ({busy[0]}); repair once it has finished"
        )
    bad = [files.location(problem.path) for problem in report.problems if problem.kind in BAD_KINDS]
    moved = [files.show(quarantine(path, files)) for path in bad if files.exists(path)]
    swept = [str(path) for path in storage.sweep_temp_files(ledger.data_dir)] if ledger.mirror is not None else []
    swept += [files.show(path) for path in files.sweep_temp_files()]
    rebuilt = ledger.rebuild()
    if ledger.mirror is not None:  # a ledger dir started afresh takes the shapes too
        for archive in sorted({task.archive for task in ledger.tasks_on_disk()}):
            shapes.adopt_published(ledger.data_dir, archive, ledger.mirror)
    return {"moved_aside": moved, "temp_removed": swept, "ledger": rebuilt}
