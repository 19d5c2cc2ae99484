"""What crosses between a run's driver and its workers, whichever executor runs them.

A worker (``worker.Worker``) runs the same task code in a process of this machine's crew and in
a Dask worker; only its ``Link`` differs. Through it, the run's stop flag, the terminal's
in-flight cap, and the progress events and log records the driver shows:

- ``stop``: ``set()`` by a worker whose task met a run stopper (every worker stops), ``is_set()``
  watched by each worker's watchdog; the driver sets it on a signal;
- ``in_flight``: ``acquire()`` before a request is sent, ``release()`` once its body is read,
  shared by every worker that talks to the same terminal;
- ``events``: ``put(item)`` sends an ``Event`` or a ``logging.LogRecord`` to the driver, which
  delivers them in order from one thread;
- ``abandoned()``: whether the driver that started this worker is gone (the worker then lets
  its tasks abort and exits);
- ``run``: the run this worker's claims are made for, where one process works for several runs
  at once (a Dask worker); None where a process serves one run (a crew's).

``ProcessLink`` is the crew's: a ``multiprocessing`` ``BoundedSemaphore``, the ``SharedFlag``
byte and a ``multiprocessing`` queue, made by the parent (``processes.Crew``). The Dask one is
``dask_worker.DaskLink``.
"""

from __future__ import annotations

import logging
import logging.handlers
from dataclasses import dataclass
from typing import Any, Protocol

from spxdl import procs
from spxdl.engine.shared import SharedFlag


class Flag(Protocol):
    """A run-wide flag: set once, seen by everyone."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...


class Slots(Protocol):
    """A counting semaphore: the requests in flight to one terminal."""

    def acquire(self) -> Any: ...

    def release(self) -> Any: ...


class Sink(Protocol):
    """Where a worker's events and log records go (to the driver)."""

    def put(self, item: Any) -> None: ...


class Link(Protocol):
    """What a worker shares with its driver and the other workers of its run."""

    stop: Flag
    in_flight: Slots | None
    events: Sink
    run: str | None
    run_pid: int | None  # the run's process on this host (named in claims), or None: not on this host

    def abandoned(self) -> bool: ...


class Switch:
    """A flag of one process without a lock (a signal handler may set it): a Dask run's driver's."""

    def __init__(self) -> None:
        self._on = False

    def set(self) -> None:
        self._on = True

    def is_set(self) -> bool:
        return self._on


@dataclass
class ProcessLink:
    """The crew's link: what the parent made with ``multiprocessing`` and handed to every worker process."""

    stop: SharedFlag
    in_flight: Any  # multiprocessing.BoundedSemaphore (or None: no cap)
    events: Any  # multiprocessing.Queue
    parent_pid: int
    run: str | None = None  # a crew's process serves one run: its claims are its pid's

    @property
    def run_pid(self) -> int:
        """The run's process: the one that started this worker (its claims name it)."""
        return self.parent_pid

    def abandoned(self) -> bool:
        """The process that started this one (``parent_pid``) is gone: this one works for nobody.

        Asked by pid, not by ``os.getppid()``: a worker forked by multiprocessing's fork server is
        that server's child, not the run's.
        """
        return not procs.pid_alive(self.parent_pid)


class SinkHandler(logging.handlers.QueueHandler):
    """Log records, made picklable (message formatted, arguments and traceback object dropped), into a ``Sink``."""

    def enqueue(self, record: logging.LogRecord) -> None:
        self.queue.put(record)


def send_logs_to(sink: Sink, level: int) -> logging.Handler:
    """Send this process's ``spxdl`` log records at ``level`` and above to ``sink`` only; the handler."""
    logger = logging.getLogger("spxdl")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = SinkHandler(sink)  # type: ignore[arg-type]  # put() is all it uses
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return handler
