"""Pages that stop: every read of a body, and the fetch of each next page, first asks whether to go on.

A page is a terminal's CSV body or one of the SDK's Arrow chunks (the direct source): a chunk is
already in memory, so only its fetch asks.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from spxdl.errors import Interrupted, SpxdlError
from spxdl.sources import SourcePage


def stoppable(pages: Iterable[SourcePage], check: Callable[[], None]) -> Iterator[SourcePage]:
    """``pages`` whose reads, and the fetch of each next page, call ``check`` first (it raises Interrupted to stop).

    Every page is closed as soon as the next is asked for or the iteration ends, even by an
    error: a page holds an in-flight slot shared by all workers until it is read or closed.
    """
    iterator = iter(pages)
    try:
        while True:
            check()
            page = next(iterator, None)
            if page is None:
                return
            if not hasattr(page, "readinto"):
                yield page  # an Arrow chunk of the direct source
                continue
            with contextlib.closing(StoppablePage(page, check)) as stopping:
                yield stopping
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


class StoppablePage(io.RawIOBase):
    """A page whose every read first calls ``check`` (an expiration aborts within one read)."""

    def __init__(self, page: BinaryIO, check: Callable[[], None]) -> None:
        super().__init__()
        self._page = page
        self._check = check
        self._error: SpxdlError | None = None

    @property
    def error(self) -> SpxdlError | None:
        """The error that ended reading (convert re-raises it if pyarrow wrapped it)."""
        return self._error or getattr(self._page, "error", None)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            self._check()
        except Interrupted as exc:
            self._error = exc
            raise
        return self._page.readinto(buffer)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._page.close()
        super().close()
