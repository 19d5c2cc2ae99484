"""What a run's driver does whichever executor runs its tasks: signals, results, events and ticks.

The driver is the process that plans and records a run. ``pool._Run`` hands its tasks to a crew
of worker processes, ``dask_run.DaskRun`` to a Dask cluster; both are a ``Driver``, which:

- stops on the first SIGINT/SIGTERM (the run's stop flag: workers abort and release their
  claims) and exits at once on the second;
- takes each task's result (a task stopped before it started goes back among those to do) and
  writes its ``metrics.csv`` row; a result carrying a run stopper stops the run;
- delivers the workers' events and log records from one thread (``drain``), calling
  ``on_event`` for each and ``on_tick`` every ``TICK_SECONDS`` meanwhile, never both at once.

It never prints.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import threading
import time
from collections import deque
from datetime import date
from typing import Any, Callable, Iterable, Iterator

from spxdl.config import Settings
from spxdl.engine import metering
from spxdl.engine.forking import STOP_SIGNALS, release_at_exit
from spxdl.engine.links import Flag
from spxdl.engine.records import TASK_DONE, Event, Plan, ResultState, RunSummary, TaskResult
from spxdl.engine.shared import ledger_for
from spxdl.errors import SpxdlError
from spxdl.ledger import Task

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2  # how often the driver looks at signals and the stop flag
TICK_SECONDS = 0.25  # how often ``on_tick`` is called (the progress display's redraws)
STOP_GRACE_SECONDS = 15.0  # how long a stopping driver waits for workers to abort
DRAINED = "drained"  # the driver's last item on an event queue, once every worker has ended


class Driver:
    """One run's driver: signals, the stop flag, results and metrics, events and ticks."""

    def __init__(
        self, plan: Plan, settings: Settings, on_event: Callable[[Event], None] | None, summary: RunSummary,
        on_tick: Callable[[], None] | None, stop: Flag,
    ) -> None:
        self.plan = plan
        self.settings = settings
        self.on_event = on_event
        self.on_tick = on_tick
        self.ticked = time.monotonic()
        self.summary = summary
        self.stop = stop  # set by a signal handler: no lock, no I/O
        self.signal_number: int | None = None
        self.stop_since: float | None = None
        self.deliver_lock = threading.Lock()
        self.plan_order = {task: index for index, task in enumerate(plan.tasks)}
        self.worker_pids: set[int] = set()  # the worker processes this run started here, crew after crew

    def workers_starting(self) -> contextlib.AbstractContextManager[None]:
        """The workers starting (or the cluster connected) for the block: the run's first step."""
        raise NotImplementedError

    def execute(self, run_id: str, listed: dict[str, list[date]]) -> None:
        """Run every task of the plan (or until stopped), recorded as run ``run_id``, with the
        expirations the driver ``listed`` per root."""
        raise NotImplementedError

    @property
    def task_args(self) -> tuple[int, int, bool]:
        """What every task is run with: the DTE window and ``force``."""
        return self.settings.min_dte, self.settings.max_dte, self.plan.force

    # -- results -------------------------------------------------------------------------------

    def take(self, result: TaskResult, started: bool, todo: deque[Task]) -> None:
        """A worker's answer: a result, or a task that was stopped before it started (to do still)."""
        if result.state == ResultState.INTERRUPTED and not started:
            self.stopped_by(result.stopped_by)  # a full disk at its claim, say
            self.requeue(todo, [result.task])
        else:
            self.collect(result)

    def requeue(self, todo: deque[Task], tasks: Iterable[Task]) -> None:
        """Put tasks back among those to do, in the plan's order."""
        todo.extend(tasks)
        ordered = sorted(todo, key=self.plan_order.__getitem__)
        todo.clear()
        todo.extend(ordered)

    def collect(self, result: TaskResult) -> None:
        """Record a task's result."""
        self.stopped_by(result.stopped_by)
        self.note_extra_columns(result.extra_columns)
        self.summary.results.append(result)
        metering.write_task_row(self.settings.ledger_path, result)

    def stopped_by(self, error: SpxdlError | None) -> None:
        """A run stopper stopped a task: the run stops, and its summary says why (the first)."""
        if error is not None and self.summary.stopped_by is None:
            self.summary.stopped_by = error
            self.stop.set()

    def note_extra_columns(self, names: Iterable[str]) -> None:
        """Warn once per run for the columns the terminal added (they are left out of the files)."""
        new = [name for name in names if name not in self.summary.extra_columns]
        if new:
            self.summary.extra_columns += tuple(new)
            log.warning(
                "the terminal sends column(s) spxdl does not know: %s; stored without them (named in each "
                "file's metadata); a newer spxdl may keep them", ", ".join(new)
            )

    def lost(self, task: Task, reason: str) -> TaskResult:
        """The result of a task whose worker gave no answer; its claim goes if this host may end it
        (a worker process of ours, or a claim gone stale)."""
        self.release(task)
        state = ResultState.INTERRUPTED if self.stopping() else ResultState.FAILED
        self.deliver(Event(TASK_DONE, task, state=state, error=reason))
        return TaskResult(task, state, error=reason)

    def release(self, task: Task) -> None:
        """Give up the claim on ``task`` of a worker gone without an answer, if this host may end it."""
        with contextlib.suppress(SpxdlError, OSError):
            ledger_for(self.settings).release(task, self.worker_pids)

    # -- stopping ------------------------------------------------------------------------------

    def stopping(self) -> bool:
        if self.stop.is_set() and self.stop_since is None:
            self.stop_since = time.monotonic()
        return self.stop_since is not None

    def stop_overdue(self) -> bool:
        return self.stopping() and time.monotonic() - self.stop_since > STOP_GRACE_SECONDS

    @contextlib.contextmanager
    def signals_handled(self) -> Iterator[None]:
        """Stop on the first SIGINT/SIGTERM, exit at once on the second (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {signum: signal.signal(signum, self.on_signal) for signum in STOP_SIGNALS}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def on_signal(self, signum: int, _frame: Any) -> None:
        if self.signal_number is not None:
            # Atomic renames: no half-written file can stand where a data file is.
            release_at_exit()
            os._exit(128 + signum)
        self.signal_number = signum
        self.stop.set()
        log.warning("got %s: stopping (again to exit at once)", signal.Signals(signum).name)

    # -- events --------------------------------------------------------------------------------

    def drain(self, events: Any, drained: threading.Event) -> None:
        """Hand worker events and log records to ``on_event`` and the driver's loggers; tick meanwhile.

        Ends at ``DRAINED``, or once ``drained`` is set and nothing more comes.
        """
        while True:
            try:
                item = events.get(timeout=min(POLL_SECONDS, TICK_SECONDS))
            except queue.Empty:
                if drained.is_set():
                    return
                self.tick()
                continue
            except (EOFError, OSError):
                return
            if item == DRAINED:
                return
            self.deliver(item)
            self.tick()

    def tick(self) -> None:
        if self.on_tick is None or time.monotonic() - self.ticked < TICK_SECONDS:
            return
        self.ticked = time.monotonic()
        with self.deliver_lock:
            try:
                self.on_tick()
            except Exception:
                log.exception("the progress callback failed on a tick")

    def deliver(self, item: Any) -> None:
        if isinstance(item, logging.LogRecord):
            logger = logging.getLogger(item.name)
            if logger.isEnabledFor(item.levelno):
                logger.handle(item)
            return
        if self.on_event is None:
            return
        with self.deliver_lock:
            try:
                self.on_event(item)
            except Exception:
                log.exception("the progress callback failed on %s", item)


def worker_log_level() -> int:
    """The lowest level any handler of spxdl's loggers shows: workers send nothing below it."""
    logger = logging.getLogger("spxdl")
    levels = [handler.level for handler in logger.handlers if handler.level]
    return max(logger.getEffectiveLevel(), min(levels, default=logging.NOTSET))
