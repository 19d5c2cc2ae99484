"""What one conversion is asked for (``ConvertSpec``) and what it reports (``ConvertResult``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Mapping

import pyarrow as pa

from spxdl import checks
from spxdl.datasets import Dataset
from spxdl.errors import ConfigError

VALIDATION_MODES = ("flag", "drop", "fail")
# pyarrow's streaming CSV reader reads a few dozen blocks ahead of the parser. 512 KiB blocks keep
# a worker converting chains of 4x the usual strikes near 250 MB peak (1 MiB: about 280 MB;
# bench/worker_memory.py), at the price of a slower parse (bench/convert_rate.py).
BLOCK_SIZE = 1 << 19


@dataclass(frozen=True)
class ConvertSpec:
    """What one file holds and how to convert and check it.

    ``expiration`` is the one expiration the rows must carry; None for an index (no expiration)
    and for a day of every expiration before it is split (``split.py``).
    """

    dataset: Dataset
    api: str
    root: str
    expiration: date | None
    trade_date: date
    start_ms: int
    end_ms: int
    interval_ms: int | None
    validation: str = "flag"
    row_group_rows: int = 131_072
    compression: str = "zstd"
    compression_level: int | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    block_size: int = BLOCK_SIZE
    early_close_ms: int | None = None  # the session's early close (ms of day) when the trade date has one

    def __post_init__(self) -> None:
        if self.validation not in VALIDATION_MODES:
            raise ConfigError(
                f"unknown validation mode {self.validation!r}: use flag, drop or fail", key="validation"
            )
        if self.row_group_rows < 1:
            raise ConfigError("row_group_rows must be at least 1", key="row_group_rows")
        if self.dataset.columns(self.api) is None:
            raise ConfigError(f"dataset {self.dataset.name} has no {self.api} endpoint", key="api")

    def expected(self) -> checks.Expected:
        """The spec's values as Arrow scalars, for comparisons against whole columns."""
        return checks.Expected(
            expiration=None if self.expiration is None else pa.scalar(self.expiration, pa.date32()),
            trade_date=pa.scalar(self.trade_date, pa.date32()),
            start_ms=pa.scalar(self.start_ms, pa.int32()),
            end_ms=pa.scalar(self.end_ms, pa.int32()),
        )

    @property
    def expected_rows_per_contract(self) -> tuple[int, int] | None:
        """(fewest, most) rows a contract (an index: the file) may have; None when the dataset has no interval.

        Both are the intervals of the window, ends included. On an early-close day a contract may
        stop at the early close or run to the window's end (a terminal may serve either).
        """
        if not self.dataset.uses_interval or not self.interval_ms:
            return None
        most = max(0, (self.end_ms - self.start_ms) // self.interval_ms + 1)
        if self.early_close_ms is None or self.early_close_ms >= self.end_ms:
            return most, most
        return max(0, (self.early_close_ms - self.start_ms) // self.interval_ms + 1), most


@dataclass
class ConvertResult:
    """What one conversion wrote and what its checks flagged (check name -> rows or contracts)."""

    rows: int
    row_groups: int
    pages: int
    dropped: int
    checks: dict[str, int]
    max_buffered_rows: int = 0  # the most rows held for a row group at once (bounded by row_group_rows)
    extra_columns: tuple[str, ...] = ()  # columns the terminal sent beyond the pinned ones (not stored)
