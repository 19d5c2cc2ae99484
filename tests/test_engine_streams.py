"""Stop-aware pages: a stop lands within one read of a body, and every page is closed."""

from __future__ import annotations

import io
import threading

import pytest

from spxdl.engine.streams import Meter, stoppable
from spxdl.errors import Interrupted


class EndlessPage(io.RawIOBase):
    """A body that never ends, counting its reads, and whether it was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.reads += 1
        buffer[:4] = b"x,y\n"
        return 4


def stop_check(stop: threading.Event):
    def check() -> None:
        if stop.is_set():
            raise Interrupted("the run is stopping")
    return check


def test_a_stop_in_the_middle_of_a_page_ends_it_at_the_next_read():
    stop, page = threading.Event(), EndlessPage()
    stopping = next(stoppable(iter([page]), stop_check(stop)))
    assert stopping.read(4) == b"x,y\n" and stopping.read(4) == b"x,y\n"
    stop.set()
    with pytest.raises(Interrupted):
        stopping.read(4)
    assert page.reads == 2
    assert isinstance(stopping.error, Interrupted)  # kept for a reader (pyarrow) that wraps the error


def test_the_next_page_is_not_fetched_once_stopping_and_every_page_is_closed():
    stop, pages = threading.Event(), [EndlessPage(), EndlessPage()]
    asked: list[int] = []

    def fetch():
        for number, page in enumerate(pages):
            asked.append(number)
            yield page

    iterator = stoppable(fetch(), stop_check(stop))
    first = next(iterator)
    first.read(4)
    stop.set()
    with pytest.raises(Interrupted):
        next(iterator)
    assert asked == [0] and pages[0].closed and not pages[1].closed


def test_a_check_that_passes_reads_the_page_through():
    page = EndlessPage()
    stopping = next(stoppable(iter([page]), lambda: None))
    assert stopping.read(12) in (b"x,y\n", b"x,y\nx,y\nx,y\n")


def test_a_meter_counts_bytes_read_and_rows_parsed_and_reports_them_at_most_every_interval():
    now = [0.0]
    reports: list[tuple[int, int]] = []
    meter = Meter(lambda rows, count: reports.append((rows, count)), every=1.0, clock=lambda: now[0])
    pages = [io.BytesIO(b"a,b\n1,2\n3,4\n"), io.BytesIO(b"a,b\n5,6\n")]
    for page, rows in zip(stoppable(iter(pages), lambda: None, meter), (2, 1)):
        page.read(4)  # the header
        now[0] += 0.6
        page.read()
        meter.parsed(rows)  # what the converter tells of each page
    assert (meter.rows, meter.bytes) == (3, 20)
    assert reports == [(3, 20)]  # reported as rows are parsed, and not before a second had passed (at 1.2 s)

