"""Pages that stop: every read of a body, and the fetch of each next page, first asks whether to go on.

They also count what they carry (``Meter``): the bytes an expiration has received so far, and the
rows the converter has parsed of them, which the worker reports a few times a second so that the
progress display moves while a large expiration streams.

A page is a terminal's CSV body or one of the SDK's Arrow chunks (the direct source): a chunk is
already in memory, so only its fetch asks.
"""

from __future__ import annotations

import contextlib
import io
import time
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from spxdl.errors import Interrupted, SpxdlError
from spxdl.sources import SourcePage

METER_SECONDS = 0.25  # how often a Meter reports at most


class Meter:
    """Counts the bytes read and the rows parsed (``parsed``: the converter's, at each batch it
    reads); as rows are parsed, calls ``report(rows, bytes)`` at most every ``every`` seconds.

    Rows come from the converter rather than from counting the lines of every byte read: that
    count cost about a twentieth of a worker's CPU time (0.7 ms per MB), for the progress display alone.
    """

    def __init__(self, report: Callable[[int, int], None], every: float = METER_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.report = report
        self.every = every
        self.clock = clock
        self.rows = self.bytes = 0
        self.reported = clock()

    def read(self, nbytes: int) -> None:
        """Count ``nbytes`` just read from a page (or an Arrow chunk's size)."""
        self.bytes += nbytes

    def parsed(self, rows: int) -> None:
        """Count ``rows`` the converter has just parsed; report if it is time."""
        self.rows += rows
        now = self.clock()
        if now - self.reported >= self.every:
            self.reported = now
            self.report(self.rows, self.bytes)


def stoppable(
    pages: Iterable[SourcePage], check: Callable[[], None], meter: Meter | None = None
) -> Iterator[SourcePage]:
    """``pages`` whose reads, and the fetch of each next page, call ``check`` first (it raises Interrupted to stop).

    Every page is closed as soon as the next is asked for or the iteration ends, even by an
    error: a page holds an in-flight slot shared by all workers until it is read or closed.
    ``meter``, if given, counts every byte read.
    """
    iterator = iter(pages)
    try:
        while True:
            check()
            page = next(iterator, None)
            if page is None:
                return
            if not hasattr(page, "readinto"):
                if meter is not None:
                    meter.read(page.nbytes)
                yield page  # an Arrow chunk of the direct source
                continue
            with contextlib.closing(StoppablePage(page, check, meter)) as stopping:
                yield stopping
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


class StoppablePage(io.RawIOBase):
    """A page whose every read first calls ``check`` (an expiration aborts within one read)."""

    def __init__(self, page: BinaryIO, check: Callable[[], None], meter: Meter | None = None) -> None:
        super().__init__()
        self._page = page
        self._check = check
        self._meter = meter
        self._error: SpxdlError | None = None

    @property
    def error(self) -> SpxdlError | None:
        """The error that ended reading (convert re-raises it if pyarrow wrapped it)."""
        return self._error or getattr(self._page, "error", None)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._checked()
        count = self._page.readinto(buffer)
        if self._meter is not None and count:
            self._meter.read(count)
        return count

    def read(self, size: int = -1) -> bytes:
        self._checked()
        data = self._page.read(size)
        if self._meter is not None and data:
            self._meter.read(len(data))
        return data

    def _checked(self) -> None:
        try:
            self._check()
        except Interrupted as exc:
            self._error = exc
            raise

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._page.close()
        super().close()
