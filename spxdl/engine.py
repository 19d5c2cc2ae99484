"""The batch engine: a date range becomes tasks, worker processes download them, signals stop cleanly.

``plan`` lists the tasks (archive, root, trade date) of a range that are neither done nor held by
a live run. ``run`` prepares the data dir in the parent (temp-file sweep, terminal detection,
archive shapes), then runs one future per task in a ``ProcessPoolExecutor`` of spawned workers.
Each worker claims its task in the ledger, lists the root's expirations once per process, fetches
the missing expirations of the DTE window on a small thread pool and records each one the moment
its verified Parquet file is in place. Progress events and worker log records travel through one
queue to a parent thread that calls ``on_event``.

This is the only module that starts processes or threads for downloading. It never prints.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import functools
import io
import logging
import logging.handlers
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping, TypeVar

from spxdl import convert, datasets, metrics, storage, trading_calendar
from spxdl.config import Settings
from spxdl.datasets import Dataset
from spxdl.errors import (
    BodyTruncated,
    ConfigError,
    Interrupted,
    InvalidSession,
    NoData,
    PageExpired,
    PermissionDenied,
    SchemaMismatch,
    SpxdlError,
    TerminalUnavailable,
)
from spxdl.ledger import Ledger, Task
from spxdl.terminal import TerminalClient

__all__ = ["Event", "Plan", "RunSummary", "TaskResult", "estimate", "plan", "run", "run_task", "task_state"]

log = logging.getLogger(__name__)
T = TypeVar("T")

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
RETRYABLE = (BodyTruncated, PageExpired, TerminalUnavailable)
# Answers that would repeat for every request: the first one stops the whole run.
RUN_STOPPERS = (PermissionDenied, InvalidSession, SchemaMismatch)
STOPS = (Interrupted, *RUN_STOPPERS)
HEARTBEAT_SECONDS = 10.0
WATCH_SECONDS = 0.2  # how often a worker looks at the stop flag and its parent
POLL_SECONDS = 0.2  # how often the parent looks at signals and the stop flag
STOP_GRACE_SECONDS = 15.0  # how long a stopping parent waits for workers to abort
ORPHAN_GRACE_SECONDS = 10.0  # how long an orphaned worker lets its task abort before exiting

# Result states beyond the ledger's task states.
HELD = "held"  # another live run holds the task
INTERRUPTED = "interrupted"  # stopped before it finished; its claim was released

# Event kinds.
TASK_STARTED = "task_started"
EXPIRATION_DONE = "expiration_done"
RETRY = "retry"
TASK_DONE = "task_done"

# Rough figures for estimate(): a near-term SPXW chain has ~330 contracts (the simulator's
# realistic one: 128,248 greeks rows over 391 minutes), and zstd Parquet takes ~13 bytes a row
# of its smooth synthetic greeks; real data compresses less, so the estimate says 20.
EST_CONTRACTS_PER_EXPIRATION = 330
EST_PARQUET_BYTES_PER_ROW = 20
MONTHLY_ROOTS = frozenset({"SPX"})  # AM-settled monthlies: third Fridays only


# ---------------------------------------------------------------------------------------------
# records


@dataclass(frozen=True)
class Plan:
    """What a run will do: ``tasks`` to download; ``done`` and ``held`` are left out."""

    tasks: tuple[Task, ...]
    done: tuple[Task, ...]
    held: tuple[Task, ...]
    start: date
    end: date
    force: bool = False


@dataclass(frozen=True)
class Event:
    """A progress event: task_started, expiration_done, retry or task_done."""

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
        return self.held_at_plan + sum(result.state == HELD for result in self.results)

    @property
    def failed(self) -> list[TaskResult]:
        """Tasks that failed in whole or in part, with their reasons."""
        return [result for result in self.results if result.state in ("failed", "partial")]

    @property
    def no_data(self) -> list[TaskResult]:
        """Whole trading days without data: gaps that later runs plan again."""
        return [result for result in self.results if result.state == "no_data"]

    @property
    def complete(self) -> bool:
        """Everything asked for is in the archive."""
        return (
            self.interrupted is None
            and self.stopped_by is None
            and not self.not_started
            and self.held == 0
            and all(result.state == "success" for result in self.results)
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
            "expirations": dict(expirations),
            "checks": dict(checks),
            "seconds": self.seconds,
            "rows_per_s": rows / self.seconds if self.seconds > 0 else 0.0,
        }

    def slowest(self, count: int = 5) -> list[TaskResult]:
        """The tasks that took longest."""
        return sorted(self.results, key=lambda result: result.seconds, reverse=True)[:count]


# ---------------------------------------------------------------------------------------------
# plan


def plan(settings: Settings, start: date, end: date, force: bool = False) -> Plan:
    """The tasks of ``start..end`` (trading days x archives x roots) minus done and held ones.

    Writes nothing: a data dir the ledger never locked has nothing done and nothing held.
    """
    if start > end:
        raise ConfigError(f"the start date {start} is after the end date {end}", key="start")
    calendar = trading_calendar.load_calendar(settings.calendar_overrides)
    candidates = [
        Task(archive, root, day)
        for day in calendar.trading_days(start, end)
        for archive in settings.archives()
        for root in settings.roots
    ]
    if not storage.lock_path(settings.data_dir).exists():
        return Plan(tuple(candidates), (), (), start, end, force)
    ledger = Ledger(settings.data_dir)
    todo: list[Task] = []
    done: list[Task] = []
    held: list[Task] = []
    for task in candidates:
        if not force and ledger.is_done(task, min_dte=settings.min_dte, max_dte=settings.max_dte):
            done.append(task)
        elif ledger.is_held(task):
            held.append(task)
        else:
            todo.append(task)
    return Plan(tuple(todo), tuple(done), tuple(held), start, end, force)


def estimate(plan: Plan, settings: Settings) -> dict[str, int]:
    """Rough figures for a dry run: requests, expirations, rows and Parquet bytes. Writes nothing."""
    calendar = trading_calendar.load_calendar(settings.calendar_overrides)
    by_archive = archive_datasets(settings)
    expirations = rows = 0
    for task in plan.tasks:
        count = _estimated_expirations(calendar, task, settings.min_dte, settings.max_dte)
        expirations += count
        rows += count * EST_CONTRACTS_PER_EXPIRATION * _rows_per_contract(by_archive[task.archive], settings)
    listings = len(settings.roots) * min(settings.workers, len(plan.tasks))
    return {
        "tasks": len(plan.tasks),
        "expirations": expirations,
        "requests": expirations + listings,
        "rows": rows,
        "bytes": rows * EST_PARQUET_BYTES_PER_ROW,
    }


def _estimated_expirations(calendar: trading_calendar.TradingCalendar, task: Task, min_dte: int, max_dte: int) -> int:
    days = calendar.trading_days(task.trade_date + timedelta(days=min_dte), task.trade_date + timedelta(days=max_dte))
    if task.root in MONTHLY_ROOTS:
        return sum(day.weekday() == 4 and 15 <= day.day <= 21 for day in days)
    return len(days)


def _rows_per_contract(dataset: Dataset, settings: Settings) -> int:
    if not dataset.uses_interval:
        return 1
    return (settings.end_ms - settings.start_ms) // datasets.interval_ms(settings.interval) + 1


def archive_datasets(settings: Settings) -> dict[str, Dataset]:
    """Archive directory name -> its dataset, for the datasets ``settings`` asks for."""
    found = (datasets.get_dataset(name) for name in settings.datasets)
    return {dataset.archive_name(settings.interval): dataset for dataset in found}


def task_state(states: Iterable[str]) -> str:
    """A task's final state from its expirations' states (every one in the DTE window)."""
    states = list(states)
    if states and all(state == "no_data" for state in states):
        return "no_data"
    if "failed" not in states:  # also for a window that holds no listed expiration: nothing to fetch
        return "success"
    return "partial" if "complete" in states else "failed"


# ---------------------------------------------------------------------------------------------
# run: the parent


def run(plan: Plan, settings: Settings, on_event: Callable[[Event], None] | None = None) -> RunSummary:
    """Download ``plan.tasks`` in worker processes; an interrupted run returns its summary too.

    TerminalUnavailable / PermissionDenied (no usable terminal) and ArchiveMismatch raise before
    any worker starts.
    """
    started = time.monotonic()
    summary = RunSummary(held_at_plan=len(plan.held))
    if plan.tasks:
        settings, summary.simulated = prepare(settings)
        summary.api = settings.terminal_api
        _Run(plan, settings, on_event, summary).execute()
    summary.seconds = time.monotonic() - started
    _write_run_metrics(settings.data_dir, plan, summary)
    log.info("run %s..%s: %s in %.1f s", plan.start, plan.end, summary.by_state() or "nothing to do", summary.seconds)
    return summary


def prepare(settings: Settings) -> tuple[Settings, bool]:
    """Make the data dir ready and find the terminal once; settings naming its URL and API, simulated."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    storage.sweep_temp_files(settings.data_dir)
    with _client(settings) as client:
        retrying(client.connect, settings.expiration_attempts, "connecting to the terminal")
        resolved = settings.replace(terminal_url=client.base_url, terminal_api=client.api)
        simulated = client.simulated
    by_archive = archive_datasets(settings)
    for dataset in by_archive.values():
        dataset.check_served(resolved.terminal_api, settings.interval)
    for archive, dataset in by_archive.items():
        storage.ensure_archive_shape(settings.data_dir, archive, archive_shape(dataset, settings, simulated))
    return resolved, simulated


def archive_shape(dataset: Dataset, settings: Settings, simulated: bool) -> dict[str, object]:
    """What shapes the files of one archive; a run with another shape is refused."""
    shape: dict[str, object] = {
        "dataset": dataset.name,
        "schema_version": dataset.schema_version,
        "interval": settings.interval if dataset.uses_interval else None,
        "start_time": settings.start_time.isoformat(),
        "end_time": settings.end_time.isoformat(),
        "source": "simulator" if simulated else "terminal",
    }
    if dataset.greeks_params:
        shape.update(rate=settings.rate, rate_value=settings.rate_value, annual_div=settings.annual_div)
    return shape


def _client(settings: Settings, **kwargs: Any) -> TerminalClient:
    return TerminalClient(
        settings.terminal_url,
        settings.terminal_api,
        threads=settings.threads,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries=settings.retries,
        **kwargs,
    )


def retrying(call: Callable[[], T], attempts: int, what: str, check: Callable[[], None] = lambda: None) -> T:
    """``call()``, made again after a cut body, an expired page or an unavailable terminal."""
    for attempt in range(1, attempts + 1):
        check()
        try:
            return call()
        except RETRYABLE as exc:
            check()  # a failure caused by the stop is no reason to try again
            if attempt == attempts:
                raise
            log.info("%s: attempt %d of %d failed (%s); trying again", what, attempt, attempts, exc)
    raise AssertionError("unreachable: the last attempt returns or raises")


class SharedFlag:
    """A stop flag in shared memory: no lock, so a signal handler or a dying process never blocks it."""

    def __init__(self, context: Any) -> None:
        self._value = context.RawValue(ctypes.c_bool, False)

    def set(self) -> None:
        self._value.value = True

    def is_set(self) -> bool:
        return bool(self._value.value)


class _Run:
    """One run's parent side: the pool, submission as workers free up, signals, events, results."""

    def __init__(
        self, plan: Plan, settings: Settings, on_event: Callable[[Event], None] | None, summary: RunSummary
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self.plan = plan
        self.settings = settings
        self.on_event = on_event
        self.summary = summary
        self.context = context
        self.stop = SharedFlag(context)
        self.signal_number: int | None = None
        self.stop_since: float | None = None
        self.deliver_lock = threading.Lock()
        self.task_args = (settings.min_dte, settings.max_dte, plan.force)

    def execute(self) -> None:
        """Run every task (or until stopped); results land in the summary."""
        with self._signals_handled():
            todo = deque(self.plan.tasks)
            while todo and not self._stopping():  # a new pool after one broke
                with self._pool() as executor:
                    self._feed(executor, todo)
            self.summary.not_started = tuple(todo)
        self.summary.interrupted = self.signal_number

    @contextlib.contextmanager
    def _pool(self) -> Iterator[cf.ProcessPoolExecutor]:
        """A pool of spawned workers with an event queue and in-flight semaphore of its own.

        A worker killed while it held the lock of either (writing an event, or a request in
        flight) leaves it taken for good: the next pool must not inherit that.
        """
        events = self.context.Queue()
        in_flight = self.context.BoundedSemaphore(self.settings.max_in_flight)
        drained = threading.Event()
        drainer = threading.Thread(target=self._drain, args=(events, drained), name="spxdl-events", daemon=True)
        drainer.start()
        executor = cf.ProcessPoolExecutor(
            max_workers=self.settings.workers,
            mp_context=self.context,
            initializer=init_worker,
            initargs=(self.settings, in_flight, self.stop, events, os.getpid(), _worker_log_level()),
        )
        try:
            yield executor
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
            drained.set()
            drainer.join()
            events.close()

    def _feed(self, executor: cf.ProcessPoolExecutor, todo: deque[Task]) -> None:
        """Keep one task per worker in flight until done, stopped or the pool breaks."""
        running: dict[cf.Future[TaskResult], Task] = {}
        broken = False
        while running or (todo and not self._stopping() and not broken):
            while todo and len(running) < self.settings.workers and not self._stopping() and not broken:
                try:
                    with _signals_blocked():  # a worker starts with them blocked, then ignores them
                        future = executor.submit(run_task, todo[0], *self.task_args)
                except cf.process.BrokenProcessPool:  # a worker died since the last result
                    broken = self._broken(executor, broken)  # the task waits for the next pool
                    break
                running[future] = todo.popleft()
            finished, _ = cf.wait(running, timeout=POLL_SECONDS, return_when=cf.FIRST_COMPLETED)
            if any(isinstance(future.exception(), cf.process.BrokenProcessPool) for future in finished):
                broken = self._broken(executor, broken)
            for future in finished:
                self._collect(running.pop(future), future)
            if running and not broken and self._stop_overdue():
                self._kill_workers(executor, f"workers did not stop within {STOP_GRACE_SECONDS:.0f} s")
                broken = True

    def _broken(self, executor: cf.ProcessPoolExecutor, already: bool) -> bool:
        """A worker died: end the others (True, the pool is broken)."""
        if not already:
            # The pool ends its other workers with SIGTERM, which they ignore: without SIGKILL its
            # shutdown would wait for them forever.
            self._kill_workers(executor, "a worker process died")
        return True

    def _collect(self, task: Task, future: cf.Future[TaskResult]) -> None:
        """Record a finished future's result (a failure of its own when its worker died)."""
        try:
            result = future.result()
        except cf.process.BrokenProcessPool:
            result = self._lost(task, "its worker process died")
        except Exception as exc:  # a bug in a worker: the run goes on
            log.error("%s failed unexpectedly: %r", task.key, exc)
            result = self._lost(task, f"unexpected error: {exc!r}")
        if result.stopped_by is not None and self.summary.stopped_by is None:
            self.summary.stopped_by = result.stopped_by
            self.stop.set()
        self._note_extra_columns(result.extra_columns)
        self.summary.results.append(result)
        self._write_task_metrics(result)

    def _note_extra_columns(self, names: Iterable[str]) -> None:
        """Warn once per run for the columns the terminal added (they are left out of the files)."""
        new = [name for name in names if name not in self.summary.extra_columns]
        if new:
            self.summary.extra_columns += tuple(new)
            log.warning(
                "the terminal sends column(s) spxdl does not know: %s; stored without them (named in each "
                "file's metadata); a newer spxdl may keep them", ", ".join(new)
            )

    def _lost(self, task: Task, reason: str) -> TaskResult:
        """The result of a task whose worker gave no answer; its claim goes (the process is ours)."""
        with contextlib.suppress(SpxdlError):
            Ledger(self.settings.data_dir).release(task)
        state = INTERRUPTED if self._stopping() else "failed"
        result = TaskResult(task, state, error=reason)
        self._deliver(Event(TASK_DONE, task, state=state, error=reason))
        return result

    def _stopping(self) -> bool:
        if self.stop.is_set() and self.stop_since is None:
            self.stop_since = time.monotonic()
        return self.stop_since is not None

    def _stop_overdue(self) -> bool:
        return self._stopping() and time.monotonic() - self.stop_since > STOP_GRACE_SECONDS

    def _kill_workers(self, executor: cf.ProcessPoolExecutor, reason: str) -> None:
        """SIGKILL the pool's workers; their temp files are swept at the next start."""
        log.warning("%s; killing the pool's workers", reason)
        for process in list((executor._processes or {}).values()):  # private, but stable since 3.8
            with contextlib.suppress(OSError):
                process.kill()

    # -- signals -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _signals_handled(self) -> Iterator[None]:
        """Stop on the first SIGINT/SIGTERM, exit at once on the second (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {signum: signal.signal(signum, self._on_signal) for signum in STOP_SIGNALS}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self.signal_number is not None:
            # Atomic renames: no half-written file can stand where a data file is.
            os._exit(128 + signum)
        self.signal_number = signum
        self.stop.set()
        log.warning("got %s: stopping (again to exit at once)", signal.Signals(signum).name)

    # -- events --------------------------------------------------------------------------------

    def _drain(self, events: Any, drained: threading.Event) -> None:
        """Hand worker events and log records to ``on_event`` and the parent's loggers."""
        while True:
            try:
                item = events.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if drained.is_set():
                    return
                continue
            except (EOFError, OSError):
                return
            self._deliver(item)

    def _deliver(self, item: Any) -> None:
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

    # -- metrics -------------------------------------------------------------------------------

    def _write_task_metrics(self, result: TaskResult) -> None:
        if result.state == HELD:  # another run did (or does) the work: its row is that run's
            return
        row = metrics.MetricsRow(
            "task",
            result.task.key,
            result.state,
            result.rows,
            result.bytes,
            result.seconds,
            retries=result.retries,
            failures=len(result.failures),
        )
        _append_metrics(self.settings.data_dir, row)


def _write_run_metrics(data_dir: Path, plan: Plan, summary: RunSummary) -> None:
    if not plan.tasks:
        return
    totals = summary.totals()
    state = "interrupted" if summary.interrupted else "complete" if summary.complete else "incomplete"
    failures = sum(len(result.failures) for result in summary.results)
    row = metrics.MetricsRow(
        "run",
        f"{plan.start}..{plan.end}",
        state,
        totals["rows"],
        totals["bytes"],
        summary.seconds,
        retries=totals["retries"],
        failures=failures,
    )
    _append_metrics(data_dir, row)


def _append_metrics(data_dir: Path, row: metrics.MetricsRow) -> None:
    try:
        metrics.append(data_dir, [row])
    except OSError as exc:  # metrics are a by-product: never fail a download for them
        log.warning("could not append to %s: %s", metrics.metrics_path(data_dir), exc)


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Block SIGINT/SIGTERM in this thread: a process started meanwhile inherits the mask."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _worker_log_level() -> int:
    """The lowest level any handler of spxdl's loggers shows: workers send nothing below it."""
    logger = logging.getLogger("spxdl")
    levels = [handler.level for handler in logger.handlers if handler.level]
    return max(logger.getEffectiveLevel(), min(levels, default=logging.NOTSET))


# ---------------------------------------------------------------------------------------------
# the worker process


@dataclass
class _Worker:
    """Everything one worker process keeps between tasks."""

    settings: Settings
    client: TerminalClient
    ledger: Ledger
    stop: threading.Event  # this process's view of the stop: shared flag, or the parent gone
    shared_stop: SharedFlag
    events: Any
    parent_pid: int
    archives: dict[str, Dataset]
    calendar: trading_calendar.TradingCalendar
    expirations: dict[str, list[date]] = field(default_factory=dict)
    active: set[Task] = field(default_factory=set)
    lost: set[Task] = field(default_factory=set)  # claims another run took over (stale heartbeat)  # claimed: heartbeats go to these
    busy: int = 0  # tasks in run_task, claimed or about to be
    lock: threading.Lock = field(default_factory=threading.Lock)

    def emit(self, kind: str, task: Task, **fields: Any) -> None:
        self.events.put(Event(kind, task, **fields))

    def check(self) -> None:
        """Raise Interrupted once the run is stopping."""
        if self.stop.is_set():
            raise Interrupted("the run is stopping")

    def stop_run(self) -> None:
        """Stop every worker of the run (one of RUN_STOPPERS)."""
        self.shared_stop.set()
        self.stop.set()


_WORKER: _Worker | None = None


def init_worker(
    settings: Settings, in_flight: Any, shared_stop: SharedFlag, events: Any, parent_pid: int, log_level: int
) -> None:
    """Pool initializer: ignore the stop signals, build this process's client and start its watchdog."""
    global _WORKER
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    _send_logs_to(events, log_level)
    stop = threading.Event()
    client = _client(settings, in_flight=in_flight, sleep=functools.partial(_sleep_unless_stopped, stop))
    _WORKER = _Worker(
        settings=settings,
        client=client,
        ledger=Ledger(settings.data_dir),
        stop=stop,
        shared_stop=shared_stop,
        events=events,
        parent_pid=parent_pid,
        archives=archive_datasets(settings),
        calendar=trading_calendar.load_calendar(settings.calendar_overrides),
    )
    threading.Thread(target=_watch, args=(_WORKER,), name="spxdl-watchdog", daemon=True).start()


def _send_logs_to(events: Any, level: int) -> None:
    logger = logging.getLogger("spxdl")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.addHandler(logging.handlers.QueueHandler(events))
    logger.setLevel(level)
    logger.propagate = False


def _sleep_unless_stopped(stop: threading.Event, seconds: float) -> None:
    """The client's retry sleep: cut short by a stop."""
    if stop.wait(seconds):
        raise Interrupted("the run is stopping")


def _watch(worker: _Worker) -> None:
    """Watchdog: follow the shared stop flag and the parent; heartbeat the claimed tasks."""
    last_beat = time.monotonic()
    while True:
        try:
            orphaned = os.getppid() != worker.parent_pid
            if orphaned or worker.shared_stop.is_set():
                worker.stop.set()
            if orphaned:
                _exit_when_idle(worker)
            if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                last_beat = time.monotonic()
                _heartbeat(worker)
        except Exception:  # the watchdog must outlive any one failure, or stops go unseen
            log.exception("watchdog: unexpected error; going on")
        time.sleep(WATCH_SECONDS)


def _exit_when_idle(worker: _Worker) -> None:
    """The parent is gone: let the task abort (temp file removed, claim released), then exit."""
    deadline = time.monotonic() + ORPHAN_GRACE_SECONDS
    while True:
        with worker.lock:  # held while exiting: no task can start claiming meanwhile
            if not worker.busy or time.monotonic() > deadline:
                os._exit(1)  # nobody is left to read a result; the pool's call queue would block forever
        time.sleep(WATCH_SECONDS)


def _heartbeat(worker: _Worker) -> None:
    with worker.lock:
        tasks = list(worker.active)
    for task in tasks:
        try:
            held = worker.ledger.heartbeat(task)
        except (SpxdlError, OSError) as exc:  # a full disk, say: try again at the next beat
            log.warning("heartbeat of %s failed: %s", task.key, exc)
            continue
        if not held:
            log.warning("%s was taken over by another run; abandoning it", task.key)
            with worker.lock:
                worker.lost.add(task)


def _require_worker() -> _Worker:
    if _WORKER is None:
        raise RuntimeError("run_task needs the engine's worker initializer (init_worker) to have run")
    return _WORKER


@dataclass(frozen=True)
class _Outcome:
    """What became of one expiration."""

    expiration: date
    state: str
    rows: int = 0
    bytes: int = 0
    attempts: int = 0
    error: str | None = None
    skipped: bool = False
    checks: Mapping[str, int] = field(default_factory=dict)  # rows (or contracts) each check flagged
    extra_columns: tuple[str, ...] = ()


def run_task(task: Task, min_dte: int, max_dte: int, force: bool = False) -> TaskResult:
    """Download one task's missing expirations in this worker process; never raises for a task's trouble."""
    worker = _require_worker()
    with worker.lock:
        worker.busy += 1  # an orphaned worker exits only when no task is between claim and release
    try:
        result = _claim_and_run(worker, task, min_dte, max_dte, force)
    finally:
        with worker.lock:
            worker.busy -= 1
    worker.emit(
        TASK_DONE, task, state=result.state, rows=result.rows, bytes=result.bytes, seconds=result.seconds,
        error=result.error,
    )
    return result


def _claim_and_run(worker: _Worker, task: Task, min_dte: int, max_dte: int, force: bool) -> TaskResult:
    started = time.monotonic()
    if worker.stop.is_set():
        return TaskResult(task, INTERRUPTED)
    try:
        if not force and worker.ledger.is_done(task, min_dte=min_dte, max_dte=max_dte):
            return TaskResult(task, "success", seconds=time.monotonic() - started)  # another run finished it since the plan
        claimed = worker.ledger.claim(task, min_dte=min_dte, max_dte=max_dte)
    except SpxdlError as exc:
        return TaskResult(task, "failed", error=f"could not claim: {exc}", seconds=time.monotonic() - started)
    if not claimed:
        log.info("%s is held by another live run; skipping it", task.key)
        return TaskResult(task, HELD, seconds=time.monotonic() - started)
    with worker.lock:
        worker.active.add(task)
    try:
        return _run_claimed(worker, task, min_dte, max_dte, force, started)
    finally:
        with worker.lock:
            worker.active.discard(task)
            worker.lost.discard(task)


def _run_claimed(worker: _Worker, task: Task, min_dte: int, max_dte: int, force: bool, started: float) -> TaskResult:
    """The body of a claimed task: download, then finish (or release when stopped)."""
    worker.emit(TASK_STARTED, task)
    try:
        return _finish(worker, task, _download_task(worker, task, min_dte, max_dte, force), min_dte, max_dte, started)
    except NoData as exc:  # the root lists no expiration at all: unknown root, or not in the subscription
        _finish_quietly(worker, task, "no_data", min_dte, max_dte, str(exc))
        return TaskResult(task, "no_data", seconds=time.monotonic() - started, error=str(exc))
    except STOPS as exc:
        _release_quietly(worker, task)
        if task in worker.lost and not worker.stop.is_set():
            return TaskResult(task, HELD, seconds=time.monotonic() - started, error=str(exc))
        stopper = exc if isinstance(exc, RUN_STOPPERS) else None
        seconds = time.monotonic() - started
        return TaskResult(task, INTERRUPTED, seconds=seconds, error=str(exc), stopped_by=stopper)
    except Exception as exc:  # the listing failed, or the ledger did: this task fails, the run goes on
        seconds = time.monotonic() - started
        if worker.stop.is_set():
            _release_quietly(worker, task)
            return TaskResult(task, INTERRUPTED, seconds=seconds, error=str(exc))
        expected = isinstance(exc, SpxdlError)
        log.log(logging.WARNING if expected else logging.ERROR, "%s failed: %s", task.key, exc, exc_info=not expected)
        _finish_quietly(worker, task, "failed", min_dte, max_dte, str(exc))
        return TaskResult(task, "failed", seconds=seconds, error=str(exc))


def _finish(
    worker: _Worker, task: Task, outcomes: list[_Outcome], min_dte: int, max_dte: int, started: float
) -> TaskResult:
    """Record the task's final state from its expirations' outcomes; its result."""
    state = task_state(outcome.state for outcome in outcomes)
    failures = tuple((o.expiration, o.error or "failed") for o in outcomes if o.state == "failed")
    error = f"{len(failures)} expiration(s) failed; first: {failures[0][0]}: {failures[0][1]}" if failures else None
    if state == "no_data":
        error = f"the terminal answered no data (472) for all {len(outcomes)} expiration(s)"
    if not worker.ledger.finish(task, state, min_dte=min_dte, max_dte=max_dte, error=error):
        return TaskResult(task, HELD, seconds=time.monotonic() - started, error="taken over by another run")
    return TaskResult(
        task,
        state,
        expirations=dict(Counter(outcome.state for outcome in outcomes)),
        skipped=sum(outcome.skipped for outcome in outcomes),
        rows=sum(outcome.rows for outcome in outcomes),
        bytes=sum(outcome.bytes for outcome in outcomes),
        seconds=time.monotonic() - started,
        retries=sum(max(outcome.attempts - 1, 0) for outcome in outcomes),
        error=error,
        failures=failures,
        checks=dict(sum((Counter(outcome.checks) for outcome in outcomes), Counter())),
        extra_columns=tuple(dict.fromkeys(name for outcome in outcomes for name in outcome.extra_columns)),
    )


def _release_quietly(worker: _Worker, task: Task) -> None:
    try:
        worker.ledger.release(task)
    except (SpxdlError, OSError) as exc:  # a claim left behind goes stale and is taken over
        log.warning("could not release %s: %s", task.key, exc)


def _finish_quietly(worker: _Worker, task: Task, state: str, min_dte: int, max_dte: int, error: str) -> None:
    try:
        worker.ledger.finish(task, state, min_dte=min_dte, max_dte=max_dte, error=error)
    except (SpxdlError, OSError) as exc:
        log.warning("could not record %s as %s: %s", task.key, state, exc)
        _release_quietly(worker, task)


def _download_task(worker: _Worker, task: Task, min_dte: int, max_dte: int, force: bool) -> list[_Outcome]:
    """Every expiration of the DTE window: complete ones skipped, the rest fetched on threads."""
    wanted = _expirations_for(worker, task, min_dte, max_dte)
    complete = set() if force else _complete_expirations(worker, task)
    outcomes = [_Outcome(expiration, "complete", skipped=True) for expiration in wanted if expiration in complete]
    missing = [expiration for expiration in wanted if expiration not in complete]
    log.info("%s: %d expiration(s) in DTE %d..%d, %d to fetch", task.key, len(wanted), min_dte, max_dte, len(missing))
    if not missing:
        return outcomes
    dataset = worker.archives[task.archive]
    threads = min(worker.settings.threads, len(missing))
    with cf.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="spxdl-fetch") as pool:
        futures = [pool.submit(_fetch_expiration, worker, task, dataset, expiration) for expiration in missing]
        cf.wait(futures)
    stops = [f.exception() for f in futures if isinstance(f.exception(), STOPS)]
    if stops:
        raise next((exc for exc in stops if isinstance(exc, RUN_STOPPERS)), stops[0])
    return outcomes + [future.result() for future in futures]


def _expirations_for(worker: _Worker, task: Task, min_dte: int, max_dte: int) -> list[date]:
    """The root's expirations (listed once per process) within ``trade_date + [min_dte, max_dte]``
    that still trade on the trade date (an SPX AM monthly stops the day before it settles)."""
    if task.root not in worker.expirations:
        attempts = worker.settings.expiration_attempts
        try:
            call = functools.partial(worker.client.expirations, task.root)
            listed = retrying(call, attempts, f"listing {task.root}", worker.check)
        except NoData:
            listed = []
        worker.expirations[task.root] = listed
    if not worker.expirations[task.root]:
        raise NoData(f"the terminal lists no expiration for {task.root} (unknown root, or not in the subscription)")
    first = task.trade_date + timedelta(days=min_dte)
    last = task.trade_date + timedelta(days=max_dte)
    return [
        expiration
        for expiration in worker.expirations[task.root]
        if first <= expiration <= last and task.trade_date <= worker.calendar.last_trading_day(task.root, expiration)
    ]


def _complete_expirations(worker: _Worker, task: Task) -> set[date]:
    """Expirations the ledger calls complete whose file is in place."""
    return {
        expiration
        for expiration, state in worker.ledger.expiration_states(task).items()
        if state == "complete" and _data_path(worker, task, expiration).exists()
    }


def _data_path(worker: _Worker, task: Task, expiration: date) -> Path:
    return storage.data_file_path(worker.settings.data_dir, task.archive, task.root, task.trade_date, expiration)


def _fetch_expiration(worker: _Worker, task: Task, dataset: Dataset, expiration: date) -> _Outcome:
    """Fetch one expiration, again on a cut body, an expired page or an unavailable terminal."""
    attempts = worker.settings.expiration_attempts
    for attempt in range(1, attempts + 1):
        worker.check()
        if task in worker.lost:
            raise Interrupted(f"{task.key} was taken over by another run")
        worker.ledger.record_expiration(task, expiration, "downloading", attempts=attempt)
        try:
            outcome = _download_expiration(worker, task, dataset, expiration, attempt)
        except STOPS as exc:
            if isinstance(exc, RUN_STOPPERS):
                worker.stop_run()
            raise
        except NoData:
            worker.ledger.record_expiration(task, expiration, "no_data", attempts=attempt)
            outcome = _Outcome(expiration, "no_data", attempts=attempt)
        except RETRYABLE as exc:
            worker.check()  # a body cut by the stop is no reason to fetch again
            if attempt < attempts:
                log.info("%s exp %s: attempt %d of %d: %s; again", task.key, expiration, attempt, attempts, exc)
                worker.emit(RETRY, task, expiration=expiration, attempt=attempt, error=str(exc))
                continue
            outcome = _failed(worker, task, expiration, attempt, exc)
        except Exception as exc:  # the terminal's answer, the data, the disk: this expiration fails
            worker.check()
            if not isinstance(exc, SpxdlError):
                log.error("%s exp %s: unexpected %r", task.key, expiration, exc, exc_info=True)
            outcome = _failed(worker, task, expiration, attempt, exc)
        worker.emit(
            EXPIRATION_DONE, task, expiration=expiration, state=outcome.state, rows=outcome.rows, bytes=outcome.bytes,
            attempt=attempt,
        )
        return outcome
    raise AssertionError("unreachable: the last attempt returns")


def _failed(worker: _Worker, task: Task, expiration: date, attempt: int, exc: Exception) -> _Outcome:
    log.warning("%s exp %s failed after %d attempt(s): %s", task.key, expiration, attempt, exc)
    worker.ledger.record_expiration(task, expiration, "failed", attempts=attempt, error=str(exc))
    return _Outcome(expiration, "failed", attempts=attempt, error=str(exc))


def _download_expiration(worker: _Worker, task: Task, dataset: Dataset, expiration: date, attempt: int) -> _Outcome:
    """Stream, convert, store atomically, verify and record one expiration."""
    settings = worker.settings
    path = _data_path(worker, task, expiration)
    spec = convert.ConvertSpec(
        dataset=dataset,
        api=worker.client.api,
        root=task.root,
        expiration=expiration,
        trade_date=task.trade_date,
        start_ms=settings.start_ms,
        end_ms=settings.end_ms,
        interval_ms=datasets.interval_ms(settings.interval) if dataset.uses_interval else None,
        validation=settings.validation_mode,
        row_group_rows=settings.row_group_rows,
        compression=settings.compression,
        compression_level=settings.compression_level,
        metadata=_greeks_params(dataset, settings),
        early_close_ms=_early_close_ms(worker.calendar, task.trade_date),
    )
    pages = worker.client.history(
        dataset,
        task.root,
        expiration,
        task.trade_date,
        interval=settings.interval,
        start_ms=settings.start_ms,
        end_ms=settings.end_ms,
        **_greeks_params(dataset, settings),
    )
    converted: list[convert.ConvertResult] = []

    def write(sink: BinaryIO) -> int:
        with contextlib.closing(_stoppable(pages, worker.stop)) as stoppable:
            converted.append(convert.write_parquet(stoppable, sink, spec))
        return converted[0].rows

    info = storage.write_verified_parquet(path, write)
    result = converted[0]
    worker.ledger.record_expiration(
        task, expiration, "complete", info=info, attempts=attempt, checks=result.checks, extra_columns=result.extra_columns
    )
    flagged = {name: count for name, count in result.checks.items() if count}
    if flagged:
        log.debug("%s exp %s: checks flagged %s (validation=%s)", task.key, expiration, flagged, settings.validation_mode)
    return _Outcome(
        expiration, "complete", rows=info.rows, bytes=info.bytes, attempts=attempt, checks=flagged,
        extra_columns=result.extra_columns,
    )


def _early_close_ms(calendar: trading_calendar.TradingCalendar, trade_date: date) -> int | None:
    """The session's close in ms of day when ``trade_date`` closes early (13:15 New York), else None."""
    if not calendar.early_close(trade_date):
        return None
    close = calendar.session_close(trade_date)
    return (close.hour * 3600 + close.minute * 60 + close.second) * 1000


def _greeks_params(dataset: Dataset, settings: Settings) -> dict[str, Any]:
    """The greeks parameters the user set (the terminal's defaults apply to the others)."""
    if not dataset.greeks_params:
        return {}
    params = {"rate": settings.rate, "rate_value": settings.rate_value, "annual_div": settings.annual_div}
    return {name: value for name, value in params.items() if value is not None}


def _stoppable(pages: Iterable[BinaryIO], stop: threading.Event) -> Iterator[BinaryIO]:
    """``pages`` whose reads, and the fetch of each next page, raise Interrupted once stopping.

    Every page is closed as soon as the next is asked for or the iteration ends, even by an
    error: a page holds an in-flight slot shared by all workers until it is read or closed.
    """
    iterator = iter(pages)
    try:
        while True:
            if stop.is_set():
                raise Interrupted("the run is stopping")
            page = next(iterator, None)
            if page is None:
                return
            with contextlib.closing(_StoppablePage(page, stop)) as stoppable:
                yield stoppable
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


class _StoppablePage(io.RawIOBase):
    """A page whose every read first checks the stop (an expiration aborts within one read)."""

    def __init__(self, page: BinaryIO, stop: threading.Event) -> None:
        super().__init__()
        self._page = page
        self._stop = stop
        self._error: SpxdlError | None = None

    @property
    def error(self) -> SpxdlError | None:
        """The error that ended reading (convert re-raises it if pyarrow wrapped it)."""
        return self._error or getattr(self._page, "error", None)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._stop.is_set():
            self._error = Interrupted("the run is stopping")
            raise self._error
        return self._page.readinto(buffer)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._page.close()
        super().close()
