"""A worker process's fetch threads, shared by every task it runs, and the turns its tasks take.

Runs in a worker process only. A worker runs several tasks at once (``worker.serve``), but their
expirations all go to one pool of fetch threads, first come first served. At most ``threads`` of
them download and convert at once (``converting``), so the process's memory stays bounded; one
more thread finishes the file just written meanwhile (fsync, footer check, rename, ledger record)
or gets the next expiration ready, so that the request slots this process holds never wait on
the disk or the ledger lock.

Tasks take turns, in the order they were given (``ticket``): the next task claims and queues
its expirations only once every expiration queued before has started, that is while the previous
task's last expirations are still being fetched. Its work then fills each thread the moment that
thread finishes, and a task claimed early never sits idle holding its claim.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import itertools
import threading
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")

WAIT_SECONDS = 0.2  # how often a task waiting for its turn looks at the stop


class Fetchers:
    """``threads`` fetch threads shared by the tasks of one process, and the turns those tasks take."""

    def __init__(self, threads: int, stopping: Callable[[], bool]) -> None:
        self._pool = cf.ThreadPoolExecutor(max_workers=threads + 1, thread_name_prefix="spxdl-fetch")
        self._converting = threading.BoundedSemaphore(threads)
        self._stopping = stopping
        self._room = threading.Condition()
        self._queued = 0  # fetches submitted and not yet started
        self._tickets = itertools.count()
        self._serving = 0  # the ticket whose turn is next

    def ticket(self) -> int:
        """A place in the order of turns: take one for each task in the order the tasks came."""
        return next(self._tickets)

    @contextlib.contextmanager
    def turn(self, ticket: int) -> Iterator[None]:
        """The turn of the task holding ``ticket``: entered once every earlier ticket's turn is over
        and every fetch queued before has started (at once when the run stops).

        Claim the task and ``submit`` its expirations inside it; the next task's turn begins when
        those have all started.
        """
        with self._room:
            while (self._serving != ticket or self._queued) and not self._stopping():
                self._room.wait(WAIT_SECONDS)
        try:
            yield
        finally:
            with self._room:
                self._serving = max(self._serving, ticket + 1)
                self._room.notify_all()

    @contextlib.contextmanager
    def converting(self) -> Iterator[None]:
        """One of the ``threads`` places to download and convert in: hold it from the request to
        the file's footer, not while the file is synced, checked and recorded."""
        with self._converting:
            yield

    def submit(self, fetch: Callable[[T], object], items: list[T]) -> list[cf.Future]:
        """Queue ``fetch(item)`` for each item, after everything queued before; their futures."""
        with self._room:
            self._queued += len(items)
        return [self._pool.submit(self._started, fetch, item) for item in items]

    def _started(self, fetch: Callable[[T], object], item: T) -> object:
        with self._room:
            self._queued -= 1
            if not self._queued:
                self._room.notify_all()
        return fetch(item)

    def shutdown(self) -> None:
        """Wait for every queued fetch, then end the threads."""
        self._pool.shutdown(wait=True)
