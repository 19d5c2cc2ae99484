"""Rows of the daily datasets (open interest, EOD, EOD greeks), one per contract and day, without a chain.

A chain computes every contract at every minute of the session; a day's report needs only a few
minutes of each contract, and an answer of every expiration of a day (``expiration=*``) holds
hundreds of expirations. So each value here is computed for the minutes it needs with the same
functions and inputs as the chain (index path, volatility smile, Black-Scholes, the quote grid,
the hashed sizes): the close quote and greeks equal the chain's 16:00 (or early-close) minute.
The day's OHLC bar is built from trades at four minutes (09:30, 11:40, 13:50, 16:00) and the
close (a guess). The call
and the put of a strike share their Black-Scholes evaluations.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time
from functools import lru_cache
from typing import Callable

from spxdl import trading_calendar
from spxdl.simulator.blackscholes import Greeks, call_put, higher_order
from spxdl.simulator.listing import Expiration
from spxdl.simulator.market import (
    MIN_YEARS,
    MINUTE_MS,
    OPEN_MS,
    base_vol,
    expiry_moment,
    index_path,
    market_rate,
    mix,
    quote_around,
    smile,
)
from spxdl.simulator.model import MarketModel
from spxdl.simulator.rows import (
    CBOE,
    CLOSE_MINUTE,
    CONDITION,
    EOD_REPORT_MS,
    OI_REPORT_MS,
    Block,
    Query,
    aggregate,
    iso_time,
    yyyymmdd,
)

BAR_SAMPLE_MINUTES = 130  # the day's bar is built from trades every 130 minutes and at the close
EOD_GREEK_FIELDS = ("delta", "theta", "vega", "rho", "epsilon", "lambda", "gamma", "vanna", "charm", "vomma", "veta")
HIGHER_FIELDS = ("vera", "speed", "zomma", "color", "ultima", "d1", "d2", "dual_delta", "dual_gamma")


@lru_cache(maxsize=256)
def _base_vol(seed: int, day: date) -> float:
    return base_vol(seed, day)


@lru_cache(maxsize=32)
def day_path(seed: int, day: date) -> tuple[float, ...]:
    """The index each minute of ``day`` (the chain's own path), kept for the day's many contracts."""
    return tuple(index_path(seed, day))


class ContractDay:
    """One contract on one day: its values at any minute, as the chain would compute them."""

    def __init__(self, model: MarketModel, query: Query, day: date, strike: int, right: str, j: int,
                 shared: dict | None = None) -> None:
        self.seed, self.e, self.day = model.seed, query.expiration, day
        self._shared = {} if shared is None else shared  # (minute, rate, q) -> (call, put): shared by both rights
        self.strike, self.right, self.j = strike, right, j
        self.query = query
        self.path = day_path(model.seed, day)
        self.atm = _base_vol(model.seed, day)
        self.market_rate = market_rate(day)
        early = trading_calendar.early_close(day)
        self.close_minute = (model.session.early_close_ms - OPEN_MS) // MINUTE_MS if early else CLOSE_MINUTE
        self.tail = (yyyymmdd(day),) if query.api == "v2" else ()

    def wire_time(self, ms: int) -> object:
        return iso_time(self.day, ms) if self.query.api == "v3" else ms

    def _years(self, minute: int) -> float:
        seconds = (expiry_moment(self.e) - datetime.combine(self.day, time(9, 30))).total_seconds() - 60.0 * minute
        return max(MIN_YEARS, seconds / (365.0 * 86400.0))

    def _inputs(self, minute: int) -> tuple[float, float, float]:
        s = self.path[minute]
        return s, self._years(minute), smile(self.atm, math.log(self.strike / s))

    def _greeks_at(self, minute: int, rate: float, q: float) -> Greeks:
        key = (minute, rate, q)
        if key not in self._shared:
            s, t, sigma = self._inputs(minute)
            self._shared[key] = call_put(s, float(self.strike), t, rate, q, sigma)
        pair = self._shared[key]
        return pair[0] if self.right == "C" else pair[1]

    def quote(self, minute: int) -> tuple[float, float]:
        """Bid and ask at ``minute``: the quote grid around the market-rate price, as in the chain."""
        key = (self.right, minute)
        if key not in self._shared:
            self._shared[key] = quote_around(self._greeks_at(minute, self.market_rate, 0.0).price)
        return self._shared[key]

    def quote_fields(self, minute: int) -> tuple:
        """The eight quote columns at ``minute`` (sizes hashed as the chain hashes them)."""
        bid, ask = self.quote(minute)
        h = mix(self.seed, self.strike, self.j, minute, self.day.toordinal())
        bid_size = 1 + h % 200 if bid > 0 else 0
        return (bid_size, CBOE, bid, CONDITION, 1 + (h >> 8) % 200, CBOE, ask, CONDITION)

    def bar(self) -> tuple:
        """The day's open, high, low, close (texts), volume, count, vwap from the sampled trades."""
        minutes = sorted({*range(0, self.close_minute + 1, BAR_SAMPLE_MINUTES), self.close_minute})
        bars, previous = [], None
        for m in minutes:
            bid, ask = self.quote(m)
            mid = round((bid + ask) / 2.0, 2)
            h = mix(self.seed, self.strike, self.j, m, self.day.toordinal())
            volume = 0 if (h % 10 < 4 or mid < 0.05) else 1 + (h >> 4) % 40
            open_ = previous if previous is not None else mid
            spread = ask - bid
            high = round(max(open_, mid) + spread * ((h >> 12) % 3) / 4.0, 2)
            low = round(max(0.05, min(open_, mid) - spread * ((h >> 16) % 3) / 4.0), 2)
            bars.append((open_, high, min(low, open_, mid), mid, volume))
            previous = mid
        return aggregate(bars, 0.0)[0]

    def report_times(self) -> tuple[int, int]:
        """(created, last trade) in ms of day: the report 17:15-17:20, the last trade in the last minute."""
        h = mix(self.seed, self.strike, self.j, self.day.toordinal())
        return EOD_REPORT_MS + h % 300_000, OPEN_MS + self.close_minute * MINUTE_MS - 60_000 + h % 59_999

    def greeks(self, minute: int) -> dict[str, float]:
        """Every greek at ``minute`` for the request's rate and dividend (the quote stays the market's)."""
        s, t, sigma = self._inputs(minute)
        rate = self.market_rate if self.query.rate is None else self.query.rate
        q = 0.0 if self.query.annual_div is None else self.query.annual_div / self.path[0]
        g = self._greeks_at(minute, rate, q)
        bid, ask = self.quote(minute)
        mid = (bid + ask) / 2.0
        values = {name: getattr(g, name) for name in EOD_GREEK_FIELDS if name != "lambda"}
        values["lambda"] = g.delta * s / mid
        values.update(higher_order(s, float(self.strike), t, rate, q, sigma, self.right))
        values["implied_vol"] = sigma
        values["iv_error"] = abs(g.price - mid) / mid
        return values


def oi_rows(c: ContractDay) -> list[tuple]:
    """One open-interest report per day, at about 06:30."""
    ms = OI_REPORT_MS + mix(c.seed, c.strike, c.j, c.day.toordinal()) % 1000
    moneyness = abs(math.log(c.strike / c.path[0]))
    oi = int(20_000 * math.exp(-10.0 * moneyness)) + mix(c.strike, c.j, c.day.toordinal()) % 300
    return [(c.wire_time(ms), oi) + c.tail]


def eod_rows(c: ContractDay) -> list[tuple]:
    """The day's report: created, last trade, the bar, and the close quote."""
    created, last_trade = c.report_times()
    return [(c.wire_time(created), c.wire_time(last_trade)) + c.bar()[:6] + c.quote_fields(c.close_minute) + c.tail]


def greeks_eod_rows(c: ContractDay) -> list[tuple]:
    """The day's report with every greek at the close: timestamp the last trade, underlying time the report."""
    created, last_trade = c.report_times()
    g = c.greeks(c.close_minute)
    names = (*EOD_GREEK_FIELDS, *HIGHER_FIELDS, "implied_vol", "iv_error")
    return [(c.wire_time(last_trade),) + c.bar()[:6] + c.quote_fields(c.close_minute)
            + tuple(g[name] for name in names) + (c.wire_time(created), c.path[c.close_minute]) + c.tail]


BUILDERS: dict[str, Callable[[ContractDay], list[tuple]]] = {
    "open_interest": oi_rows, "eod": eod_rows, "greeks_eod": greeks_eod_rows,
}


class DailyRows:
    """Blocks of the daily datasets for one expiration, computed per contract without a chain."""

    def __init__(self, model: MarketModel) -> None:
        self.model = model

    def count_rows(self, query: Query) -> int:
        """One row per contract and day."""
        return len(self._strikes(query)) * len(query.rights) * len(query.days)

    def _strikes(self, query: Query) -> list[int]:
        strikes = self.model.strikes(query.expiration)
        return [k for k in strikes if query.strikes is None or k in query.strikes]

    def blocks(self, query: Query) -> list[Block]:
        """Contract-major blocks (strike ascending, call first), one row per day each."""
        strikes = self.model.strikes(query.expiration)
        build = BUILDERS[query.dataset.name]
        out = []
        for k in self._strikes(query):
            shared: dict[date, dict] = {day: {} for day in query.days}
            for right in (r for r in ("C", "P") if r in query.rights):
                j = 2 * strikes.index(k) + (right == "P")  # the contract's place in the chain
                block = Block(query.expiration.root, query.expiration.exp, k, right)
                for day in query.days:
                    block.rows.extend(build(ContractDay(self.model, query, day, k, right, j, shared[day])))
                out.append(block)
        return out


def trading_expirations(model: MarketModel, root: str, day: date, listed: Callable[[Expiration, date], bool]
                        ) -> list[Expiration]:
    """Every expiration of ``root`` with data on ``day``, ascending (what ``expiration=*`` covers)."""
    return [e for e in model.expirations(root) if listed(e, day)]
