"""A worker process's life: its start, its messages from the parent, its answers. Runs in a child only.

The parent (``processes.Crew``) starts each worker with ``serve``, which makes the process's
``Worker`` (``init_worker``: the stop signals ignored, since the parent decides; log records sent
to the parent through the event queue; a watchdog thread that follows the
shared stop flag and the parent process and heartbeats every claimed task). Then ``serve`` reads
the parent's messages: ``setup`` (the resolved settings and the roots' listed expirations: the
process builds its own terminal client and fetch threads), then tasks and shares of tasks,
several at a time, until ``None``.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import os
import signal
import threading
import time
from datetime import date
from multiprocessing.connection import Connection
from typing import Any, Mapping

from spxdl.config import Settings
from spxdl.engine.forking import STOP_SIGNALS
from spxdl.engine.links import ProcessLink, send_logs_to
from spxdl.engine.records import ResultState, Share, TaskResult
from spxdl.engine.shared import SharedFlag
from spxdl.engine.worker import Worker
from spxdl.ledger import Task

log = logging.getLogger(__name__)


def init_worker(
    settings: Settings, in_flight: Any, shared_stop: SharedFlag, events: Any, parent_pid: int, log_level: int,
    environment: Mapping[str, str] | None = None,
) -> None:
    """A worker process's start: ignore the stop signals, take the parent's ``environment`` (as it
    is now, not as it was when the fork server started), build its Worker and start its watchdog."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    if environment is not None:
        take_environment(environment)
    send_logs_to(events, log_level)
    Worker.current = Worker(settings, ProcessLink(shared_stop, in_flight, events, parent_pid))
    threading.Thread(target=Worker.current.watch, name="spxdl-watchdog", daemon=True).start()


def take_environment(environment: Mapping[str, str]) -> None:
    """Make this process's environment ``environment`` (credentials a library reads, TZ)."""
    os.environ.clear()
    os.environ.update(environment)
    time.tzset()


def serve(inbox: Connection, init_args: tuple, tasks_at_once: int) -> None:
    """A worker process's life: start (``init_worker``), then do what the parent sends until ``None``.

    Messages: ``("setup", settings, listed)`` once; then ``("task", task, min_dte, max_dte, force,
    share)`` and ``("help", task, min_dte, max_dte, force, expirations, owner_pid)``, up to
    ``tasks_at_once`` running together (their fetches share the process's threads); and
    ``("helped", task, outcomes)``, a helper's outcomes for a task claimed here. Answers go back
    through ``inbox``: ``("started", task)``, a ``TaskResult``, ``("helped", task, outcomes)``. A
    closed pipe (the parent is gone) ends it.
    """
    init_worker(*init_args)
    worker = Worker.current
    assert worker is not None
    replies = threading.Lock()  # task threads answer through one pipe

    def answer(message: object) -> None:
        with replies, contextlib.suppress(OSError):  # the parent gone: nobody to answer
            inbox.send(message)

    worker.announce = lambda task: answer(("started", task))

    def run_and_answer(task: Task, min_dte: int, max_dte: int, force: bool, share: Share | None, ticket: int) -> None:
        try:
            result = run_task(task, min_dte, max_dte, force, ticket, share)
        except Exception as exc:  # a bug: the parent still needs an answer, or it waits for this task forever
            log.exception("%s failed unexpectedly", task.key)
            result = TaskResult(task, ResultState.FAILED, error=f"unexpected error: {exc!r}")
        answer(result)

    def help_and_answer(task: Task, min_dte: int, max_dte: int, force: bool, expirations: tuple[date, ...],
                        owner: int, ticket: int) -> None:
        answer(("helped", task, worker.help_with(task, min_dte, max_dte, force, expirations, owner, ticket)))

    with cf.ThreadPoolExecutor(max_workers=tasks_at_once, thread_name_prefix="spxdl-task") as tasks:
        while True:
            try:
                message = inbox.recv()
            except (EOFError, OSError):
                break
            if message is None:
                break
            kind, *payload = message
            if kind == "setup":
                worker.setup(*payload)
            elif kind == "helped":  # another worker's outcomes for a task claimed here
                box = worker.helped.get(payload[0])
                if box is not None:
                    box.put(payload[1])
            else:  # a task or a share of one: they take their turns in the order they came
                job = run_and_answer if kind == "task" else help_and_answer
                tasks.submit(job, *payload, worker.fetchers.ticket())
    worker.close()


def run_task(
    task: Task, min_dte: int, max_dte: int, force: bool = False, ticket: int | None = None, share: Share | None = None
) -> TaskResult:
    """Download one task's missing expirations in this worker process; never raises for a task's trouble.

    ``ticket`` (``Fetchers.ticket``) orders the task's turn among the others; None takes the next.
    ``share``: this worker fetches only those expirations, helpers the rest (see ``help_task``).
    """
    worker = Worker.current
    if worker is None or worker.client is None or worker.fetchers is None:
        raise RuntimeError("run_task needs a worker process set up by serve() (init_worker, then setup)")
    return worker.run_task(task, min_dte, max_dte, force, worker.fetchers.ticket() if ticket is None else ticket, share)
