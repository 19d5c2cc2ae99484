"""The index endpoints: SPX (the options' own underlying path) and VIX at an interval, v2 and v3.

SPX at a minute is the index value every option row of that minute carries as its underlying, so
``index_price`` and the greeks' ``underlying_price`` agree. VIX is the day's at-the-money
volatility in points with a small walk of its own (a guess). Rows run from 09:30 to 16:00, or to
16:15 when the request's window reaches it (as the options' rows do), and stop at the early close.
"""

from __future__ import annotations

import math
import random
from datetime import date
from functools import lru_cache

from spxdl import trading_calendar
from spxdl.simulator import wire
from spxdl.simulator.columns import INDEX_V2_FORMAT, INDEX_V3_COLUMNS
from spxdl.simulator.daily import day_path
from spxdl.simulator.market import MINUTE_MS, MINUTES, OPEN_MS, base_vol, stable_seed
from spxdl.simulator.model import MarketModel
from spxdl.simulator.params import Problem
from spxdl.simulator.rows import CLOSE_MS, LATE_CLOSE_MS, iso_time, yyyymmdd

INDEX_SYMBOLS = ("SPX", "VIX")
NO_DATA_TEXT = "No data for the specified timeframe and chain. Debug code 1"


@lru_cache(maxsize=32)
def vix_path(seed: int, day: date) -> tuple[float, ...]:
    """VIX each minute: the day's at-the-money volatility in points, walking by about 1 % an hour."""
    rng = random.Random(stable_seed(seed, "vix", day))
    level = 100.0 * base_vol(seed, day)
    path = []
    for _ in range(MINUTES):
        path.append(round(level, 2))
        level *= math.exp(rng.gauss(0.0, 0.0013))
    return tuple(path)


def index_values(model: MarketModel, symbol: str, day: date) -> tuple[float, ...]:
    """The index each minute of ``day``; 472 for a symbol the simulator does not list."""
    if symbol == "SPX":
        return day_path(model.seed, day)
    if symbol == "VIX":
        return vix_path(model.seed, day)
    raise Problem(472, NO_DATA_TEXT)


def index_rows(model: MarketModel, symbol: str, days: list[date], interval_ms: int, start_ms: int, end_ms: int,
               api: str) -> list[tuple]:
    """(time, price[, date]) rows: each interval of the window that has data, the minute's value repeated below 1m."""
    rows = []
    step = interval_ms or MINUTE_MS
    for day in days:
        values = index_values(model, symbol, day)
        data_end = LATE_CLOSE_MS if model.session.late_window else CLOSE_MS
        if trading_calendar.early_close(day) and model.session.early_close_rows == "stop":
            data_end = min(data_end, model.session.early_close_ms)
        first = -(-max(start_ms, OPEN_MS) // step) * step
        for t in range(first, min(end_ms, data_end) + 1, step):
            price = values[min((t - OPEN_MS) // MINUTE_MS, MINUTES - 1)]
            rows.append((t, price, yyyymmdd(day)) if api == "v2" else (iso_time(day, t), price))
    if not rows:
        raise Problem(472, NO_DATA_TEXT)
    return rows


def v2_body(rows: list[tuple], fmt: str) -> bytes:
    """v2 /hist/index/price: CSV ``ms_of_day,price,date`` or the JSON envelope of row arrays."""
    if fmt == "csv":
        return wire.csv_table(INDEX_V2_FORMAT, ((t, "%.2f" % p, d) for t, p, d in rows))
    items = ["[%d,%.2f,%d]" % row for row in rows]
    return wire.v2_json_head(INDEX_V2_FORMAT, "null", 1 + len(rows) // 10_000) + wire.v2_json_tail(items)


def v3_body(rows: list[tuple], fmt: str) -> bytes:
    """v3 /index/history/price: CSV ``timestamp,price`` or one flat JSON object per row."""
    if fmt == "csv":
        return wire.csv_table(INDEX_V3_COLUMNS, ((t, "%.2f" % p) for t, p in rows))
    return wire.v3_json_list('{"timestamp":"%s","price":%.2f}' % row for row in rows)
