"""Wire columns -> output columns: units, rights and New York instants, per API version (and the SDK's).

Whole Arrow arrays at a time (``pyarrow.compute``), never a Python loop over rows. Each normalizer
also leaves a ``date`` column (the row's own date) for the checks.
"""

from __future__ import annotations

from typing import Callable, Mapping

import pyarrow as pa
import pyarrow.compute as pc

from spxdl.datasets import Dataset
from spxdl.instants import TradeDay, instants, wall_ms_of_day
from spxdl.trading_calendar import DAY_MS

# Arrow scalars made once: turning a Python number into one costs pyarrow a failed import each time.
STRIKE_UNITS = pa.scalar(1000.0)
DAY_MS_SCALAR = pa.scalar(DAY_MS, pa.int64())
CALL, PUT, C, P = (pa.scalar(text) for text in ("CALL", "PUT", "C", "P"))

Normalizer = Callable[[dict[str, pa.Array], Dataset, TradeDay], dict[str, pa.Array]]


def yyyymmdd_to_date(values: pa.Array) -> pa.Array:
    """Integers YYYYMMDD -> date32; an impossible date becomes null.

    Parsed once per distinct value: a chain has one expiration and one date.
    """
    encoded = values.dictionary_encode()
    text = pc.cast(encoded.dictionary, pa.string())
    parsed = pc.strptime(text, format="%Y%m%d", unit="s", error_is_null=True)
    return pc.take(pc.cast(parsed, pa.date32()), encoded.indices)


def short_right(right: pa.Array) -> pa.Array:
    """CALL/PUT -> C/P strings; other values are kept so that the right check flags them.

    A dictionary (v3's CSV reader parses the column into one; gathering unifies the batches'
    dictionaries) has only its few values compared.
    """
    if isinstance(right, pa.DictionaryArray):
        return pc.take(short_right(right.dictionary), right.indices)
    return pc.if_else(pc.equal(right, CALL), C, pc.if_else(pc.equal(right, PUT), P, right))


def normalize_v2(columns: dict[str, pa.Array], dataset: Dataset, day: TradeDay) -> dict[str, pa.Array]:
    """v2 sends ms of day only: instants are the trade date's, both times alike."""
    if "expiration" in columns:
        columns["expiration"] = yyyymmdd_to_date(columns["expiration"])
        columns["strike"] = pc.divide(pc.cast(columns["strike"], pa.float64()), STRIKE_UNITS)
    columns["date"] = yyyymmdd_to_date(columns["date"])
    columns["timestamp"] = instants(columns["ms_of_day"], day.midnight_ms)
    if dataset.second_time:
        columns[dataset.second_time] = instants(columns["ms_of_day2"], day.midnight_ms)
    return columns


def normalize_v3(columns: dict[str, pa.Array], dataset: Dataset, day: TradeDay) -> dict[str, pa.Array]:
    """v3 sends CALL/PUT and full wall-clock timestamps: each keeps its own date."""
    if "right" in columns:
        columns["right"] = short_right(columns["right"])
    wall_clock = columns["ms_of_day"]
    columns["date"] = pc.cast(wall_clock, pa.date32())
    columns["ms_of_day"] = wall_ms_of_day(wall_clock)
    columns["timestamp"] = day.zoned(wall_clock, columns["ms_of_day"], columns["date"])
    if "ms_of_day2" in columns:
        second = columns["ms_of_day2"]
        columns["ms_of_day2"] = wall_ms_of_day(second)
        if dataset.second_time:
            columns[dataset.second_time] = day.zoned(second, columns["ms_of_day2"], pc.cast(second, pa.date32()))
    return columns


def wall_clock(dates: pa.Array, ms_of_day: pa.Array) -> pa.Array:
    """Naive New York wall-clock timestamps of date32 ``dates`` at ``ms_of_day``."""
    days = pc.cast(pc.cast(dates, pa.int32()), pa.int64())
    epoch_ms = pc.add(pc.multiply(days, DAY_MS_SCALAR), pc.cast(ms_of_day, pa.int64()))
    return pc.cast(epoch_ms, pa.timestamp("ms"))


def normalize_direct(columns: dict[str, pa.Array], dataset: Dataset, day: TradeDay) -> dict[str, pa.Array]:
    """The SDK sends each time as ms of day beside its date (YYYYMMDD): the instant of that date in New York.

    The underlying's time has its own date (``underlying_date``) when the SDK sends one, else the row's.
    """
    if "expiration" in columns:
        columns["expiration"] = yyyymmdd_to_date(columns["expiration"])
        columns["right"] = short_right(columns["right"])
    columns["date"] = yyyymmdd_to_date(columns["date"])
    ms = columns["ms_of_day"]
    columns["timestamp"] = day.zoned(wall_clock(columns["date"], ms), ms, columns["date"])
    second_date = columns.pop("underlying_date", None)
    second_date = columns["date"] if second_date is None else yyyymmdd_to_date(second_date)
    if dataset.second_time and "ms_of_day2" in columns:
        second = columns["ms_of_day2"]
        columns[dataset.second_time] = day.zoned(wall_clock(second_date, second), second, second_date)
    return columns


NORMALIZERS: Mapping[str, Normalizer] = {
    "v2": normalize_v2,
    "v3": normalize_v3,
    "direct": normalize_direct,
}
