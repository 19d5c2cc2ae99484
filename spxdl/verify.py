"""Verification of the files themselves: each recorded file against the ledger, its rows checked again on
request, and repair.

Everything here reads, except :func:`repair`, which never deletes data: a file that fails
verification is moved aside (a hidden ``.<name>.corrupt-<time>`` next to it, which readers skip),
and the ledger is rebuilt from what is on disk, so the next run fetches it again. A selection
(trade dates, datasets, roots, files or directories) narrows what is checked.

Every look at a data file goes through the ledger's ``Archive``: the data dir on disk, or an
object store (``engine.shared.ledger_for`` builds the ledger that knows both).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePath
from typing import Any, Iterator

from spxdl import audit, datasets, quality, shapes, storage
from spxdl.archive_fs import Archive, LocalArchive, Location
from spxdl.errors import LedgerBusy, StorageError
from spxdl.ledger import ExpirationState, Ledger, Task
from spxdl.trading_calendar import TradingCalendar
from spxdl.urls import redact

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the archive: ``kind`` is missing, checksum, rows, unreadable, schema, content, extra or temp."""

    kind: str
    path: str
    detail: str
    task: str | None = None


BAD_CONTENT = ("checksum", "rows", "unreadable", "schema", "content")  # files repair moves aside


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
    rechecked: int = 0  # files whose rows were checked again (--content)
    not_compared: list[tuple[str, str]] = field(default_factory=list)  # (path, why its content was not compared)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else 0.0

    def bad_files(self) -> list[str]:
        """Data files whose content cannot be trusted (moved aside by repair), as the problems show them."""
        return list(dict.fromkeys(p.path for p in self.problems if p.kind in BAD_CONTENT))


@dataclass(frozen=True)
class Selection:
    """The part of an archive to verify: trade dates, datasets, roots, and files or directories in it."""

    start: date | None = None
    end: date | None = None
    datasets: frozenset[str] = frozenset()  # dataset names (every interval's archive); empty: all
    roots: frozenset[str] = frozenset()
    paths: tuple[Location, ...] = ()  # absolute (in an object store: bucket/prefix/...); empty: all

    def takes_task(self, task: Task, directory: Location) -> bool:
        """Whether a task directory is (partly) selected."""
        dataset = audit.dataset_of(task.archive)
        directory = _absolute(directory)
        return (
            (self.start is None or task.trade_date >= self.start)
            and (self.end is None or task.trade_date <= self.end)
            and (not self.datasets or (dataset is not None and dataset.name in self.datasets))
            and (not self.roots or task.root in self.roots)
            and (not self.paths or any(_within(directory, path) or _within(path, directory) for path in self.paths))
        )

    def takes_file(self, path: Location) -> bool:
        """Whether a file of a selected task directory is selected."""
        return not self.paths or any(_within(_absolute(path), chosen) for chosen in self.paths)


def _within(path: Location, directory: Location) -> bool:
    return path == directory or directory in path.parents


def _absolute(location: Location) -> Location:
    """A local path made absolute (an object store's location already is)."""
    return location.absolute() if isinstance(location, Path) else location


@dataclass(frozen=True)
class ContentCheck:
    """What ``verify --content`` needs to check a file's rows again: the calendar (early closes) and, for a
    file that does not name its validation mode (written before files did), the mode its archive records
    (in the ledger dir: the data dir, unless the data lives elsewhere)."""

    ledger_dir: Path
    calendar: TradingCalendar
    modes: dict[str, str | None] = field(default_factory=dict)

    def mode_of(self, archive: str) -> str | None:
        if archive not in self.modes:
            self.modes[archive] = audit.validation_of(self.ledger_dir, archive)
        return self.modes[archive]


def _schema_version_of(files: Archive, path: Location) -> str | None:
    metadata = files.parquet_metadata(path).metadata or {}
    value = metadata.get(b"schema_version")
    return value.decode() if value is not None else None


def _verify_recorded_file(files: Archive, task: Task, directory: Location, name: str, entry: dict[str, Any],
                          report: VerifyReport, content: ContentCheck | None) -> None:
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
    dataset = audit.dataset_of(task.archive)
    if dataset is None:
        return
    version = _schema_version_of(files, path)
    if version is not None and version.isdigit() and int(version) < dataset.schema_version:
        report.older_schema.append((shown, version))  # sound: its columns are a prefix of today's
        report.older_days.add(task.trade_date)
        if content is not None:
            report.not_compared.append((shown, f"schema version {version}: checked as written, not again"))
    elif version != str(dataset.schema_version):
        report.problems.append(Problem("schema", shown, f"schema version {version} is not {dataset.schema_version}", task.key))
    elif content is not None:
        _verify_content(files, task, path, entry, dataset, report, content)


def _verify_content(files: Archive, task: Task, path: Location, entry: dict[str, Any], dataset: datasets.Dataset,
                    report: VerifyReport, content: ContentCheck) -> None:
    """Check a file's rows again and compare the counts with those the ledger recorded when it was written."""
    from spxdl.convert import recount  # here: the command line loads this module, a run with nothing to do no Arrow
    from spxdl.instants import early_close_ms

    shown = files.show(path)
    recorded = entry.get("checks") or {}
    if not recorded:
        report.not_compared.append((shown, "the ledger holds no counts for it (rebuilt from the file)"))
        return
    try:
        with files.open_input(path) as source:
            found = recount(source, dataset, early_close_ms(content.calendar, task.trade_date), shown=shown)
    except StorageError as exc:
        report.problems.append(Problem("unreadable", shown, str(exc), task.key))
        return
    report.rechecked += 1
    mode = content.mode_of(task.archive)
    differences = quality.content_differences(found, recorded, mode)
    if differences:
        report.problems.append(Problem("content", shown, "; ".join(differences), task.key))


def _verify_task(ledger: Ledger, task: Task, directory: Location, report: VerifyReport, selection: Selection,
                 content: ContentCheck | None) -> None:
    files = ledger.archive
    day = ledger.day(task) or {"expirations": {}}
    recorded = set()
    for name, entry in sorted(day["expirations"].items()):
        if entry.get("state") == ExpirationState.COMPLETE and entry.get("file"):
            recorded.add(entry["file"])
            if selection.takes_file(directory / entry["file"]):
                _verify_recorded_file(files, task, directory, name, entry, report, content)
    for name in files.names(directory):
        if not selection.takes_file(directory / name):
            continue
        shown = files.show(directory / name)
        if storage.temp_file_pid(name) is not None:
            report.problems.append(Problem("temp", shown, "temp file of an unfinished write", task.key))
        elif PurePath(name).suffix == ".parquet" and name not in recorded:
            report.problems.append(Problem("extra", shown, "data file the ledger does not record as complete", task.key))


def iter_selected_tasks(ledger: Ledger, selection: Selection) -> Iterator[tuple[Task, Location]]:
    """Task directories (in the ledger, or where the data lives) that ``selection`` takes."""
    for task in ledger.tasks_on_disk():
        directory = ledger.archive.task_dir(task.archive, task.root, task.trade_date)
        if selection.takes_task(task, directory):
            yield task, directory


def verify_archive(data_dir: Path | str, selection: Selection = Selection(), content: ContentCheck | None = None, *,
                   ledger: Ledger | None = None) -> VerifyReport:
    """Check every selected recorded file's existence, footer, rows, sha256 and schema version against the
    ledger, and with ``content`` its rows' checks against the counts the ledger recorded when it was written.

    Also reports data files the ledger does not know and temp files left by unfinished writes.
    """
    started = time.monotonic()
    ledger = ledger if ledger is not None else Ledger(data_dir)
    ledger.archive.check()  # an object store that does not answer, refuses us or lacks the bucket: say so once
    report = VerifyReport()
    for task, directory in iter_selected_tasks(ledger, selection):
        report.tasks += 1
        _verify_task(ledger, task, directory, report, selection, content)
    report.seconds = time.monotonic() - started
    return report


def quarantine(path: Location, archive: Archive | None = None) -> Location:
    """Move a bad data file aside (hidden, so readers skip it); returns its new path."""
    archive = archive if archive is not None else LocalArchive(Path(path).parent)
    target = archive.move_aside(path, hidden=True)
    log.warning("moved %s aside to %s", archive.show(path), target.name)
    return target


def repair(data_dir: Path | str, report: VerifyReport, *, ledger: Ledger | None = None) -> dict[str, Any]:
    """Move bad files aside, remove dead temp files, and rebuild the ledger from what is on disk (or in the store).

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
    bad = [files.location(shown) for shown in report.bad_files()]
    moved = [files.show(quarantine(path, files)) for path in bad if files.exists(path)]
    swept = [str(path) for path in storage.sweep_temp_files(ledger.data_dir)] if ledger.mirror is not None else []
    swept += [files.show(path) for path in files.sweep_temp_files()]
    rebuilt = ledger.rebuild()
    if ledger.mirror is not None:  # a ledger dir started afresh takes the shapes too
        for archive in sorted({task.archive for task in ledger.tasks_on_disk()}):
            shapes.adopt_published(ledger.data_dir, archive, ledger.mirror)
    return {"moved_aside": moved, "temp_removed": swept, "ledger": rebuilt}
