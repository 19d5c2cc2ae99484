"""The ledger lock: ``fcntl.flock`` on one lock file, plus a ``threading.Lock`` per lock file in each process.

Shaped like tox-dev/filelock's ``FileLock``: an object made from a path, a timeout and a poll
interval, used as a context manager (or through ``acquire``/``release``), re-entrant within a
thread, raising on timeout (here ``LedgerBusy``, a ``TimeoutError``). Two things filelock leaves
to its user are built in, because flock alone does not exclude them:

- The lock file is opened anew for each acquisition and closed at release. A descriptor shared
  across ``fork`` or between threads is one open file description, and flock does not exclude
  its own description: sharing one would let a child or a thread walk straight in.
- Threads of one process are kept apart by a ``threading.Lock`` per lock file (keyed by its real
  path, so every ``LedgerLock`` of one data dir shares it). A forked child forgets them: it
  inherits the locks but not the threads holding them, so it starts afresh and waits for the
  file lock like any other process; it never unlocks a descriptor it inherited.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spxdl.errors import LedgerBusy

LOCK_POLL_FIRST = 0.0005  # seconds; lock holders keep it for about one fsync, so start small
LOCK_POLL_MAX = 0.02


@dataclass
class _Hold:
    """One thread's hold on one lock file."""

    key: str  # the lock file's real path
    fd: int  # the descriptor holding the flock
    pid: int  # the process that took the flock
    thread_lock: threading.Lock
    depth: int = 0  # how many acquisitions of the thread it stands for


class _ProcessLocks:
    """This process's side of the ledger locks: one threading.Lock per lock file, each thread's holds."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._local = threading.local()

    def thread_lock(self, key: str) -> threading.Lock:
        """The threading.Lock of the lock file ``key``."""
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def holds(self) -> dict[str, _Hold]:
        """The calling thread's holds, by lock file."""
        if not hasattr(self._local, "holds"):
            self._local.holds = {}
        return self._local.holds


_PROCESS_LOCKS = _ProcessLocks()


def _forget_locks_after_fork() -> None:
    global _PROCESS_LOCKS
    _PROCESS_LOCKS = _ProcessLocks()


os.register_at_fork(after_in_child=_forget_locks_after_fork)


class LedgerLock:
    """The exclusive lock of one lock file, for the threads and processes of this host.

    ``timeout`` is how long ``acquire`` waits (0: one try); waiting polls a non-blocking flock
    with pauses that start at 0.5 ms and double up to ``poll_interval``. Re-entrant within a
    thread, also across ``LedgerLock`` objects of the same file. Pickles (without its state).
    """

    def __init__(self, path: Path | str, timeout: float = 60.0, poll_interval: float = LOCK_POLL_MAX) -> None:
        if timeout < 0 or poll_interval <= 0:
            raise ValueError("timeout must be >= 0 and poll_interval > 0")
        self.path = Path(path)
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._entered = threading.local()  # the holds acquired through this object, per thread

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "timeout": self.timeout, "poll_interval": self.poll_interval}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"LedgerLock({str(self.path)!r}, timeout={self.timeout:g}, poll_interval={self.poll_interval:g})"

    @property
    def is_locked(self) -> bool:
        """Whether the calling thread holds this lock file's lock (through any ``LedgerLock``)."""
        return os.path.realpath(self.path) in _PROCESS_LOCKS.holds()

    def acquire(self) -> None:
        """Take the lock; at once if this thread holds it already. LedgerBusy after ``timeout`` seconds."""
        key = os.path.realpath(self.path)
        holds = _PROCESS_LOCKS.holds()
        hold = holds.get(key)
        if hold is None:
            hold = holds[key] = self._take(key)
        hold.depth += 1
        self._stack().append(hold)

    def release(self) -> None:
        """Undo this object's latest ``acquire`` in this thread; the thread's last one unlocks the file."""
        stack = self._stack()
        if not stack:
            raise RuntimeError(f"{self.path} is not locked through this LedgerLock in this thread")
        hold = stack.pop()
        hold.depth -= 1
        if hold.depth > 0:
            return
        holds = _PROCESS_LOCKS.holds()
        if holds.get(hold.key) is hold:  # not so in a child forked while the lock was held
            del holds[hold.key]
        if os.getpid() == hold.pid:  # a forked child must not unlock the parent's shared description
            fcntl.flock(hold.fd, fcntl.LOCK_UN)
        os.close(hold.fd)
        hold.thread_lock.release()

    def __enter__(self) -> LedgerLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def _stack(self) -> list[_Hold]:
        if not hasattr(self._entered, "stack"):
            self._entered.stack = []
        return self._entered.stack

    def _take(self, key: str) -> _Hold:
        """Take the threading.Lock of ``key``, then the flock on a fresh descriptor."""
        deadline = time.monotonic() + self.timeout
        thread_lock = _PROCESS_LOCKS.thread_lock(key)
        if not thread_lock.acquire(timeout=self.timeout):
            raise self._busy()
        try:
            return _Hold(key, self._flock_until(deadline), os.getpid(), thread_lock)
        except BaseException:
            thread_lock.release()
            raise

    def _flock_until(self, deadline: float) -> int:
        """Open the lock file anew and poll a non-blocking flock until it succeeds or time is up."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        pause = min(LOCK_POLL_FIRST, self.poll_interval)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise self._busy() from None
                    time.sleep(pause)
                    pause = min(pause * 2, self.poll_interval)
        except BaseException:
            os.close(fd)
            raise

    def _busy(self) -> LedgerBusy:
        return LedgerBusy(
            f"could not lock the ledger ({self.path}) within {self.timeout:g} s; "
            "another spxdl run may be using this data dir: wait for it to finish, or raise the lock timeout"
        )
