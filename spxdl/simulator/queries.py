"""History requests as the simulator reads them: v2 and v3 parameters -> validated ``Query`` objects.

A request for one expiration is one query. ``expiration=*`` (v3) or ``exp=0`` (v2) on a daily
dataset (open interest, EOD, EOD greeks) is one query per expiration with data in the range,
ascending; the answer is their blocks one after the other. Every parser raises ``Problem`` (an
error answer) naming the parameter.
"""

from __future__ import annotations

from datetime import date, timedelta

from spxdl.simulator.columns import DAILY_DATASETS, INTERVAL_DATASETS, DatasetColumns
from spxdl.simulator.listing import Expiration, trades_on
from spxdl.simulator.model import MarketModel
from spxdl.simulator.params import (
    Problem,
    days_between,
    param,
    parse_bool,
    parse_clock,
    parse_date,
    parse_float,
    parse_int,
    required_param,
    rows_key,
)
from spxdl.simulator.rows import CLOSE_MS, Query

OPEN_MS = 34_200_000
DAY_END_MS = 86_399_999
V3_INTERVALS = {
    "tick": 0, "10ms": 10, "100ms": 100, "500ms": 500, "1s": 1000, "5s": 5000, "10s": 10_000,
    "15s": 15_000, "30s": 30_000, "1m": 60_000, "5m": 300_000, "10m": 600_000, "15m": 900_000,
    "30m": 1_800_000, "1h": 3_600_000,
}
RATE_NAMES = ("SOFR", "TREASURY_M1", "TREASURY_M3", "TREASURY_M6", "TREASURY_Y1", "TREASURY_Y2",
              "TREASURY_Y3", "TREASURY_Y5", "TREASURY_Y7", "TREASURY_Y10", "TREASURY_Y20",
              "TREASURY_Y30")
NO_DATA_TEXT = "No data for the specified timeframe and chain. Debug code 1"
WILDCARDS = {"v2": "0", "v3": "*"}


class QueryParser:
    """Reads history requests against one market model."""

    def __init__(self, model: MarketModel) -> None:
        self.model = model

    def expiration(self, root: str, exp: date) -> Expiration:
        e = self.model.expiration(root, exp)
        if e is None:
            raise Problem(472, NO_DATA_TEXT)
        return e

    def expirations(self, ds: DatasetColumns, api: str, root: str, text: str, first: date, last: date
                    ) -> list[tuple[Expiration, tuple[date, ...]]]:
        """Each asked expiration with its days of data; every expiration for the wildcard of a daily dataset."""
        if text == WILDCARDS[api]:
            if ds.name not in DAILY_DATASETS:
                raise Problem(473, f"Invalid parameters: {'exp=0' if api == 'v2' else 'expiration=*'} is served "
                                   "for open_interest, eod and greeks/eod only by the simulator")
            days = days_between(first, last)
            found = [(e, tuple(d for d in days if trades_on(e, d))) for e in self.model.expirations(root)]
            found = [(e, ds_days) for e, ds_days in found if ds_days]
        else:
            e = self.expiration(root, parse_date(text, "exp" if api == "v2" else "expiration"))
            found = [(e, tuple(d for d in days_between(first, last) if trades_on(e, d)))]
            found = [(e, days) for e, days in found if days]
        if not found:
            raise Problem(472, NO_DATA_TEXT)
        return found

    def v2(self, ds: DatasetColumns, params: dict) -> tuple[list[Query], str]:
        """A v2 bulk request: ``root``, ``exp`` (``0``: every expiration), dates, ``ivl``, window, greeks."""
        root = required_param(params, "root")
        exp_text = required_param(params, "exp")
        first = parse_date(required_param(params, "start_date"), "start_date")
        last = parse_date(required_param(params, "end_date"), "end_date")
        found = self.expirations(ds, "v2", root, exp_text, first, last)
        ivl = parse_int(param(params, "ivl", "0"), "ivl") if ds.name in INTERVAL_DATASETS else 60_000
        if ds.name == "quote" and ivl < 60_000:
            raise Problem(473, "Invalid parameters: ivl below 60000 is not supported for bulk quote")
        rth = parse_bool(param(params, "rth", "true"), "rth") and ivl > 0
        start, end = param(params, "start_time"), param(params, "end_time")
        start_ms = parse_int(start, "start_time") if start else (OPEN_MS if rth else 0)
        end_ms = parse_int(end, "end_time") if end else (CLOSE_MS if rth else DAY_END_MS)
        rate = self.v2_rate(params)
        div = param(params, "annual_div")
        queries = [Query(ds, "v2", e, days, ivl, start_ms, end_ms, rate=rate,
                         annual_div=parse_float(div, "annual_div") if div else None) for e, days in found]
        return queries, rows_key("v2", ds.name, root, _shown(found, exp_text, "0"), first, last)

    @staticmethod
    def v2_rate(params: dict) -> float | None:
        value = param(params, "rate_value")
        if value:
            return parse_float(value, "rate_value")
        name = param(params, "rate")
        if name and name.upper() not in RATE_NAMES:
            raise Problem(473, f"Invalid parameters: rate={name!r}")
        return None  # every named rate is the simulator's one market rate (a guess)

    def v3(self, ds: DatasetColumns, params: dict) -> tuple[list[Query], str]:
        """A v3 request: ``symbol``, ``expiration`` (``*``: every one), ``date`` or a range, interval, window."""
        root = required_param(params, "symbol")
        exp_text = required_param(params, "expiration")
        first, last = self.v3_days(params)
        interval_name = param(params, "interval", "1s")
        if interval_name not in V3_INTERVALS:
            raise Problem(473, f"Invalid parameters: interval={interval_name!r}")
        ivl = V3_INTERVALS[interval_name] if ds.name in INTERVAL_DATASETS else 60_000
        if ivl < 60_000 and first != last and ds.name in INTERVAL_DATASETS:
            raise Problem(473, "Invalid parameters: intervals under 1m are served one day at a time")
        found = self.expirations(ds, "v3", root, exp_text, first, last)
        start_ms, end_ms = self.v3_window(params)
        strikes, rights, contracts = self.v3_contracts(params)
        rate_value = param(params, "rate_value")
        rate_type = param(params, "rate_type")
        if rate_type and rate_type.upper() not in RATE_NAMES:
            raise Problem(473, f"Invalid parameters: rate_type={rate_type!r}")
        div = param(params, "annual_dividend")
        queries = [Query(ds, "v3", e, days, ivl, start_ms, end_ms, strikes, rights,
                         parse_float(rate_value, "rate_value") / 100.0 if rate_value else None,
                         parse_float(div, "annual_dividend") if div else None) for e, days in found]
        return queries, rows_key("v3", ds.name, root, _shown(found, exp_text, "*"), first, last, contracts)

    @staticmethod
    def v3_days(params: dict) -> tuple[date, date]:
        """``date``, or ``start_date`` and ``end_date`` (at most a month apart)."""
        single = param(params, "date")
        first = parse_date(single or required_param(params, "start_date"), "start_date")
        last = first if single else parse_date(required_param(params, "end_date"), "end_date")
        if last - first > timedelta(days=31):
            raise Problem(473, "Invalid parameters: a request may span at most one month")
        return first, last

    @staticmethod
    def v3_window(params: dict) -> tuple[int, int]:
        return (parse_clock(param(params, "start_time", "09:30:00"), "start_time"),
                parse_clock(param(params, "end_time", "16:00:00"), "end_time"))

    @staticmethod
    def v3_contracts(params: dict) -> tuple[frozenset[int] | None, tuple[str, ...], str]:
        strike_text = param(params, "strike", "*")
        right_text = param(params, "right", "both").lower()
        rights = {"both": ("C", "P"), "*": ("C", "P"), "call": ("C",), "c": ("C",), "put": ("P",),
                  "p": ("P",)}.get(right_text)
        if rights is None:
            raise Problem(473, f"Invalid parameters: right={right_text!r}")
        strikes = None
        if strike_text != "*":
            value = parse_float(strike_text, "strike")
            strikes = frozenset({int(round(value))}) if value == int(value) else frozenset()
        contracts = " ".join(f"{n}={v}" for n, v in (("strike", strike_text), ("right", right_text))
                             if v not in ("*", "both"))
        return strikes, rights, contracts


def _shown(found: list[tuple[Expiration, tuple[date, ...]]], text: str, wildcard: str) -> str:
    """The expiration as the counters name it: its date, or ``*`` for every one."""
    return "*" if text == wildcard else found[0][0].exp.isoformat()
