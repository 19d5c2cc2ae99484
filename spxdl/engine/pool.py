"""The parent side of a run: the worker processes, signals, the event drain and metrics.

``run`` starts the worker processes (``processes.Crew``) at once and, while they start, prepares
the data dir (``preparing``: temp-file sweep, terminal detection, archive shapes) and lists each
root's expirations; it records the run in the ledger (``recording``), then hands out the tasks,
several per worker, as results come back. Progress events and worker log records travel through
one queue to a parent thread that calls ``on_event`` (and ``on_tick`` meanwhile). A first
SIGINT/SIGTERM stops the run cleanly (workers abort and release their claims); a second exits at
once.

The engine package is the only place that starts processes or threads for downloading. It never
prints.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
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
from spxdl.engine.download import Share
from spxdl.engine.planning import archive_datasets, lists_expirations, shares, window_expirations
from spxdl.engine.preparing import prepare
from spxdl.engine.processes import Answer, Crew, Member, release_semaphores
from spxdl.engine.recording import recorded_run
from spxdl.engine.records import TASK_DONE, Event, Plan, ResultState, RunSummary, TaskResult
from spxdl.engine.shared import RUN_CAPTURE, STOP_SIGNALS, SharedFlag, ledger_for
from spxdl.errors import SpxdlError
from spxdl.ledger import Task

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2  # how often the parent looks at signals and the stop flag
TICK_SECONDS = 0.25  # how often ``on_tick`` is called (the progress display's redraws)
STOP_GRACE_SECONDS = 15.0  # how long a stopping parent waits for workers to abort
DRAIN_JOIN_SECONDS = 5.0  # how long the event drain may take to empty a closed crew's queue
CREWS_WITHOUT_ANSWER = 3  # crews in a row that die before any answer: the workers cannot start
DRAINED = "drained"  # the parent's last item on a crew's event queue, once every worker has ended


def run(
    plan: Plan,
    settings: Settings,
    on_event: Callable[[Event], None] | None = None,
    on_tick: Callable[[], None] | None = None,
) -> RunSummary:
    """Download ``plan.tasks`` in worker processes; an interrupted run returns its summary too.

    ``on_event`` gets every progress event and ``on_tick`` is called every ``TICK_SECONDS`` while
    the workers run, both from one thread of this process, never at once. TerminalUnavailable /
    PermissionDenied (no usable terminal) and ArchiveMismatch raise before any task starts. The
    run is recorded in the ledger before its first task (``recording.py``): a run stopped or
    killed part-way is what ``spxdl resume`` finishes.
    """
    started = time.monotonic()
    summary = RunSummary(held_at_plan=len(plan.held))
    try:
        if plan.tasks:
            warn_of_idle_slots(settings)
            the_run = _Run(plan, settings, on_event, summary, on_tick)
            crew = the_run.new_crew(settings, len(plan.tasks))  # the workers start while the terminal is found
            try:
                settings, summary.simulated, listed = prepare(settings, plan.tasks)
                summary.api = settings.terminal_api
                the_run.settings = settings
                with recorded_run(plan, settings, summary):
                    the_run.execute(crew, listed)
            finally:
                crew.discard()  # unless the run used it (and closed it): the terminal was not found, say
    finally:
        if settings.capture_dir is not None:
            from spxdl import capture

            log.info("captured answers are listed in %s", capture.write_manifest(settings.capture_dir, RUN_CAPTURE))
    summary.seconds = time.monotonic() - started
    metering.write_run_row(settings.ledger_path, plan, summary)
    log.info("run %s..%s: %s in %.1f s", plan.start, plan.end, summary.by_state() or "nothing to do", summary.seconds)
    return summary


def warn_of_idle_slots(settings: Settings) -> None:
    """Say so when the workers' threads cannot fill the terminal's slots (workers and threads set by hand)."""
    threads = settings.worker_processes * settings.worker_threads
    if threads < settings.max_in_flight:
        log.warning(
            "workers x threads = %d x %d = %d request threads for max_in_flight %d: at most %d requests in flight; "
            "leave workers and threads unset (auto) to use every slot",
            settings.worker_processes, settings.worker_threads, threads, settings.max_in_flight, threads,
        )


class _Run:
    """One run's parent side: the crews of workers, handing out tasks, signals, events, results."""

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
        self.crews_without_answer = 0
        self.plan_order = {task: index for index, task in enumerate(plan.tasks)}
        self.listed: dict[str, list[date]] = {}
        self.calendar = settings.calendar()
        self.archives = archive_datasets(settings)

    def new_crew(self, settings: Settings, tasks: int) -> Crew:
        """Start the worker processes for ``tasks`` tasks: one each, and for fewer tasks than that
        still enough to fill the terminal's slots (they share the tasks), never more than
        ``worker_processes``."""
        slots = math.ceil(settings.max_in_flight / settings.worker_threads)
        count = min(settings.worker_processes, max(tasks, slots))
        return Crew(self.context, settings, self.stop, count, _worker_log_level())

    def execute(self, crew: Crew | None, listed: dict[str, list[date]]) -> None:
        """Run every task (or until stopped) with ``crew``, then new crews after one broke."""
        self.listed = listed
        with self._signals_handled():
            todo = deque(self.plan.tasks)
            while todo and not self._stopping():
                crew = crew or self.new_crew(self.settings, len(todo))
                with self._drained(crew):
                    crew.setup(self.settings, listed)
                    self._feed(crew, todo)
                crew = None
                if self.crews_without_answer >= CREWS_WITHOUT_ANSWER:
                    self._give_up(todo)
            self.summary.not_started = tuple(todo)
        if crew is not None:  # stopped before it was used
            crew.discard()
        self.summary.interrupted = self.signal_number

    @contextlib.contextmanager
    def _drained(self, crew: Crew) -> Iterator[Crew]:
        """The crew with a thread delivering its events; closed (or killed) and drained at the end."""
        drained = threading.Event()
        drainer = threading.Thread(target=self._drain, args=(crew.events, drained), name="spxdl-events", daemon=True)
        drainer.start()
        try:
            yield crew
        finally:
            killed = crew.died() or self._stop_overdue()
            if killed:
                crew.kill()
            crew.close()
            drained.set()
            if not killed:  # every worker ended cleanly: nothing follows this, the drain ends at once
                crew.events.put(DRAINED)
            drainer.join(DRAIN_JOIN_SECONDS)  # a worker killed mid-event may leave half a message
            crew.events.close()

    def _feed(self, crew: Crew, todo: deque[Task]) -> None:
        """Keep every worker busy until done, stopped or the crew breaks."""
        while True:
            if not self._stopping():
                self._hand_out(crew, todo)
            if not crew.outstanding() and (not todo or self._stopping() or crew.died()):
                return
            for answer in crew.receive(POLL_SECONDS):
                self._heard(crew, answer, todo)
            if crew.died():
                self._broken(crew, todo, "its worker process died", "a worker process died")
                return
            if crew.outstanding() and self._stop_overdue():
                self._broken(crew, todo, "its worker did not stop in time",
                             f"workers did not stop within {STOP_GRACE_SECONDS:.0f} s")
                return

    def _hand_out(self, crew: Crew, todo: deque[Task]) -> None:
        """Give waiting tasks to the workers with room for them; the last one shared with idle ones."""
        while todo:
            member = crew.free_member()
            if member is None:
                return
            task = todo[0]
            share, helpers = self._shares(crew, member, task) if len(todo) == 1 else (None, [])
            if not crew.assign(member, task, (*self.task_args, share)):
                return
            todo.popleft()
            for helper, expirations in helpers:
                crew.reserve(helper, task, expirations)

    def _shares(self, crew: Crew, owner: Member, task: Task) -> tuple[Share | None, list[tuple[Member, tuple]]]:
        """How ``task`` is shared out: the owner's share and each idle helper's (no share: alone).

        A task is shared when workers would otherwise stand idle (the run's last task, a single
        day): each helper gets at least ``threads`` of the window's expirations, dealt in turn.
        """
        idle = crew.idle_members(besides=owner)
        if not idle or task.root not in self.listed or not lists_expirations(self.archives[task.archive]):
            return None, []
        window = window_expirations(self.listed[task.root], task, self.settings.min_dte, self.settings.max_dte,
                                    self.calendar)
        count = min(len(idle) + 1, len(window) // self.settings.worker_threads)
        if count < 2:
            return None, []
        parts = shares(window, count)
        return Share(tuple(parts[0]), helpers=count - 1), list(zip(idle, (tuple(part) for part in parts[1:])))

    def _heard(self, crew: Crew, answer: Answer, todo: deque[Task]) -> None:
        """What a worker said: a task claimed (its helpers start), a helper's outcomes, a result."""
        if answer.result is not None:
            crew.unreserve(answer.task)
            self._take(answer.result, answer.started, todo)
        elif answer.outcomes is not None:
            crew.forward(answer.task, answer.outcomes)
        else:
            crew.help(answer.task, self.task_args, answer.member)

    def _broken(self, crew: Crew, todo: deque[Task], reason: str, warning: str) -> None:
        """Kill the crew; its started tasks are lost, the others wait for the next crew."""
        log.warning("%s; killing the other workers", warning)
        # A worker killed while it held the event queue's or the semaphore's lock leaves it taken:
        # the whole crew goes, and a new one (with a queue and a semaphore of its own) runs the rest.
        crew.kill()
        answers, started, waiting = crew.lost()
        for answer in answers:
            if answer.result is not None:
                self._take(answer.result, answer.started, todo)
        for task in started:
            self._collect(self._lost(task, reason))
        self._requeue(todo, waiting)
        self.crews_without_answer = 0 if crew.answered else self.crews_without_answer + 1

    def _give_up(self, todo: deque[Task]) -> None:
        """Workers that die before answering anything: fail the rest instead of starting them forever."""
        reason = f"{CREWS_WITHOUT_ANSWER} crews of worker processes died before doing anything; see the log"
        log.error(reason)
        while todo:
            task = todo.popleft()
            self._collect(TaskResult(task, ResultState.FAILED, error=reason))
            self._deliver(Event(TASK_DONE, task, state=ResultState.FAILED, error=reason))

    def _take(self, result: TaskResult, started: bool, todo: deque[Task]) -> None:
        """A worker's answer: a result, or a task that was stopped before it started (to do still)."""
        if result.state == ResultState.INTERRUPTED and not started:
            self._stopped_by(result.stopped_by)  # a full disk at its claim, say
            self._requeue(todo, [result.task])
        else:
            self._collect(result)

    def _requeue(self, todo: deque[Task], tasks: Iterable[Task]) -> None:
        """Put tasks back among those to do, in the plan's order."""
        todo.extend(tasks)
        ordered = sorted(todo, key=self.plan_order.__getitem__)
        todo.clear()
        todo.extend(ordered)

    def _collect(self, result: TaskResult) -> None:
        """Record a task's result."""
        self._stopped_by(result.stopped_by)
        self._note_extra_columns(result.extra_columns)
        self.summary.results.append(result)
        metering.write_task_row(self.settings.ledger_path, result)

    def _stopped_by(self, error: SpxdlError | None) -> None:
        """One of RUN_STOPPERS stopped a task: the run stops, and its summary says why (the first)."""
        if error is not None and self.summary.stopped_by is None:
            self.summary.stopped_by = error
            self.stop.set()

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
            release_semaphores()
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
            if item == DRAINED:
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


def _worker_log_level() -> int:
    """The lowest level any handler of spxdl's loggers shows: workers send nothing below it."""
    logger = logging.getLogger("spxdl")
    levels = [handler.level for handler in logger.handlers if handler.level]
    return max(logger.getEffectiveLevel(), min(levels, default=logging.NOTSET))
