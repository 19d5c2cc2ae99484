"""The parent side of a run: where its tasks run, and the crew of worker processes that runs them here.

``run`` starts the workers (``processes.Crew``, or connects to a Dask cluster with
``--executor dask://``: ``dask_run``) at once and, while they start, prepares the data dir
(``preparing``: temp-file sweep, terminal detection, archive shapes) and lists each root's
expirations; it records the run in the ledger (``recording``), then hands out the tasks, several
per worker, as results come back. Signals, results, events and ticks are the ``driving.Driver``'s
business, the same whichever executor runs the tasks.

The engine package is the only place that starts processes or threads for downloading. It never
prints.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import deque
from datetime import date
from typing import Callable, Iterator

from spxdl.config import Settings
from spxdl.engine import forking, metering
from spxdl.engine.driving import DRAINED, POLL_SECONDS, STOP_GRACE_SECONDS, Driver, worker_log_level
from spxdl.engine.planning import archive_datasets, lists_expirations, shares, window_expirations
from spxdl.engine.preparing import prepare
from spxdl.engine.processes import Answer, Crew, CrewStart, Member
from spxdl.engine.recording import recorded_run
from spxdl.engine.records import TASK_DONE, Event, Plan, ResultState, RunSummary, Share, TaskResult
from spxdl.engine.shared import RUN_CAPTURE, SharedFlag
from spxdl.ledger import Task

log = logging.getLogger(__name__)

DRAIN_JOIN_SECONDS = 5.0  # how long the event drain may take to empty a closed crew's queue
CREWS_WITHOUT_ANSWER = 3  # crews in a row that die before any answer: the workers cannot start


def run(
    plan: Plan,
    settings: Settings,
    on_event: Callable[[Event], None] | None = None,
    on_tick: Callable[[], None] | None = None,
) -> RunSummary:
    """Download ``plan.tasks`` in worker processes (or on the Dask cluster of ``settings.executor``);
    an interrupted run returns its summary too.

    ``on_event`` gets every progress event and ``on_tick`` is called every ``TICK_SECONDS`` while
    the workers run, both from one thread of this process, never at once. TerminalUnavailable /
    PermissionDenied (no usable terminal) and ArchiveMismatch raise before any task starts, and
    so do ClusterUnavailable and ClusterMismatch (a Dask cluster that cannot run it). The run is
    recorded in the ledger before its first task (``recording.py``): a run stopped or killed
    part-way is what ``spxdl resume`` finishes.
    """
    started = time.monotonic()
    summary = RunSummary(held_at_plan=len(plan.held))
    try:
        if plan.tasks:
            the_run = _executor_run(plan, settings, on_event, summary, on_tick)
            with the_run.workers_starting():  # they start while the terminal is found
                settings, summary.simulated, listed = prepare(settings, plan.tasks)
                summary.api = settings.terminal_api
                the_run.settings = settings
                with recorded_run(plan, settings, summary) as run_id:
                    the_run.execute(run_id, listed)
    finally:
        if settings.capture_dir is not None:
            from spxdl import capture

            log.info("captured answers are listed in %s", capture.write_manifest(settings.capture_dir, RUN_CAPTURE))
    summary.seconds = time.monotonic() - started
    metering.write_run_row(settings.ledger_path, plan, summary)
    log.info("run %s..%s: %s in %.1f s", plan.start, plan.end, summary.by_state() or "nothing to do", summary.seconds)
    return summary


def _executor_run(
    plan: Plan, settings: Settings, on_event: Callable[[Event], None] | None, summary: RunSummary,
    on_tick: Callable[[], None] | None,
) -> Driver:
    """The driver for ``settings.executor``: this machine's crew of processes, or a Dask cluster."""
    if settings.on_dask:
        from spxdl.engine.dask_run import DaskRun  # Dask is an optional extra, loaded only when asked for

        return DaskRun(plan, settings, on_event, summary, on_tick)
    warn_of_idle_slots(settings)
    return _Run(plan, settings, on_event, summary, on_tick)


def warn_of_idle_slots(settings: Settings) -> None:
    """Say so when the workers' threads cannot fill the terminal's slots (workers and threads set by hand)."""
    threads = settings.worker_processes * settings.worker_threads
    if threads < settings.max_in_flight:
        log.warning(
            "workers x threads = %d x %d = %d request threads for max_in_flight %d: at most %d requests in flight; "
            "leave workers and threads unset (auto) to use every slot",
            settings.worker_processes, settings.worker_threads, threads, settings.max_in_flight, threads,
        )


class _Run(Driver):
    """One run's parent side with a crew of worker processes: the crews, handing out tasks, their answers."""

    def __init__(
        self, plan: Plan, settings: Settings, on_event: Callable[[Event], None] | None, summary: RunSummary,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        # Workers are forked from a fork server that has imported their code once (engine/forking.py).
        context = forking.context()
        super().__init__(plan, settings, on_event, summary, on_tick, SharedFlag(context))
        self.context = context
        self.first_crew: CrewStart | None = None
        self.crews_without_answer = 0
        self.cut_once: set[Task] = set()  # tasks a broken crew cut short, and the next crew runs again
        self.listed: dict[str, list[date]] = {}
        self.calendar = settings.calendar()
        self.archives = archive_datasets(settings)

    @contextlib.contextmanager
    def workers_starting(self) -> Iterator[None]:
        """The first crew, started on a thread of its own while the block runs (it finds the
        terminal meanwhile); ended (unless the run used it) with the block."""
        settings, tasks = self.settings, len(self.plan.tasks)  # as they are now: prepare() resolves them meanwhile
        self.first_crew = CrewStart(lambda: self.new_crew(settings, tasks))
        try:
            yield
        finally:
            crew = self.first_crew.started()
            if crew is not None:
                crew.discard()  # unless the run used it (and closed it): the terminal was not found, say

    def new_crew(self, settings: Settings, tasks: int) -> Crew:
        """Start the worker processes for ``tasks`` tasks: one each, and for fewer tasks than that
        still enough to fill the terminal's slots (they share the tasks), never more than
        ``worker_processes``."""
        slots = math.ceil(settings.max_in_flight / settings.worker_threads)
        count = min(settings.worker_processes, max(tasks, slots))
        crew = Crew(self.context, settings, self.stop, count, worker_log_level())
        self.worker_pids.update(member.process.pid for member in crew.members)
        return crew

    def execute(self, run_id: str, listed: dict[str, list[date]]) -> None:
        """Run every task (or until stopped) with the first crew, then new crews after one broke."""
        self.listed = listed
        crew: Crew | None = self.first_crew.crew() if self.first_crew else None
        with self.signals_handled():
            todo = deque(self.plan.tasks)
            while todo and not self.stopping():
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
        drainer = threading.Thread(target=self.drain, args=(crew.events, drained), name="spxdl-events", daemon=True)
        drainer.start()
        try:
            yield crew
        finally:
            killed = crew.died() or self.stop_overdue()
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
            if not self.stopping():
                self._hand_out(crew, todo)
            if not crew.outstanding() and (not todo or self.stopping() or crew.died()):
                return
            for answer in crew.receive(POLL_SECONDS):
                self._heard(crew, answer, todo)
            if crew.died():
                self._broken(crew, todo, "its worker process died", "a worker process died")
                return
            if crew.outstanding() and self.stop_overdue():
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
            self.take(answer.result, answer.started, todo)
        elif answer.outcomes is not None:
            crew.forward(answer.task, answer.outcomes)
        else:
            crew.help(answer.task, self.task_args, answer.member)

    def _broken(self, crew: Crew, todo: deque[Task], reason: str, warning: str) -> None:
        """Kill the crew: the tasks of the process that died fail, those it cut short in the others
        go to the next crew (once; a second time they fail too), and so do those not started."""
        log.warning("%s; killing the other workers", warning)
        # A worker killed while it held the event queue's or the semaphore's lock leaves it taken:
        # the whole crew goes, and a new one (with a queue and a semaphore of its own) runs the rest.
        dead = crew.dead()
        crew.kill()
        lost = crew.lost(dead)
        for answer in lost.answers:
            if answer.result is not None:
                self.take(answer.result, answer.started, todo)
        for task in lost.dead:
            self.collect(self.lost(task, reason))
        for task in lost.cut:
            if self.stopping() or task in self.cut_once:
                self.collect(self.lost(task, f"{reason} (another worker's, twice)"))
            else:
                self.cut_once.add(task)
                self.release(task)
                self.requeue(todo, [task])
        self.requeue(todo, lost.waiting)
        self.crews_without_answer = 0 if crew.answered else self.crews_without_answer + 1

    def _give_up(self, todo: deque[Task]) -> None:
        """Workers that die before answering anything: fail the rest instead of starting them forever."""
        reason = f"{CREWS_WITHOUT_ANSWER} crews of worker processes died before doing anything; see the log"
        log.error(reason)
        while todo:
            task = todo.popleft()
            self.collect(TaskResult(task, ResultState.FAILED, error=reason))
            self.deliver(Event(TASK_DONE, task, state=ResultState.FAILED, error=reason))
