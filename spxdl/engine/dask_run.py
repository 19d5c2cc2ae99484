"""A run's driver with its tasks on a Dask cluster (``--executor dask://HOST:PORT``).

The driver connects a ``distributed.Client`` to ``tcp://HOST:PORT`` before it looks for the
terminal (a scheduler that does not answer: ``ClusterUnavailable``, exit 75), checks that the
workers run this client's spxdl, Python, Dask and pyarrow (``ClusterMismatch``, exit 2), and waits
for a worker. Once the run is recorded it registers the run's plugin (``dask_worker.RunPlugin``:
every worker process sets up the run's ``Worker``), subscribes to the run's topic (events and log
records, into the same drain a crew's queue feeds), and hands the tasks to the cluster through
``client.get_executor(pure=False)``: a ``concurrent.futures`` executor, one future per task. Each
future is dropped once its result is taken: a worker that dies later costs nothing already done.

As many tasks are handed out as the cluster has threads, plus one per worker, so that a thread
that finishes a task starts the next at once, and a stop leaves the rest not started. A stop
(a signal, or a run stopper in a result) sets the run's ``distributed.Event``; the tasks not yet
started then end at once as not started. A worker killed mid-task: Dask runs that task again on
another worker, which takes the dead process's claim over (on this host at once; from another
host once its heartbeat is ``stale_after`` old) and skips what was committed; a task whose
workers died ``distributed.scheduler.allowed-failures`` + 1 times fails.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import logging
import pickle
import queue
import threading
import time
from collections import deque
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from spxdl.config import Settings
from spxdl.engine.driving import DRAINED, POLL_SECONDS, Driver, worker_log_level
from spxdl.engine.links import Switch
from spxdl.engine.records import Event, Plan, ResultState, RunSummary, TaskResult
from spxdl.errors import ClusterMismatch, ClusterUnavailable, ConfigError, SpxdlError
from spxdl.ledger import Task

log = logging.getLogger(__name__)

INSTALL = "pip install 'spxdl[dask]'"
CAPACITY_SECONDS = 2.0  # how often the driver asks the scheduler how many threads its workers have
DRAIN_GRACE_SECONDS = 0.25  # events a worker sent just before its last result may still be on the way
# What must match between this client and every worker (Python by its minor version), and the scheduler.
WORKER_PACKAGES = ("python", "spxdl", "pyarrow", "dask", "distributed", "cloudpickle", "msgpack")
SCHEDULER_PACKAGES = ("python", "dask", "distributed")


def import_distributed() -> Any:
    """``distributed``, or ConfigError saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise ConfigError(f"--executor dask://... runs the tasks on a Dask cluster, which needs Dask here and on "
                          f"every worker: {INSTALL}", key="engine.executor") from None
    # The driver says itself, in one line, when the scheduler goes away: not the client's traceback too.
    logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
    return distributed


def scheduler_address(executor: str) -> str:
    """``dask://HOST:PORT`` as the address a Client connects to: ``tcp://HOST:PORT``."""
    return "tcp://" + executor.split("://", 1)[1]


class DaskRun(Driver):
    """One run's driver with its tasks on the Dask cluster of ``settings.executor``."""

    def __init__(
        self, plan: Plan, settings: Settings, on_event: Callable[[Event], None] | None, summary: RunSummary,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(plan, settings, on_event, summary, on_tick, Switch())
        self.address = scheduler_address(settings.executor)
        self.client: Any = None
        self.submitted = 0
        self.capacity = (0, -CAPACITY_SECONDS)  # (threads + workers, when asked)

    @contextlib.contextmanager
    def workers_starting(self) -> Iterator[None]:
        """Connected to the scheduler, the workers' versions checked, a worker there; closed at the end."""
        refuse_what_dask_cannot_run(self.settings)
        distributed = import_distributed()
        self.client = connect(distributed, self.address, self.settings.connect_timeout)
        try:
            check_versions(self.client.get_versions(packages=["spxdl", "pyarrow"]))
            try:
                self.client.wait_for_workers(1, timeout=self.settings.connect_timeout)
            except TimeoutError:
                raise ClusterUnavailable(f"the Dask scheduler at {self.address} has no worker; start some with: "
                                         f"dask worker {self.address}") from None
            yield
        finally:
            self.client.close()

    def execute(self, run_id: str, listed: dict[str, list[date]]) -> None:
        """Run every task (or until stopped) on the cluster's workers."""
        from distributed import Event as DaskEvent

        from spxdl.engine import dask_worker

        client = self.client
        plugin = dask_worker.RunPlugin(run_id, for_workers(self.settings), listed, worker_log_level())
        events: queue.Queue = queue.Queue()
        topic = dask_worker.events_topic(run_id)
        client.subscribe_topic(topic, lambda event: events.put(pickle.loads(event[1]["pickled"])))
        stop = DaskEvent(dask_worker.stop_name(run_id), client=client)
        todo = deque(self.plan.tasks)
        try:
            client.register_plugin(plugin)
            executor = client.get_executor(pure=False)
            with self.signals_handled(), self._drained(events):
                self._feed(executor, run_id, todo, stop)
        finally:
            self._tidy(plugin.name, topic, stop)
        self.summary.not_started = tuple(todo)
        self.summary.interrupted = self.signal_number

    def _tidy(self, plugin: str, topic: str, stop: Any) -> None:
        """The run's plugin unregistered (each worker closes its part), its topic and Event dropped."""
        for step in (lambda: self.client.unregister_worker_plugin(plugin), lambda: self.client.unsubscribe_topic(topic),
                     stop.clear):
            try:
                step()
            except Exception as exc:  # the scheduler is gone: nothing of this run is left there either
                log.debug("could not tidy the run's parts on the Dask cluster: %r", exc)

    @contextlib.contextmanager
    def _drained(self, events: queue.Queue) -> Iterator[None]:
        """A thread delivering the run's events while the block runs, until the last one came."""
        drained = threading.Event()
        drainer = threading.Thread(target=self.drain, args=(events, drained), name="spxdl-events", daemon=True)
        drainer.start()
        try:
            yield
        finally:
            time.sleep(DRAIN_GRACE_SECONDS)
            events.put(DRAINED)
            drained.set()
            drainer.join()

    def _feed(self, executor: cf.Executor, run_id: str, todo: deque[Task], stop: Any) -> None:
        """Keep the cluster's threads busy until done or stopped; tell the workers of a stop."""
        running: dict[cf.Future, Task] = {}
        told = False
        while True:
            if self.stopping() and not told:
                told = True
                tell_stop(stop)
            if not self.stopping():
                self._hand_out(executor, run_id, todo, running)
            if not running and (not todo or self.stopping()):
                return
            done, _ = cf.wait(running, timeout=POLL_SECONDS, return_when=cf.FIRST_COMPLETED)
            for future in done:
                self._answered(future, running.pop(future), todo)
            del done  # a finished future let go at once: a worker dying later recomputes nothing
            if running and self.stop_overdue():
                for future, task in running.items():
                    future.cancel()
                    self.collect(self.lost(task, "its Dask worker did not stop in time"))
                running.clear()
                return

    def _hand_out(self, executor: cf.Executor, run_id: str, todo: deque[Task], running: dict[cf.Future, Task]) -> None:
        """Hand tasks to the cluster up to its threads, plus one per worker."""
        from spxdl.engine import dask_worker

        capacity = self._capacity()
        while todo and len(running) < capacity:
            task = todo.popleft()
            self.submitted += 1
            key = f"spxdl-{task.key}-{run_id}-{self.submitted}"  # named on the dashboard; unique: not deduplicated
            running[executor.submit(dask_worker.run_task, run_id, task, *self.task_args, key=key)] = task

    def _capacity(self) -> int:
        """Tasks the cluster can hold at once: its threads, plus one waiting per worker (asked every few seconds)."""
        count, asked = self.capacity
        if time.monotonic() - asked >= CAPACITY_SECONDS:
            with contextlib.suppress(Exception):  # the scheduler away: keep the last count
                threads = self.client.nthreads()
                count = sum(threads.values()) + len(threads)
            self.capacity = (max(count, 1), time.monotonic())
        return self.capacity[0]

    def _answered(self, future: cf.Future, task: Task, todo: deque[Task]) -> None:
        """A task's future is done: its result, a task its workers died running, or a worker that cannot run it."""
        from distributed.core import Status
        from distributed.scheduler import KilledWorker

        try:
            result: TaskResult = future.result()
        except KilledWorker as exc:
            log.warning("%s: %s", task.key, exc)
            self.collect(self.lost(task, "its Dask workers died while running it"))
        except SpxdlError as exc:  # a worker that cannot run the run (versions, data dir): no task can
            self.stopped_by(exc)
            self.requeue(todo, [task])
        except Exception as exc:  # the scheduler went away (and its tasks with it), or a bug
            if isinstance(exc, cf.CancelledError) or self.client.status != Status.running.name:
                self.stopped_by(ClusterUnavailable(f"the Dask scheduler at {self.address} went away mid-run; once it "
                                                   "is back, run again (or spxdl resume) to finish"))
                self.requeue(todo, [task])  # a worker may still finish it: its claim says so
            else:
                self.collect(self.lost(task, f"its Dask task failed: {exc!r}"))
        else:
            started = not (result.state == ResultState.INTERRUPTED and not result.seconds)
            self.take(result, started, todo)


def tell_stop(stop: Any) -> None:
    """Set the run's Event: every worker stops (unless the scheduler is gone, and the workers' tasks with it)."""
    try:
        stop.set()
    except Exception as exc:
        log.debug("could not tell the Dask workers to stop: %r", exc)


def refuse_what_dask_cannot_run(settings: Settings) -> None:
    """One line for what only this machine's processes do: the direct source, and --capture."""
    from spxdl.sources import DIRECT

    if settings.source == DIRECT:
        raise ConfigError("the direct source (thetadatadx SDK) runs with --executor process only; on a Dask cluster "
                          "each worker talks to its own terminal ([terminal] source = terminal)", key="engine.executor")
    if settings.capture_dir is not None:
        raise ConfigError("--capture runs with --executor process only", key="engine.executor")


def connect(distributed: Any, address: str, timeout: float) -> Any:
    """A Client of the scheduler at ``address``; ClusterUnavailable when it does not answer within ``timeout``."""
    try:
        return distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterUnavailable(f"no Dask scheduler answers at {address} ({exc}); start it (dask scheduler) and its "
                                 f"workers (dask worker {address}), or run with --executor process") from None


def check_versions(versions: Mapping[str, Any]) -> None:
    """ClusterMismatch naming the first packages whose versions differ between this client, the
    scheduler and the workers (``Client.get_versions``); Python by its minor version."""
    mine = (versions.get("client") or {}).get("packages") or {}
    differences = []
    places = [("the scheduler", versions.get("scheduler"), SCHEDULER_PACKAGES)]
    places += [(address, info, WORKER_PACKAGES) for address, info in sorted((versions.get("workers") or {}).items())]
    for place, info, packages in places:
        theirs = (info or {}).get("packages") or {} if isinstance(info, dict) else {}
        for package in packages:
            here, there = _version(package, mine.get(package)), _version(package, theirs.get(package))
            if here != there:
                differences.append(f"{package} {there or 'missing'} on {place} ({here or 'missing'} here)")
    if differences:
        shown = "; ".join(differences[:3]) + (f"; and {len(differences) - 3} more" if len(differences) > 3 else "")
        raise ClusterMismatch(f"the Dask cluster runs other versions than this client: {shown}; install the same "
                              f"spxdl, Python, Dask and pyarrow everywhere ({INSTALL})", key="engine.executor")


def _version(package: str, value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return ".".join(text.split(".")[:2]) if package == "python" else text


def for_workers(settings: Settings) -> Settings:
    """The settings a worker elsewhere reads alike: every path absolute (a worker's working dir is not ours)."""
    paths = {field.name: Path(getattr(settings, field.name)).absolute() for field in dataclasses.fields(settings)
             if isinstance(getattr(settings, field.name), Path) and not Path(getattr(settings, field.name)).is_absolute()}
    return dataclasses.replace(settings, **paths) if paths else settings
