"""The parent side of a run: the pool of worker processes, signals, the event drain and metrics.

``run`` prepares the data dir in the parent (temp-file sweep, terminal detection, archive
shapes), then runs one future per task in a ``ProcessPoolExecutor`` of spawned workers
(``worker.py``), submitting as workers free up. Progress events and worker log records travel
through one queue to a parent thread that calls ``on_event``. A first SIGINT/SIGTERM stops the
run cleanly (workers abort and release their claims); a second exits at once.

The engine package is the only place that starts processes or threads for downloading. It never
prints.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from spxdl import capture, metrics, shapes
from spxdl.config import Settings
from spxdl.engine import worker
from spxdl.engine.planning import archive_datasets
from spxdl.engine.recording import recorded_run
from spxdl.engine.records import TASK_DONE, Event, Plan, ResultState, RunState, RunSummary, TaskResult
from spxdl.engine.shared import RUN_CAPTURE, STOP_SIGNALS, SharedFlag, client_for, ledger_for, prepare_storage
from spxdl.errors import SpxdlError, TerminalUnavailable
from spxdl.ledger import Task
from spxdl.terminal import TerminalClient, simulator_facts

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2  # how often the parent looks at signals and the stop flag
TICK_SECONDS = 0.25  # how often ``on_tick`` is called (the progress display's redraws)
STOP_GRACE_SECONDS = 15.0  # how long a stopping parent waits for workers to abort


def run(
    plan: Plan,
    settings: Settings,
    on_event: Callable[[Event], None] | None = None,
    on_tick: Callable[[], None] | None = None,
) -> RunSummary:
    """Download ``plan.tasks`` in worker processes; an interrupted run returns its summary too.

    ``on_event`` gets every progress event and ``on_tick`` is called every ``TICK_SECONDS`` while
    the workers run, both from one thread of this process, never at once. TerminalUnavailable /
    PermissionDenied (no usable terminal) and ArchiveMismatch raise before any worker starts. The
    run is recorded in the ledger before its first task (``recording.py``): a run stopped or
    killed part-way is what ``spxdl resume`` finishes.
    """
    started = time.monotonic()
    summary = RunSummary(held_at_plan=len(plan.held))
    try:
        if plan.tasks:
            settings, summary.simulated = prepare(settings)
            summary.api = settings.terminal_api
            with recorded_run(plan, settings, summary):
                _Run(plan, settings, on_event, summary, on_tick).execute()
    finally:
        if settings.capture_dir is not None:
            log.info("captured answers are listed in %s", capture.write_manifest(settings.capture_dir, RUN_CAPTURE))
    summary.seconds = time.monotonic() - started
    _write_run_metrics(settings.ledger_path, plan, summary)
    log.info("run %s..%s: %s in %.1f s", plan.start, plan.end, summary.by_state() or "nothing to do", summary.seconds)
    return summary


def prepare(settings: Settings) -> tuple[Settings, bool]:
    """Make the data dir ready and find the terminal once; settings naming its URL and API, simulated."""
    ledger = prepare_storage(settings)
    with client_for(settings) as client:
        connect(client, settings.expiration_attempts)
        resolved = settings.replace(terminal_url=client.base_url, terminal_api=client.api)
        simulator = simulator_facts(client.simulator) if client.simulated else None
    by_archive = archive_datasets(settings)
    for dataset in by_archive.values():
        dataset.check_served(resolved.terminal_api, settings.interval)
    for archive, dataset in by_archive.items():
        shapes.ensure_archive_shape(settings.ledger_path, archive, shapes.archive_shape(dataset, settings, simulator),
                                    mirror=ledger.mirror)
    return resolved, simulator is not None


def connect(client: TerminalClient, attempts: int) -> None:
    """Find the terminal; a terminal that answered badly (a cut status) is asked again, one that nobody
    answers for fails at once (asking again would only repeat the same line)."""
    for attempt in range(1, attempts + 1):
        try:
            client.connect()
            return
        except TerminalUnavailable as exc:
            if exc.status is None or attempt == attempts:
                raise
            log.info("connecting to the terminal: attempt %d of %d failed (%s); trying again", attempt, attempts, exc)


class _Run:
    """One run's parent side: the pool, submission as workers free up, signals, events, results."""

    def __init__(
        self, plan: Plan, settings: Settings, on_event: Callable[[Event], None] | None, summary: RunSummary,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self.plan = plan
        self.settings = settings
        self.on_event = on_event
        self.on_tick = on_tick
        self.ticked = time.monotonic()
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
            initializer=worker.init_worker,
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
                        future = executor.submit(worker.run_task, todo[0], *self.task_args)
                except cf.process.BrokenProcessPool:  # a worker died since the last result
                    broken = self._broken(executor, broken)  # the task waits for the next pool
                    break
                running[future] = todo.popleft()
            finished, _ = cf.wait(running, timeout=POLL_SECONDS, return_when=cf.FIRST_COMPLETED)
            if any(isinstance(future.exception(), cf.process.BrokenProcessPool) for future in finished):
                broken = self._broken(executor, broken)
            elif not broken and _a_worker_died(executor):
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
            ledger_for(self.settings).release(task)
        state = ResultState.INTERRUPTED if self._stopping() else ResultState.FAILED
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
            _release_semaphores()
            os._exit(128 + signum)
        self.signal_number = signum
        self.stop.set()
        log.warning("got %s: stopping (again to exit at once)", signal.Signals(signum).name)

    # -- events --------------------------------------------------------------------------------

    def _drain(self, events: Any, drained: threading.Event) -> None:
        """Hand worker events and log records to ``on_event`` and the parent's loggers; tick meanwhile."""
        while True:
            try:
                item = events.get(timeout=min(POLL_SECONDS, TICK_SECONDS))
            except queue.Empty:
                if drained.is_set():
                    return
                self._tick()
                continue
            except (EOFError, OSError):
                return
            self._deliver(item)
            self._tick()

    def _tick(self) -> None:
        if self.on_tick is None or time.monotonic() - self.ticked < TICK_SECONDS:
            return
        self.ticked = time.monotonic()
        with self.deliver_lock:
            try:
                self.on_tick()
            except Exception:
                log.exception("the progress callback failed on a tick")

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
        if result.state == ResultState.HELD:  # another run did (or does) the work: its row is that run's
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
            dropped=result.dropped,
            checks=result.checks,
        )
        _append_metrics(self.settings.ledger_path, row)


def _write_run_metrics(data_dir: Path, plan: Plan, summary: RunSummary) -> None:
    if not plan.tasks:
        return
    totals = summary.totals()
    state = RunState.INTERRUPTED if summary.interrupted else RunState.COMPLETE if summary.complete else RunState.INCOMPLETE
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
        dropped=totals["dropped"],
        checks=totals["checks"],
    )
    _append_metrics(data_dir, row)


def _append_metrics(data_dir: Path, row: metrics.MetricsRow) -> None:
    try:
        metrics.append(data_dir, [row])
    except OSError as exc:  # metrics are a by-product: never fail a download for them
        log.warning("could not append to %s: %s", metrics.metrics_path(data_dir), exc)


def _a_worker_died(executor: cf.ProcessPoolExecutor) -> bool:
    """Whether a worker process of ``executor`` has ended, seen from here.

    The pool's own manager thread can miss it: a worker the pool spawns right after waking its
    manager is not among the processes that thread waits on until something else wakes it, and a
    worker killed while sending its result leaves the result queue's lock taken, so nothing else
    ever does (CPython 3.11, concurrent/futures/process.py). Killing the other workers wakes it.
    """
    return any(process.exitcode is not None for process in list((executor._processes or {}).values()))


def _release_semaphores() -> None:
    """Unlink this process's named semaphores and tell the resource tracker, before leaving at once.

    Otherwise the tracker, finding the process gone, prints "There appear to be N leaked semaphore
    objects" after the shell's prompt has returned. Each semaphore registers a finalizer that does
    exactly this at a normal exit (``multiprocessing.synchronize.SemLock``); a hard exit skips them.
    Workers still running keep their open handles.
    """
    from multiprocessing import synchronize, util

    for finalizer in list(getattr(util, "_finalizer_registry", {}).values()):  # private, but stable since 3.4
        if getattr(finalizer, "_callback", None) is synchronize.SemLock._cleanup:
            with contextlib.suppress(Exception):
                finalizer()


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
