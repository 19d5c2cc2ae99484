"""Where the data comes from: what the engine, ``health`` and ``doctor`` ask of a source.

Two sources stand behind this one interface: a ThetaData Terminal (or thetadatadx-server) over
HTTP (``terminal.TerminalClient``), and ThetaData's market-data service through the thetadatadx-py
SDK (``direct.DirectSource``). ``[terminal] source`` picks one; ``engine.shared.client_for`` builds
it. A history answer is an iterator of pages the converter reads: CSV bodies from a terminal, Arrow
tables (one per gRPC chunk) from the SDK; either way the same checks, Parquet writer, atomic
storage and ledger follow, and a day gives the same table.
"""

from __future__ import annotations

from datetime import date
from typing import Any, BinaryIO, Iterator, Protocol, Union

import pyarrow as pa

from spxdl.datasets import Dataset

TERMINAL, DIRECT = "terminal", "direct"
SOURCES = (TERMINAL, DIRECT)
SourcePage = Union[BinaryIO, pa.Table]


class Source(Protocol):
    """A client of one source, built per process; a context manager."""

    api: str  # "v2" or "v3" (a terminal, once connected) or "direct"
    base_url: str | None  # a terminal's URL; None for the direct source
    simulated: bool  # spxdl's simulator answered

    def connect(self) -> Any: ...

    def status(self) -> str: ...

    def expirations(self, root: str) -> list[date]: ...

    def history(self, dataset: Dataset, root: str, expiration: date | None, trade_date: date, *,
                interval: str = ..., start_ms: int = ..., end_ms: int = ..., rate: str | None = ...,
                rate_value: float | None = ..., annual_div: float | None = ..., strike: float | None = ...,
                right: str | None = ...) -> Iterator[SourcePage]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc_info: object) -> None: ...
