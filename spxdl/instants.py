"""Instants in New York: wall-clock times of a trade date as zoned timestamps, right across daylight saving.

The instant of a wall-clock ``ms_of_day`` on a trade date is that date's New York midnight plus the
ms; the UTC offset is taken once per trade date at noon (clocks change at 02:00, so every session
hour of a change day has the noon offset). No per-row time-zone work is needed unless a row
carries another date than the trade date (v3 sends full timestamps): then
``pyarrow.compute.assume_timezone`` gives each row the instant of its own date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from spxdl.datasets import NY_TZ
from spxdl.trading_calendar import DAY_MS, TradingCalendar

EPOCH = date(1970, 1, 1)
SESSION_NOON = time(12)
TIMESTAMP_TYPE = pa.timestamp("ms", tz=NY_TZ)


def session_utc_offset_ms(trade_date: date) -> int:
    """New York's UTC offset in ms during the session of ``trade_date`` (negative: behind UTC).

    Taken at noon: DST switches at 02:00, so every session hour of a change day has this offset.
    """
    offset = datetime.combine(trade_date, SESSION_NOON, ZoneInfo(NY_TZ)).utcoffset()
    assert offset is not None
    return int(offset.total_seconds() * 1000)


def ny_midnight_epoch_ms(trade_date: date) -> int:
    """Epoch ms that, plus a wall-clock ``ms_of_day``, gives the instant in New York on ``trade_date``."""
    return (trade_date - EPOCH).days * DAY_MS - session_utc_offset_ms(trade_date)


def instants(ms_of_day: pa.Array, midnight_ms: pa.Scalar) -> pa.Array:
    """timestamp[ms, tz=America/New_York] of wall-clock ``ms_of_day`` on the trade date."""
    return pc.add(pc.cast(ms_of_day, pa.int64()), midnight_ms).cast(TIMESTAMP_TYPE)


def wall_ms_of_day(wall_clock: pa.Array) -> pa.Array:
    """Milliseconds since midnight of naive (New York wall-clock) timestamps."""
    return pc.cast(pc.cast(wall_clock, pa.time32("ms")), pa.int32())


@dataclass(frozen=True)
class TradeDay:
    """The trade date of a file and the epoch ms of its New York midnight, made once per file."""

    day: date
    midnight_ms: pa.Scalar

    @classmethod
    def of(cls, trade_date: date) -> TradeDay:
        return cls(trade_date, pa.scalar(ny_midnight_epoch_ms(trade_date), pa.int64()))

    def zoned(self, wall_clock: pa.Array, wall_ms: pa.Array, dates: pa.Array) -> pa.Array:
        """Zoned instants of naive New York wall-clock timestamps, each on its own date.

        When every row is on the trade date (nearly always) the instant is the trade date's
        midnight plus the ms of day; otherwise each row's own date decides, DST included.
        """
        if dates.null_count < len(dates):
            low, high = pc.min_max(dates).values()
            if low.as_py() == self.day == high.as_py():
                return instants(wall_ms, self.midnight_ms)
        return pc.assume_timezone(wall_clock, NY_TZ, ambiguous="earliest", nonexistent="earliest")


def early_close_ms(calendar: TradingCalendar, trade_date: date) -> int | None:
    """The session's close in ms of day when ``trade_date`` closes early (13:15 New York), else None."""
    if not calendar.early_close(trade_date):
        return None
    close = calendar.session_close(trade_date)
    return (close.hour * 3600 + close.minute * 60 + close.second) * 1000
