"""Pages that stop: every read of a body, and the fetch of each next page, first checks the run's stop."""

from __future__ import annotations

import contextlib
import io
import threading
from typing import Any, BinaryIO, Iterable, Iterator

from spxdl.errors import Interrupted, SpxdlError


def stoppable(pages: Iterable[BinaryIO], stop: threading.Event) -> Iterator[BinaryIO]:
    """``pages`` whose reads, and the fetch of each next page, raise Interrupted once stopping.

    Every page is closed as soon as the next is asked for or the iteration ends, even by an
    error: a page holds an in-flight slot shared by all workers until it is read or closed.
    """
    iterator = iter(pages)
    try:
        while True:
            if stop.is_set():
                raise Interrupted("the run is stopping")
            page = next(iterator, None)
            if page is None:
                return
            with contextlib.closing(StoppablePage(page, stop)) as stoppable:
                yield stoppable
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


class StoppablePage(io.RawIOBase):
    """A page whose every read first checks the stop (an expiration aborts within one read)."""

    def __init__(self, page: BinaryIO, stop: threading.Event) -> None:
        super().__init__()
        self._page = page
        self._stop = stop
        self._error: SpxdlError | None = None

    @property
    def error(self) -> SpxdlError | None:
        """The error that ended reading (convert re-raises it if pyarrow wrapped it)."""
        return self._error or getattr(self._page, "error", None)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._stop.is_set():
            self._error = Interrupted("the run is stopping")
            raise self._error
        return self._page.readinto(buffer)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._page.close()
        super().close()
