"""The engine's records: what a run plans, reports while it works, and returns.

Small, picklable values that cross the process boundary (``Event``, ``TaskResult``) or that the
CLI renders (``Plan``, ``RunSummary``). Importing this module is cheap: no process, no Arrow.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Final, Iterable, Mapping

from spxdl.ledger.task import ExpirationState, TaskState

if TYPE_CHECKING:
    from spxdl.errors import SpxdlError
    from spxdl.ledger import Task


class ResultState(TaskState):
    """What became of a task in one run: a ledger task state, ``held`` or ``interrupted`` (never stored)."""

    HELD: Final = "held"  # another live run holds the task
    # INTERRUPTED (TaskState's): stopped before it finished; its claim was released


class RunState:
    """How a whole run ended (metrics.csv)."""

    COMPLETE: Final = "complete"
    INCOMPLETE: Final = "incomplete"
    INTERRUPTED: Final = "interrupted"

# Event kinds.
TASK_STARTED = "task_started"
EXPIRATIONS_LISTED = "expirations_listed"  # total: the expirations the task will fetch
EXPIRATION_PROGRESS = "expiration_progress"  # rows and CSV bytes received so far by one attempt
EXPIRATION_DONE = "expiration_done"
RETRY = "retry"
TASK_DONE = "task_done"


@dataclass(frozen=True)
class Outcome:
    """What became of one expiration (a helper sends its share's to the parent, which forwards them)."""

    expiration: date
    state: str
    rows: int = 0
    bytes: int = 0
    attempts: int = 0
    error: str | None = None
    skipped: bool = False
    checks: Mapping[str, int] = field(default_factory=dict)  # rows (or contracts) each check flagged
    extra_columns: tuple[str, ...] = ()
    dropped: int = 0  # rows [validation] mode = drop left out of the file


@dataclass(frozen=True)
class Share:
    """A task's work split among workers: this worker's expirations, and how many other workers
    (helpers) fetch the rest of the window and report their outcomes (``Worker.helped``)."""

    expirations: tuple[date, ...]
    helpers: int = 0


@dataclass(frozen=True)
class Plan:
    """What a run will do: ``tasks`` to download; ``done`` and ``held`` are left out."""

    tasks: tuple[Task, ...]
    done: tuple[Task, ...]
    held: tuple[Task, ...]
    start: date
    end: date
    force: bool = False
    resumes: tuple[str, ...] = ()  # ids of the interrupted runs this plan finishes (their records close with it)


@dataclass(frozen=True)
class Event:
    """A progress event: task_started, expirations_listed, expiration_progress, expiration_done, retry or task_done."""

    kind: str
    task: Task
    expiration: date | None = None
    state: str | None = None
    rows: int = 0
    bytes: int = 0
    attempt: int = 0
    seconds: float = 0.0
    error: str | None = None
    pid: int = field(default_factory=os.getpid)
    total: int = 0  # expirations_listed: how many the task fetches


@dataclass(frozen=True)
class TaskResult:
    """What became of one task: a ledger task state, ``held`` or ``interrupted``."""

    task: Task
    state: str
    expirations: Mapping[str, int] = field(default_factory=dict)  # expiration state -> count
    skipped: int = 0  # complete before this run
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    retries: int = 0
    error: str | None = None
    failures: tuple[tuple[date, str], ...] = ()  # failed expirations and why
    stopped_by: SpxdlError | None = None  # one of RUN_STOPPERS: the whole run stops
    checks: Mapping[str, int] = field(default_factory=dict)  # check name -> rows flagged, this run
    extra_columns: tuple[str, ...] = ()  # columns the terminal sent beyond the pinned ones
    dropped: int = 0  # rows [validation] mode = drop left out of the files, this run


@dataclass
class RunSummary:
    """The outcome of ``run``; ``cli.py`` renders it and picks the exit code from it."""

    results: list[TaskResult] = field(default_factory=list)
    not_started: tuple[Task, ...] = ()  # planned, never started because the run stopped
    held_at_plan: int = 0
    interrupted: int | None = None  # the signal number that stopped the run
    stopped_by: SpxdlError | None = None  # the answer that stopped the run (one of RUN_STOPPERS)
    extra_columns: tuple[str, ...] = ()  # every column the terminal added beyond the pinned ones
    api: str | None = None
    simulated: bool = False
    seconds: float = 0.0

    def by_state(self) -> dict[str, int]:
        """Result state -> number of tasks."""
        return dict(Counter(result.state for result in self.results))

    @property
    def held(self) -> int:
        """Tasks left to another live run, at plan time or when claiming."""
        return self.held_at_plan + sum(result.state == ResultState.HELD for result in self.results)

    @property
    def failed(self) -> list[TaskResult]:
        """Tasks that failed in whole or in part, with their reasons."""
        return [result for result in self.results if result.state in (ResultState.FAILED, ResultState.PARTIAL)]

    @property
    def no_data(self) -> list[TaskResult]:
        """Whole trading days without data: gaps that later runs plan again."""
        return [result for result in self.results if result.state == ResultState.NO_DATA]

    @property
    def complete(self) -> bool:
        """Everything asked for is in the archive."""
        return (
            self.interrupted is None
            and self.stopped_by is None
            and not self.not_started
            and self.held == 0
            and all(result.state == ResultState.SUCCESS for result in self.results)
        )

    def totals(self) -> dict[str, Any]:
        """Tasks, rows, bytes, retries and expirations by state over the whole run."""
        expirations: Counter[str] = Counter()
        checks: Counter[str] = Counter()
        for result in self.results:
            expirations.update(result.expirations)
            checks.update(result.checks)
        rows = sum(result.rows for result in self.results)
        return {
            "tasks": len(self.results),
            "rows": rows,
            "bytes": sum(result.bytes for result in self.results),
            "retries": sum(result.retries for result in self.results),
            "dropped": sum(result.dropped for result in self.results),
            "expirations": dict(expirations),
            "checks": dict(checks),
            "seconds": self.seconds,
            "rows_per_s": rows / self.seconds if self.seconds > 0 else 0.0,
        }

    def slowest(self, count: int = 5) -> list[TaskResult]:
        """The tasks that took longest."""
        return sorted(self.results, key=lambda result: result.seconds, reverse=True)[:count]

    def as_dict(self) -> dict[str, Any]:
        """The run in plain JSON values: tasks by state, volume, what the checks counted, the tasks that
        failed (with their errors and failed expirations) or had no data, and what stopped the run."""
        totals = self.totals()
        return {
            "tasks": self.by_state(),
            "rows": totals["rows"],
            "bytes": totals["bytes"],
            "seconds": round(self.seconds, 3),
            "retries": totals["retries"],
            "dropped": totals["dropped"],
            "checks": {name: count for name, count in sorted(totals["checks"].items()) if count},
            "failed_tasks": [
                {"task": result.task.key, "state": result.state, "error": result.error,
                 "expirations": [{"expiration": day.isoformat(), "error": why} for day, why in result.failures]}
                for result in self.failed
            ],
            "no_data_tasks": [{"task": result.task.key, "error": result.error} for result in self.no_data],
            "held_tasks": self.held,
            "not_started": [task.key for task in self.not_started],
            "interrupted_by": signal.Signals(self.interrupted).name if self.interrupted is not None else None,
            "stopped_by": str(self.stopped_by) if self.stopped_by is not None else None,
            "api": self.api,
            "simulated": self.simulated,
        }




def task_state(states: Iterable[str]) -> str:
    """A task's final state from its expirations' states (every one in the DTE window)."""
    states = list(states)
    if states and all(state == ExpirationState.NO_DATA for state in states):
        return TaskState.NO_DATA
    if ExpirationState.FAILED not in states:  # also for a window that holds no listed expiration: nothing to fetch
        return TaskState.SUCCESS
    return TaskState.PARTIAL if ExpirationState.COMPLETE in states else TaskState.FAILED
