"""A worker process's fetch threads, shared by every task it runs, and the turns its tasks take.

Runs in a worker process only. A worker runs several tasks at once (``worker.serve``), but their
expirations all go to one pool of ``threads`` fetch threads, first come first served, so that the
process never converts more than ``threads`` chains at once (its memory stays bounded). Tasks take
turns: the next task claims and queues its expirations only once every expiration queued before
has started, that is while the previous task's last expirations are still being fetched. Its work
then fills each thread the moment that thread finishes, and a task claimed early never sits idle
holding its claim.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import threading
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")

WAIT_SECONDS = 0.2  # how often a task waiting for its turn looks at the stop


class Fetchers:
    """``threads`` fetch threads shared by the tasks of one process, and the turns those tasks take."""

    def __init__(self, threads: int, stopping: Callable[[], bool]) -> None:
        self._pool = cf.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="spxdl-fetch")
        self._stopping = stopping
        self._turn = threading.Lock()  # held by the task whose turn it is, until it has queued its work
        self._room = threading.Condition()
        self._queued = 0  # fetches submitted and not yet started

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """The calling task's turn: entered once every fetch queued before has started (or on a stop).

        Claim the task and ``submit`` its expirations inside it; the next task's turn begins when
        those have all started.
        """
        with self._turn:
            with self._room:
                while self._queued and not self._stopping():
                    self._room.wait(WAIT_SECONDS)
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
