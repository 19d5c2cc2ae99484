"""The row generator of the interval datasets: a history query becomes blocks of row tuples, one block per contract.

The daily datasets (open interest, EOD, EOD greeks) are ``daily.py``'s, computed without a chain.

Rows hold numbers in the dataset's canonical field order (``columns.py``); time fields arrive
already in the API's form (ms of day for v2, ISO text for v3) and v2 rows end with the date.
Every endpoint and format renders these tuples, so one contract-minute carries the same values
everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from itertools import repeat
from typing import Callable, Iterable, Sequence

from spxdl import trading_calendar
from spxdl.simulator.columns import DatasetColumns
from spxdl.simulator.listing import Expiration
from spxdl.simulator.market import MINUTE_MS, MINUTES, OPEN_MS, Chain, mix
from spxdl.simulator.model import MarketModel, SessionRules

CLOSE_MS = 57_600_000            # 16:00
LATE_CLOSE_MS = 58_500_000       # 16:15
CLOSE_MINUTE = (CLOSE_MS - OPEN_MS) // MINUTE_MS
OI_REPORT_MS = 23_404_000        # 06:30:04
EOD_REPORT_MS = 62_100_000       # 17:15:00
CBOE, CONDITION = 5, 50          # exchange code seen on SPX quotes; regular quote condition


def iso_time(day: date, ms: int) -> str:
    """v3 timestamp: ET wall clock without zone, fraction only when non-zero, trimmed."""
    seconds, frac = divmod(ms, 1000)
    text = "%sT%02d:%02d:%02d" % (day.isoformat(), seconds // 3600, seconds // 60 % 60, seconds % 60)
    return text + (".%03d" % frac).rstrip("0") if frac else text


def yyyymmdd(day: date) -> int:
    """A date as the v2 wire's integer."""
    return day.year * 10000 + day.month * 100 + day.day


@dataclass(frozen=True)
class Query:
    """One history request, already validated."""

    dataset: DatasetColumns
    api: str                                   # "v2" or "v3"
    expiration: Expiration
    days: tuple[date, ...]                     # trading days with data, ascending
    interval_ms: int = 60_000                  # 0: tick (one row per minute here)
    start_ms: int = OPEN_MS
    end_ms: int = CLOSE_MS
    strikes: frozenset[int] | None = None      # dollars; None: all
    rights: tuple[str, ...] = ("C", "P")
    rate: float | None = None                  # fraction; None: the market's rate
    annual_div: float | None = None            # dollars per year; None: no dividend

    def cache_key(self) -> tuple:
        return (self.dataset.name, self.api, self.expiration.root, self.expiration.exp, self.days,
                self.interval_ms, self.start_ms, self.end_ms, self.strikes, self.rights, self.rate,
                self.annual_div)


@dataclass
class Block:
    """The rows of one contract."""

    root: str
    expiration: date
    strike: int                 # dollars
    right: str                  # "C" / "P"
    rows: list[tuple] = field(default_factory=list)


@dataclass(frozen=True)
class DayWindow:
    """The part of a day a query gets rows for."""

    first_ms: int          # first row time
    end_ms: int            # last instant with data (inclusive)
    last_minute: int       # last minute whose values exist (later rows repeat it: "flat")


def day_window(query: Query, day: date, session: SessionRules) -> DayWindow:
    """Clip the query's window to the data: 09:30 to 16:00/16:15, the early close, expiry."""
    data_end = LATE_CLOSE_MS if session.late_window else CLOSE_MS
    if query.expiration.last_trade == day:
        data_end = min(data_end, CLOSE_MS)
    last_minute = MINUTES - 1
    if trading_calendar.early_close(day):
        if session.early_close_rows == "stop":
            data_end = min(data_end, session.early_close_ms)
        last_minute = (session.early_close_ms - OPEN_MS) // MINUTE_MS
    end = min(query.end_ms, data_end)
    last_minute = min(last_minute, (end - OPEN_MS) // MINUTE_MS)
    first = max(query.start_ms, OPEN_MS)
    if query.interval_ms:
        first = -(-first // query.interval_ms) * query.interval_ms
    return DayWindow(first, end, last_minute)


def row_times(query: Query, window: DayWindow) -> range:
    """The row times (ms of day) of one day."""
    return range(window.first_ms, window.end_ms + 1, query.interval_ms or MINUTE_MS)


def minute_times(query: Query, window: DayWindow) -> list[tuple[int, int]]:
    """(row time ms, minute whose values it carries) for every row of one day."""
    return [(t, min((t - OPEN_MS) // MINUTE_MS, window.last_minute)) for t in row_times(query, window)]


def minutes_in_bar(query: Query, t: int, window: DayWindow) -> range:
    """Minutes whose one-minute bar starts inside the bar [t, t + interval) (tick: minute t)."""
    if not query.interval_ms:
        first = (t - OPEN_MS) // MINUTE_MS
        return range(first, min(first, window.last_minute) + 1)
    first = -(-(t - OPEN_MS) // MINUTE_MS)
    stop = -(-(t + query.interval_ms - OPEN_MS) // MINUTE_MS)
    return range(first, min(stop, window.last_minute + 1))


def picker(minutes: list[int]) -> Callable[[Sequence], Sequence]:
    """Select the values of ``minutes`` from a per-minute sequence (a slice when consecutive)."""
    if minutes and minutes == list(range(minutes[0], minutes[-1] + 1)):
        first, stop = minutes[0], minutes[-1] + 1
        return lambda seq: seq[first:stop]
    return lambda seq: [seq[m] for m in minutes]


@dataclass(frozen=True)
class ContractDay:
    """What a dataset's row builder needs for one contract on one day."""

    query: Query
    chain: Chain
    j: int                                   # contract index in the chain
    wire_times: list                         # row times as the API writes them
    ms: list[int]                            # row times in ms of day
    pick: Callable[[Sequence], Sequence]     # per-minute values -> per-row values
    tail: tuple                              # (date,) for v2, () for v3
    window: DayWindow

    def wire_time(self, ms: int) -> object:
        return iso_time(self.chain.day, ms) if self.query.api == "v3" else ms

    def zip_rows(self, *columns: Iterable) -> list[tuple]:
        """Rows from per-row columns, the v2 date appended."""
        return list(zip(*columns, *(repeat(v) for v in self.tail)))


class RowGenerator:
    """Turns queries into blocks using the market model's chains."""

    def __init__(self, model: MarketModel) -> None:
        self.model = model
        self._builders: dict[str, Callable[[ContractDay], list[tuple]]] = {
            "greeks": greeks_rows, "greeks_second_order": greeks2_rows, "quote": quote_rows, "ohlc": ohlc_rows,
        }

    def count_rows(self, query: Query) -> int:
        """How many rows the query yields (cheap: no chain is built)."""
        contracts = len(self._strikes(query)) * len(query.rights)
        session = self.model.session
        per_day = sum(len(row_times(query, day_window(query, d, session))) for d in query.days)
        return contracts * per_day

    def _strikes(self, query: Query) -> list[int]:
        strikes = self.model.strikes(query.expiration)
        return [k for k in strikes if query.strikes is None or k in query.strikes]

    def blocks(self, query: Query) -> list[Block]:
        """Contract-major blocks (strike ascending, call first), each day's rows in time order."""
        order = [(k, r) for k in self._strikes(query) for r in ("C", "P") if r in query.rights]
        blocks = {c: Block(query.expiration.root, query.expiration.exp, c[0], c[1]) for c in order}
        build = self._builders[query.dataset.name]
        for day in query.days:
            chain = self.model.chain(query.expiration, day)
            index = {(c.strike, c.right): j for j, c in enumerate(chain.contracts)}
            window = day_window(query, day, self.model.session)
            times = minute_times(query, window)
            ms = [t for t, _ in times]
            wire_times = [iso_time(day, t) for t in ms] if query.api == "v3" else ms
            pick = picker([m for _, m in times])
            tail = (yyyymmdd(day),) if query.api == "v2" else ()
            for c in order:
                cd = ContractDay(query, chain, index[c], wire_times, ms, pick, tail, window)
                blocks[c].rows.extend(build(cd))
        return [blocks[c] for c in order]

def _dividend_yield(cd: ContractDay) -> float | None:
    div = cd.query.annual_div
    return None if div is None else div / cd.chain.underlying[0]


def _greek_rows(cd: ContractDay, fields: tuple[str, ...]) -> list[tuple]:
    chain, j, pick = cd.chain, cd.j, cd.pick
    g = chain.greeks(cd.query.rate, _dividend_yield(cd))[j]
    return cd.zip_rows(cd.wire_times, pick(chain.bid[j]), pick(chain.ask[j]),
                       *(pick(g[f]) for f in fields), cd.wire_times, pick(chain.underlying))


def greeks_rows(cd: ContractDay) -> list[tuple]:
    """First-order greeks rows."""
    return _greek_rows(cd, ("delta", "theta", "vega", "rho", "epsilon", "lambda", "implied_vol",
                            "iv_error"))


def greeks2_rows(cd: ContractDay) -> list[tuple]:
    """Second-order greeks rows."""
    return _greek_rows(cd, ("gamma", "vanna", "charm", "vomma", "veta", "implied_vol", "iv_error"))


def quote_rows(cd: ContractDay) -> list[tuple]:
    """NBBO quote rows: the chain's bid/ask with sizes, exchange and condition."""
    chain, j, pick = cd.chain, cd.j, cd.pick
    bid_size, ask_size = quote_sizes(chain, j)
    return cd.zip_rows(cd.wire_times, pick(bid_size), repeat(CBOE), pick(chain.bid[j]),
                       repeat(CONDITION), pick(ask_size), repeat(CBOE), pick(chain.ask[j]),
                       repeat(CONDITION))


def ohlc_rows(cd: ContractDay) -> list[tuple]:
    """OHLC bars built from the one-minute bars they cover."""
    bars = minute_bars(cd.chain, cd.j)
    out, vwap = [], 0.0
    for t, ms in zip(cd.wire_times, cd.ms):
        bar, vwap = aggregate([bars[k] for k in minutes_in_bar(cd.query, ms, cd.window)], vwap)
        out.append((t,) + bar + cd.tail)
    return out


def quote_sizes(chain: Chain, j: int) -> tuple[list[int], list[int]]:
    """Bid and ask sizes per minute (no bid: size 0)."""
    cache = chain.derived.setdefault("sizes", {})
    if j not in cache:
        strike, day = chain.contracts[j].strike, chain.day.toordinal()
        hashes = [mix(chain.seed, strike, j, m, day) for m in range(MINUTES)]
        bid_size = [1 + h % 200 if b > 0 else 0 for h, b in zip(hashes, chain.bid[j])]
        cache[j] = (bid_size, [1 + (h >> 8) % 200 for h in hashes])
    return cache[j]


def minute_bars(chain: Chain, j: int) -> list[tuple[float, float, float, float, int]]:
    """(open, high, low, close, volume) of each minute, trades drawn around the quote's mid."""
    cache = chain.derived.setdefault("bars", {})
    if j in cache:
        return cache[j]
    bid, ask = chain.bid[j], chain.ask[j]
    strike, day = chain.contracts[j].strike, chain.day.toordinal()
    bars, previous = [], None
    for m in range(MINUTES):
        mid = round((bid[m] + ask[m]) / 2.0, 2)
        h = mix(chain.seed, strike, j, m, day)
        volume = 0 if (h % 10 < 4 or mid < 0.05) else 1 + (h >> 4) % 40
        open_ = previous if previous is not None else mid
        spread = ask[m] - bid[m]
        high = round(max(open_, mid) + spread * ((h >> 12) % 3) / 4.0, 2)
        low = round(max(0.05, min(open_, mid) - spread * ((h >> 16) % 3) / 4.0), 2)
        bars.append((open_, high, min(low, open_, mid), mid, volume))
        previous = mid
    cache[j] = bars
    return bars


def aggregate(bars: list[tuple], vwap: float) -> tuple[tuple, float]:
    """One bar (open, high, low, close texts, volume, count, vwap) from minute bars.

    Empty bars print 0.0 prices and carry the previous vwap, as the recorded v3 OHLC does.
    """
    traded = [b for b in bars if b[4] > 0]
    if not traded:
        return ("0.0", "0.0", "0.0", "0.0", 0, 0, vwap), vwap
    volume = sum(b[4] for b in traded)
    vwap = round(sum((b[1] + b[2] + b[3]) / 3.0 * b[4] for b in traded) / volume, 2)
    prices = (traded[0][0], max(b[1] for b in traded), min(b[2] for b in traded), traded[-1][3])
    count = sum(max(1, b[4] // 2) for b in traded)
    return tuple("%.2f" % p for p in prices) + (volume, count, vwap), vwap
