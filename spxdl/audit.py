"""Reading the archive's ledger back: task status (per task and per archive, with what the checks
counted), and gaps against the trading calendar. Everything here reads; ``verify.py`` reads the
files themselves.

Each function takes the data dir and, optionally, its ``Ledger``: where the data lives apart from
the ledger (an object store), the ledger knows both (``engine.shared.ledger_for`` builds it).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Iterable

from spxdl import datasets, quality, shapes
from spxdl.errors import StorageError
from spxdl.ledger import ExpirationState, Ledger, RunBook, RunRecordState, Task, TaskState
from spxdl.ledger.records import last_file_at, sum_checks
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
    files: int = 0
    checks: dict[str, int] = field(default_factory=dict)  # what each check counted in its files (non-zero)
    dropped: int = 0  # rows [validation] mode = drop left out of its files
    last_file_at: str | None = None  # when its latest file landed (UTC, ISO)
    done: int | None = None  # a task a live run works on: expirations complete so far in its window...
    listed: int | None = None  # ...of this many (None until the run has listed them)


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


def _progress(ledger: Ledger, task: Task) -> dict[str, Any]:
    """A task a live run works on, read from its ``_day.json``: expirations complete in the claim's window
    so far, how many the window holds, and when its latest file landed."""
    day = ledger.day(task) or {"expirations": {}, "claim": None}
    claim = day.get("claim") or {}
    low = task.trade_date + timedelta(days=claim.get("min_dte", 0))
    high = task.trade_date + timedelta(days=claim.get("max_dte", 0))
    done = sum(entry.get("state") == ExpirationState.COMPLETE and low <= date.fromisoformat(name) <= high
               for name, entry in day["expirations"].items())
    return {"done": done, "listed": claim.get("listed"), "last_file_at": last_file_at(day)}


def _last_file_at(entry: dict[str, Any]) -> str | None:
    """When a task's latest file landed; a status.json written before this was recorded: its finish, if it has rows."""
    if "last_file_at" in entry:
        return entry["last_file_at"]
    return entry.get("finished_at") if entry.get("rows") else None


def task_lines(ledger: Ledger) -> list[TaskLine]:
    """Every task the ledger knows, in (archive, root, date) order."""
    lines = []
    files = ledger.inventory()["tasks"]
    for task, entry in ledger.tasks():
        state = shown_state(ledger, task, entry)
        found = files.get(task.key, {})
        # status.json is not rewritten per expiration: a task a run works on (or left) is read from its _day.json
        unfinished = state in (TaskState.IN_PROGRESS, TaskState.INTERRUPTED)
        running = _progress(ledger, task) if unfinished else {}
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
            files=found.get("files", 0),
            checks=dict(found.get("checks") or {}),
            dropped=found.get("dropped", 0),
            last_file_at=running.get("last_file_at") or _last_file_at(entry),
            done=running.get("done") if state == TaskState.IN_PROGRESS else None,
            listed=running.get("listed") if state == TaskState.IN_PROGRESS else None,
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
        "archives": archive_summaries(ledger.data_dir, lines),
        "runs": runs,
    }


def archive_summaries(data_dir: Path, lines: list[TaskLine]) -> dict[str, dict[str, Any]]:
    """Per archive: tasks, files, rows, bytes, rows dropped, when data last arrived, the last complete trade
    date, the validation mode it was made with and what each check counted (with its share of the rows)."""
    summaries = {}
    for archive in sorted({line.archive for line in lines}):
        mine = [line for line in lines if line.archive == archive]
        rows, dropped = sum(line.rows for line in mine), sum(line.dropped for line in mine)
        counts = sum_checks(line.checks for line in mine)
        arrived = [line.last_file_at for line in mine if line.last_file_at]
        summaries[archive] = {
            "tasks": len(mine),
            "files": sum(line.files for line in mine),
            "rows": rows,
            "bytes": sum(line.bytes for line in mine),
            "dropped": dropped,
            "last_data_at": max(arrived) if arrived else None,
            "last_complete_day": last_complete_day(mine),
            "validation": validation_of(data_dir, archive),
            "checks": [line.as_dict() for line in quality.check_lines(counts, rows, dropped)],
        }
    return summaries


def validation_of(data_dir: Path, archive: str) -> str | None:
    """The validation mode recorded in the archive's shape (None: not recorded, or unreadable)."""
    try:
        shape = shapes.recorded_shape(data_dir, archive)
    except StorageError as exc:
        log.warning("%s", exc)
        return None
    return (shape or {}).get("validation")


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
        dataset = dataset_of(archive)
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


def dataset_of(archive: str) -> datasets.Dataset | None:
    """The dataset of an archive directory name (``greeks-1m``, ``eod``, ``index_price-1m``)."""
    name = archive.split("-", 1)[0]
    return datasets.DATASETS.get(name)
