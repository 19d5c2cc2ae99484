"""The worker side of a run: one ``Worker`` per worker process and run. Everything in this file runs in a worker.

A ``Worker`` holds the process's client, ledger, fetch threads and view of the run: in a crew's
process (``serving`` starts it and feeds it the parent's messages) or in a Dask worker
(``dask_worker`` sets it up and hands it tasks); only its ``Link`` to the driver differs
(``links.py``). A task is claimed in the ledger in its turn, downloaded (``download.py``: all of
its DTE window, or this worker's share while helpers fetch the rest) and recorded; a share of
another worker's task is fetched without a claim (``help_with``). A watchdog thread follows the
run's stop flag and the driver and heartbeats every claimed task. Nothing here raises for a
task's own trouble.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import threading
import time
from collections import Counter
from datetime import date
from typing import Any, Callable, ClassVar, Mapping

from spxdl import checks
from spxdl.config import Settings
from spxdl.datasets import Dataset
from spxdl.engine.download import Outcome, TaskDownload
from spxdl.engine.fetchers import Fetchers
from spxdl.engine.links import Link
from spxdl.engine.planning import archive_datasets
from spxdl.engine.records import TASK_DONE, TASK_STARTED, Event, ResultState, Share, TaskResult, task_state
from spxdl.engine.shared import RUN_STOPPERS, STOPS, client_for, ledger_for
from spxdl.errors import Interrupted, NoData, SpxdlError
from spxdl.ledger import ExpirationState, Task, TaskState
from spxdl.sources import Source

log = logging.getLogger(__name__)

WATCH_SECONDS = 0.2  # how often a worker looks at the stop flag and its parent
ORPHAN_GRACE_SECONDS = 10.0  # how long an orphaned worker lets its task abort before exiting


class Worker:
    """This process's client, ledger and view of the run, and what it does with a task."""

    current: ClassVar[Worker | None] = None

    def __init__(self, settings: Settings, link: Link, stop: threading.Event | None = None) -> None:
        self.settings = settings
        self.link = link  # what crosses to the driver and the other workers: a crew's or a Dask cluster's
        self.in_flight = link.in_flight
        self.client: Source | None = None  # built by setup(), once the parent found the terminal
        self.fetchers: Fetchers | None = None
        self.ledger = ledger_for(settings, link.run, link.run_pid)
        self.stop = stop or threading.Event()  # this process's view of the stop: the run's flag, or the driver gone
        self.shared_stop = link.stop
        self.events = link.events
        self.closed = threading.Event()  # the run is over for this process: the watchdog ends
        self.archives: dict[str, Dataset] = archive_datasets(settings)
        self.calendar = settings.calendar()
        self.expirations: dict[str, list[date]] = {}  # root -> listed expirations, once per process
        self.active: set[Task] = set()  # claimed: heartbeats go to these
        self.lost: set[Task] = set()  # claims another run took over (stale heartbeat)
        self.helped: dict[Task, queue.Queue] = {}  # claimed here, shared: the helpers' outcomes arrive here
        self.helping: dict[Task, int] = {}  # another worker's task this one helps with -> that worker's pid
        self.busy = 0  # tasks in run_task, claimed or about to be
        self.lock = threading.Lock()
        self.beating = threading.Lock()  # held by a round of heartbeats; a task leaves `active` between rounds
        self.announce: Callable[[Task], None] = lambda task: None  # tells the parent a task was claimed

    # -- the process --------------------------------------------------------------------------

    def setup(self, settings: Settings, listed: Mapping[str, list[date]]) -> None:
        """The parent found the terminal: its settings (URL, API) and the expirations it listed per root."""
        self.settings = settings
        self.ledger = ledger_for(settings, self.link.run, self.link.run_pid)
        self.archives = archive_datasets(settings)
        self.expirations.update(listed)
        sleep = functools.partial(_sleep_unless_stopped, self.stop)
        self.client = client_for(settings, in_flight=self.in_flight, sleep=sleep, checked=True)
        self.fetchers = Fetchers(settings.worker_threads, self.stop.is_set)

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

    def watch(self) -> None:
        """Watchdog: follow the shared stop flag and the driver; heartbeat the claimed tasks (until ``close``)."""
        last_beat = time.monotonic()
        while not self.closed.is_set():
            try:
                orphaned = self.link.abandoned()
                if orphaned or self.shared_stop.is_set():
                    self.stop.set()
                if orphaned:
                    self.exit_when_idle()
                if time.monotonic() - last_beat >= self.settings.heartbeat_seconds:
                    last_beat = time.monotonic()
                    self.heartbeat()
            except Exception:  # the watchdog must outlive any one failure, or stops go unseen
                log.exception("watchdog: unexpected error; going on")
            self.closed.wait(WATCH_SECONDS)

    def close(self) -> None:
        """This process is done with the run: its tasks still running stop (claims released, temp files
        removed), then the watchdog, the fetch threads and the source end."""
        self.stop.set()
        self.closed.set()
        if self.fetchers is not None:
            self.fetchers.shutdown()
        if self.client is not None:
            self.client.close()

    def exit_when_idle(self) -> None:
        """The parent is gone: let the task abort (temp file removed, claim released), then exit."""
        deadline = time.monotonic() + ORPHAN_GRACE_SECONDS
        while True:
            with self.lock:  # held while exiting: no task can start claiming meanwhile
                if not self.busy or time.monotonic() > deadline:
                    os._exit(1)  # nobody is left to read a result; the pool's call queue would block forever
            time.sleep(WATCH_SECONDS)

    def heartbeat(self) -> None:
        """Refresh every claim this process holds; a claim another run took over is marked lost."""
        with self.beating:
            self.beat_once()

    def beat_once(self) -> None:
        with self.lock:
            tasks = list(self.active)
        for task in tasks:
            try:
                held = self.ledger.heartbeat(task)
            except (SpxdlError, OSError) as exc:  # a full disk, say: try again at the next beat
                log.warning("heartbeat of %s failed: %s", task.key, exc)
                continue
            if not held:
                log.warning("%s was taken over by another run; abandoning it", task.key)
                with self.lock:
                    self.lost.add(task)
        with self.lock:
            helping = dict(self.helping)
        for task, owner in helping.items():
            try:
                claim = (self.ledger.day(task) or {}).get("claim") or {}
            except (SpxdlError, OSError) as exc:
                log.warning("could not read the claim of %s: %s", task.key, exc)
                continue
            if claim.get("pid") != owner:  # released (a stop) or taken over: stop helping
                with self.lock:
                    self.lost.add(task)

    def stop_beating(self, task: Task) -> None:
        """No heartbeat for ``task`` from now on: call it before the ledger drops the claim (finish,
        release), or a beat in between would find no claim and take the task for taken over."""
        with self.beating, self.lock:
            self.active.discard(task)

    # -- a task -------------------------------------------------------------------------------

    def run_task(
        self, task: Task, min_dte: int, max_dte: int, force: bool, ticket: int, share: Share | None = None
    ) -> TaskResult:
        """Claim (in the turn of ``ticket``), download (all of the window, or ``share`` of it while
        helpers fetch the rest) and record one task; its result (never raises for the task's trouble)."""
        with self.lock:
            self.busy += 1  # an orphaned worker exits only when no task is between claim and release
        try:
            result = self.claim_and_run(task, min_dte, max_dte, force, ticket, share)
        finally:
            with self.lock:
                self.busy -= 1
        if result.state == ResultState.INTERRUPTED and not result.seconds:
            return result  # stopped while it waited for its turn: it never started, no event
        self.emit(
            TASK_DONE, task, state=result.state, rows=result.rows, bytes=result.bytes, seconds=result.seconds,
            error=result.error,
        )
        return result

    def claim_and_run(
        self, task: Task, min_dte: int, max_dte: int, force: bool, ticket: int, share: Share | None
    ) -> TaskResult:
        """Claim in the task's turn (``Fetchers.turn``), which ends once its expirations are queued."""
        with contextlib.ExitStack() as turn:
            turn.enter_context(self.fetchers.turn(ticket))
            return self.claim_in_turn(task, min_dte, max_dte, force, turn.close, share)

    def claim_in_turn(
        self, task: Task, min_dte: int, max_dte: int, force: bool, turn_over: Callable[[], None], share: Share | None
    ) -> TaskResult:
        started = time.monotonic()
        min_dte, max_dte = self.archives[task.archive].dte_window(min_dte, max_dte)  # an index covers [0, 0]
        if self.stop.is_set():
            return TaskResult(task, ResultState.INTERRUPTED)  # never started: no seconds
        try:
            if not force and self.ledger.is_done(task, min_dte=min_dte, max_dte=max_dte):
                return TaskResult(task, ResultState.SUCCESS, seconds=time.monotonic() - started)  # finished since the plan
            claimed = self.ledger.claim(task, min_dte=min_dte, max_dte=max_dte)
        except RUN_STOPPERS as exc:  # a full disk: no task can be recorded
            self.stop_run()
            return TaskResult(task, ResultState.INTERRUPTED, error=str(exc), stopped_by=exc)
        except SpxdlError as exc:
            return TaskResult(task, ResultState.FAILED, error=f"could not claim: {exc}", seconds=time.monotonic() - started)
        if not claimed:
            log.info("%s is held by another live run; skipping it", task.key)
            return TaskResult(task, ResultState.HELD, seconds=time.monotonic() - started)
        with self.lock:
            self.active.add(task)
        try:
            return self.run_claimed(task, min_dte, max_dte, force, started, turn_over, share)
        finally:
            with self.lock:
                self.active.discard(task)
                self.lost.discard(task)
                self.helped.pop(task, None)

    def run_claimed(
        self, task: Task, min_dte: int, max_dte: int, force: bool, started: float, turn_over: Callable[[], None],
        share: Share | None = None,
    ) -> TaskResult:
        """The body of a claimed task: download, then finish (or release when stopped)."""
        if share and share.helpers:
            with self.lock:
                self.helped[task] = queue.Queue()  # before the parent hears of the claim and sends helpers
        self.announce(task)
        self.emit(TASK_STARTED, task)
        download = TaskDownload(self, task, min_dte, max_dte, force, share)
        try:
            outcomes = download.run(turn_over)
            return self.finish(task, outcomes, min_dte, max_dte, started)
        except NoData as exc:  # the root lists no expiration at all: unknown root, or not in the subscription
            self.finish_quietly(task, TaskState.NO_DATA, min_dte, max_dte, str(exc))
            return TaskResult(task, ResultState.NO_DATA, seconds=time.monotonic() - started, error=str(exc))
        except STOPS as exc:
            self.release_quietly(task)
            if task in self.lost and not self.stop.is_set():
                return TaskResult(task, ResultState.HELD, seconds=time.monotonic() - started, error=str(exc))
            stopper = exc if isinstance(exc, RUN_STOPPERS) else None
            if stopper is not None:
                self.stop_run()
            seconds = time.monotonic() - started
            return TaskResult(task, ResultState.INTERRUPTED, seconds=seconds, error=str(exc), stopped_by=stopper,
                              **download.landed_totals())
        except Exception as exc:  # the listing failed, or the ledger did: this task fails, the run goes on
            seconds = time.monotonic() - started
            if self.stop.is_set():
                self.release_quietly(task)
                return TaskResult(task, ResultState.INTERRUPTED, seconds=seconds, error=str(exc),
                                  **download.landed_totals())
            expected = isinstance(exc, SpxdlError)
            log.log(logging.WARNING if expected else logging.ERROR, "%s failed: %s", task.key, exc, exc_info=not expected)
            self.finish_quietly(task, TaskState.FAILED, min_dte, max_dte, str(exc))
            return TaskResult(task, ResultState.FAILED, seconds=seconds, error=str(exc))

    def finish(self, task: Task, outcomes: list[Outcome], min_dte: int, max_dte: int, started: float) -> TaskResult:
        """Record the task's final state from its expirations' outcomes; its result."""
        state = task_state(outcome.state for outcome in outcomes)
        failures = tuple((o.expiration, o.error or "no reason recorded") for o in outcomes if o.state == ExpirationState.FAILED)
        error = f"{len(failures)} expiration(s) failed; first: {failures[0][0]}: {failures[0][1]}" if failures else None
        if state == TaskState.NO_DATA:
            error = f"the terminal answered no data (472) for all {len(outcomes)} expiration(s)"
        self.stop_beating(task)
        if not self.ledger.finish(task, state, min_dte=min_dte, max_dte=max_dte, error=error):
            return TaskResult(task, ResultState.HELD, seconds=time.monotonic() - started, error="taken over by another run")
        counted = dict(sum((Counter(outcome.checks) for outcome in outcomes), Counter()))
        dropped = sum(outcome.dropped for outcome in outcomes)
        stored = any(o.state == ExpirationState.COMPLETE and not o.skipped for o in outcomes)
        log_checks(task, counted, dropped, self.settings.validation_mode, stored=stored)
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
            checks=counted,
            extra_columns=tuple(dict.fromkeys(name for outcome in outcomes for name in outcome.extra_columns)),
            dropped=dropped,
        )

    def help_with(
        self, task: Task, min_dte: int, max_dte: int, force: bool, expirations: tuple[date, ...], owner: int,
        ticket: int,
    ) -> list[Outcome]:
        """Fetch ``expirations`` of a task another worker of this run claimed (pid ``owner``), in
        the turn of ``ticket``; their outcomes for that worker (none when the run stops or the
        claim goes: the owner does not wait for them then)."""
        with self.lock:
            self.helping[task] = owner
            self.busy += 1
        try:
            with contextlib.ExitStack() as turn:
                turn.enter_context(self.fetchers.turn(ticket))
                if self.stop.is_set():
                    return []
                return TaskDownload(self, task, min_dte, max_dte, force, Share(expirations)).run(turn.close)
        except STOPS:
            return []
        except Exception as exc:  # the ledger, say: these expirations fail, the owner records the task
            log.warning("%s: helping with %d expiration(s) failed: %s", task.key, len(expirations), exc)
            return [Outcome(e, ExpirationState.FAILED, error=str(exc)) for e in expirations]
        finally:
            with self.lock:
                self.helping.pop(task, None)
                self.lost.discard(task)
                self.busy -= 1

    def release_quietly(self, task: Task) -> None:
        self.stop_beating(task)
        try:
            self.ledger.release(task)
        except (SpxdlError, OSError) as exc:  # a claim left behind goes stale and is taken over
            log.warning("could not release %s: %s", task.key, exc)

    def finish_quietly(self, task: Task, state: str, min_dte: int, max_dte: int, error: str) -> None:
        self.stop_beating(task)
        try:
            self.ledger.finish(task, state, min_dte=min_dte, max_dte=max_dte, error=error)
        except (SpxdlError, OSError) as exc:
            log.warning("could not record %s as %s: %s", task.key, state, exc)
            self.release_quietly(task)


def log_checks(task: Task, counts: dict[str, int], dropped: int, mode: str, *, stored: bool) -> None:
    """One INFO line per task that stored files: what its checks counted this run (and what drop left out)."""
    if not stored:
        return
    flagged = ", ".join(f"{name} {count:,}" for name, count in sorted(counts.items())
                        if count and name not in checks.OBSERVATIONS) or "nothing"
    observed = ", ".join(f"{name} {count:,}" for name, count in sorted(counts.items())
                         if count and name in checks.OBSERVATIONS) or "nothing"
    left_out = f"; {dropped:,} row(s) dropped" if dropped else ""
    log.info("%s: checks flagged %s; observed %s (validation %s%s)", task.key, flagged, observed, mode, left_out)


def _sleep_unless_stopped(stop: threading.Event, seconds: float) -> None:
    """The client's retry sleep: cut short by a stop."""
    if stop.wait(seconds):
        raise Interrupted("the run is stopping")
