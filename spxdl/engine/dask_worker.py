"""A run's tasks in a Dask worker process: the Dask link, the plugin that sets a process up, the task.

Runs in the worker processes of a Dask cluster only (``--executor dask://HOST:PORT``; the driver's
side is ``dask_run``). The plugin (``RunPlugin``) and the task (``run_task``) travel to the
workers as references to this module, so every worker needs the same spxdl installed. Each run
registers its own plugin: in every worker process, now and joining later (a worker its nanny
restarted after a crash included), ``setup`` builds a ``worker.Worker`` for the run, the same one
a crew's process runs: its source, ledger and fetch threads. ``run_task`` hands it one task, as a
crew's process does. ``teardown`` (the plugin unregistered at the run's end) closes it.

A worker that loses its scheduler closes (Dask's rule), and the plugin's ``teardown`` then stops
the run's tasks there: their claims are released and their temp files removed.

The ``DaskLink`` is what crosses between this process, the driver and the other workers, made of
Dask's own parts, bound on a run's first task in each process (they need a task's worker context):

- the stop flag: a ``distributed.Event`` named for the run (``stop_name``), which the watchdog
  asks every ``WATCH_SECONDS`` (a scheduler round trip: about 1 ms);
- the in-flight cap: a ``distributed.Semaphore`` named for the terminal and its cap
  (``slots_name``), so that every worker that talks to one terminal shares it, in this run and in
  any other on the cluster; a lease a killed worker held comes back after the scheduler's
  ``distributed.scheduler.locks.lease-timeout``;
- events and log records: pickled onto the run's pub-sub topic (``events_topic``) with
  ``Worker.log_event``, which the driver subscribes to.

Each worker talks to its own terminal: ``SPXDL_TERMINAL_URL`` in a worker's environment is the
terminal it uses; without it, the driver's ``terminal_url``.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import threading
from datetime import date
from typing import Any, Mapping

import distributed

from spxdl import storage
from spxdl.config import Settings
from spxdl.config.keys import KEYS_BY_FIELD
from spxdl.engine.links import SinkHandler
from spxdl.engine.records import ResultState, TaskResult
from spxdl.engine.worker import Worker
from spxdl.errors import ClusterMismatch, ConfigError
from spxdl.ledger import Task
from spxdl.urls import check_terminal_url, origin

log = logging.getLogger(__name__)

RUNS: dict[str, Worker] = {}  # run id -> this process's Worker for that run (set up by its plugin)
_binding = threading.Lock()
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
TERMINAL_URL_VARIABLE = KEYS_BY_FIELD["terminal_url"].env_name  # SPXDL_TERMINAL_URL


def stop_name(run_id: str) -> str:
    """The name of the run's stop flag (a ``distributed.Event``): one per run, cleared at its end."""
    return f"spxdl-stop-{run_id}"


def events_topic(run_id: str) -> str:
    """The pub-sub topic that carries the run's events and log records to its driver."""
    return f"spxdl-events-{run_id}"


def slots_name(terminal_url: str | None, cap: int, host: str | None = None) -> str:
    """The name of a terminal's in-flight semaphore: its URL and cap, and for a loopback URL this
    host's name too (127.0.0.1 on two hosts is two terminals)."""
    url = terminal_url or "direct"
    if terminal_url and origin(terminal_url)[1] in LOOPBACK_HOSTS:
        url = f"{host or socket.gethostname()}/{url}"
    return f"spxdl-inflight-{url}-{cap}"


class DaskFlag:
    """The run's stop flag: a ``distributed.Event``, bound to this worker's client on the first task."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.event: Any = None
        self.warned = False

    def bind(self, client: Any) -> None:
        self.event = distributed.Event(self.name, client=client)

    def set(self) -> None:
        if self.event is not None:
            self.event.set()

    def is_set(self) -> bool:
        """Whether the run stops (asked of the scheduler). A scheduler that cannot be asked is not a
        stop: a worker that loses its scheduler closes, and its plugin's teardown stops the tasks."""
        if self.event is None:
            return False
        try:
            return bool(self.event.is_set())
        except Exception as exc:
            if not self.warned:
                self.warned = True
                log.warning("cannot ask the Dask scheduler whether the run stops: %s", exc)
            return False


class DaskSlots:
    """The terminal's in-flight cap: a ``distributed.Semaphore``, bound on the first task."""

    def __init__(self, name: str, cap: int) -> None:
        self.name = name
        self.cap = cap
        self.semaphore: Any = None

    def bind(self, worker: Any) -> None:
        # The scheduler and the loop given here: fetch threads have no worker context to find them.
        self.semaphore = distributed.Semaphore(max_leases=self.cap, name=self.name, scheduler_rpc=worker.scheduler,
                                               loop=worker.loop)

    def acquire(self) -> Any:
        return self.semaphore.acquire()

    def release(self) -> Any:
        return self.semaphore.release()


class DaskSink:
    """Events and log records, pickled onto the run's topic (dropped before the first task binds it)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.worker: Any = None

    def bind(self, worker: Any) -> None:
        self.worker = worker

    def put(self, item: Any) -> None:
        if self.worker is not None:
            self.worker.log_event(self.topic, {"pickled": pickle.dumps(item)})  # from any thread


class DaskLink:
    """A Dask worker's link to its run: the run's Event, the terminal's Semaphore, the run's topic."""

    def __init__(self, run_id: str, settings: Settings, log_level: int) -> None:
        self.run_id = run_id
        self.run = run_id  # the claims of this run's tasks name it: other runs' tasks share the process
        self.run_pid = None  # the driver is another host's process, maybe: claims name the worker's parent
        self.stop = DaskFlag(stop_name(run_id))
        self.in_flight = DaskSlots(slots_name(settings.terminal_url, settings.max_in_flight), settings.max_in_flight)
        self.events = DaskSink(events_topic(run_id))
        self.log_level = log_level
        self.handler: logging.Handler | None = None
        self.bound = False

    def abandoned(self) -> bool:
        """Never: a driver that went away without stopping the run leaves the tasks running to their end."""
        return False

    def bind(self) -> None:
        """Bind Dask's parts to this worker (from inside a task) and send the ``spxdl`` log records."""
        worker = distributed.get_worker()
        self.stop.bind(distributed.get_client())
        self.in_flight.bind(worker)
        self.events.bind(worker)
        self.handler = SinkHandler(self.events)  # type: ignore[arg-type]
        logger = logging.getLogger("spxdl")
        logger.addHandler(self.handler)
        logger.setLevel(self.log_level)
        logger.propagate = False
        self.bound = True

    def unbind(self) -> None:
        if self.handler is not None:
            logging.getLogger("spxdl").removeHandler(self.handler)


class RunPlugin(distributed.WorkerPlugin):
    """Sets up every worker process of the cluster for one run (``name``: one plugin per run)."""

    def __init__(self, run_id: str, settings: Settings, listed: Mapping[str, list[date]], log_level: int) -> None:
        self.name = f"spxdl-{run_id}"
        self.run_id = run_id
        self.settings = settings
        self.listed = dict(listed)
        self.log_level = log_level

    def setup(self, worker: Any) -> None:
        settings = own_terminal(self.settings)
        spx = Worker(settings, DaskLink(self.run_id, settings, self.log_level))
        spx.setup(settings, self.listed)
        with _binding:
            RUNS[self.run_id] = spx

    def teardown(self, worker: Any) -> None:
        """The run is over here (unregistered, or the worker closes): its tasks stop, then its parts close.

        Runs on the worker's event loop, which the tasks' Dask calls need: the closing, which waits
        for them, goes to a thread of its own.
        """
        with _binding:
            spx = RUNS.pop(self.run_id, None)
        if spx is not None:
            threading.Thread(target=close_run, args=(spx,), name=f"spxdl-close-{self.run_id}", daemon=True).start()


def close_run(spx: Worker) -> None:
    """Wait for the run's tasks in this process to stop, close its parts, and stop sending its log records."""
    try:
        spx.close()
    finally:
        spx.link.unbind()


def own_terminal(settings: Settings) -> Settings:
    """The settings with this worker's own terminal: ``SPXDL_TERMINAL_URL`` in its environment, if set."""
    url = os.environ.get(TERMINAL_URL_VARIABLE, "").strip()
    if not url:
        return settings
    try:
        return settings.replace_from("env", terminal_url=check_terminal_url(url))
    except ConfigError as exc:
        raise ConfigError(f"{TERMINAL_URL_VARIABLE} on the Dask worker on {socket.gethostname()}: {exc}",
                          key="terminal_url") from None


def run_task(run_id: str, task: Task, min_dte: int, max_dte: int, force: bool) -> TaskResult:
    """Download one task of run ``run_id`` in this Dask worker (``Worker.run_task``, as a crew's process does).

    Raises ClusterMismatch when this worker cannot run the run (no plugin set it up, or the data
    dir is not the driver's); a task's own trouble is in its result.
    """
    worker = bound_worker(run_id)
    try:
        return worker.run_task(task, min_dte, max_dte, force, worker.fetchers.ticket())
    except Exception as exc:  # a bug: the driver still needs a result
        log.exception("%s failed unexpectedly", task.key)
        return TaskResult(task, ResultState.FAILED, error=f"unexpected error: {exc!r}")


def bound_worker(run_id: str) -> Worker:
    """This process's Worker for ``run_id``, its link bound and its watchdog started on the first call."""
    with _binding:
        worker = RUNS.get(run_id)
        if worker is None:
            raise ClusterMismatch(f"the Dask worker on {socket.gethostname()} was not set up for run {run_id} "
                                  "(its spxdl plugin did not run)", key="engine.executor")
        if not worker.link.bound:
            check_shared_ledger(worker, run_id)
            worker.link.bind()
            if worker.link.stop.is_set():  # a run stopped before this process's first task
                worker.stop.set()
            threading.Thread(target=worker.watch, name=f"spxdl-watchdog-{run_id}", daemon=True).start()
    return worker


def check_shared_ledger(worker: Worker, run_id: str) -> None:
    """Refuse to run where the driver's ledger is not: the run's record must be in this worker's view of it."""
    record = storage.run_record_path(worker.ledger.data_dir, run_id)
    if not record.exists():
        raise ClusterMismatch(
            f"the Dask worker on {socket.gethostname()} does not see this run's ledger at {worker.ledger.data_dir}: "
            "put the ledger (the data dir, or [storage] ledger_dir) on a path every worker shares (the same "
            "machine, or a shared POSIX mount at the same path)", key="storage.ledger_dir")
