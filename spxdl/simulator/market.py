"""A deterministic synthetic SPX market: index levels, one-minute paths, option chains.

Everything is a pure function of (seed, trade date, contract): two simulators with the same
seed serve the same bytes, whatever order requests arrive in. A chain holds one value per
contract and minute from 09:30 to 16:15 (406 minutes); every endpoint and both API families
read the same numbers from it.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, time

from spxdl.simulator.blackscholes import Greeks, call_put
from spxdl.simulator.listing import Expiration

OPEN_MS = 34_200_000                 # 09:30 ET
MINUTE_MS = 60_000
MINUTES = 406                        # 09:30 .. 16:15 inclusive
RIGHTS = ("C", "P")
MIN_YEARS = 1.0 / (365.0 * 24.0)     # time to expiry floor: one hour (the v3 "latest" rule)
MAX_GREEK_TABLES = 3                 # greeks kept per chain for request-specified rates/dividends

# Approximate closes of the S&P 500 (the path interpolates between them, then adds noise).
LEVEL_ANCHORS: tuple[tuple[date, float], ...] = (
    (date(2000, 1, 3), 1455.0), (date(2002, 10, 9), 777.0), (date(2007, 10, 9), 1565.0),
    (date(2009, 3, 9), 677.0), (date(2013, 1, 2), 1462.0), (date(2016, 1, 4), 2012.0),
    (date(2018, 1, 2), 2695.0), (date(2020, 2, 19), 3386.0), (date(2020, 3, 23), 2237.0),
    (date(2021, 1, 4), 3700.0), (date(2022, 1, 3), 4796.0), (date(2022, 10, 12), 3577.0),
    (date(2023, 1, 3), 3824.0), (date(2024, 1, 2), 4700.0), (date(2024, 3, 15), 5150.0),
    (date(2024, 12, 16), 5900.0), (date(2025, 2, 20), 6100.0), (date(2026, 1, 2), 6850.0),
    (date(2030, 12, 31), 9000.0),
)
# Guess: a risk-free rate per era standing in for SOFR (fraction).
RATE_BY_YEAR: tuple[tuple[int, float], ...] = (
    (2000, 0.055), (2002, 0.017), (2005, 0.035), (2007, 0.045), (2009, 0.002), (2016, 0.006),
    (2017, 0.012), (2018, 0.02), (2019, 0.022), (2020, 0.001), (2022, 0.025), (2023, 0.052),
    (2024, 0.053), (2025, 0.043),
)
_ANCHOR_ORDINALS = [d.toordinal() for d, _ in LEVEL_ANCHORS]


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from the parts' text (Python's hash() is salted per process)."""
    text = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def trend_level(d: date) -> float:
    """The anchor curve's level on ``d`` (linear between anchors)."""
    x = d.toordinal()
    i = bisect_right(_ANCHOR_ORDINALS, x)
    if i == 0:
        return LEVEL_ANCHORS[0][1]
    if i == len(LEVEL_ANCHORS):
        return LEVEL_ANCHORS[-1][1]
    (d0, v0), (d1, v1) = LEVEL_ANCHORS[i - 1], LEVEL_ANCHORS[i]
    return v0 + (v1 - v0) * (x - d0.toordinal()) / (d1.toordinal() - d0.toordinal())


def open_level(seed: int, d: date) -> float:
    """The index at 09:30 on ``d``: the trend plus up to about one percent of daily noise."""
    noise = random.Random(stable_seed(seed, "open", d)).gauss(0.0, 0.006)
    return round(trend_level(d) * (1.0 + noise), 2)


def base_vol(seed: int, d: date) -> float:
    """At-the-money implied volatility of the day (between 11 % and 19 %)."""
    return 0.11 + 0.08 * random.Random(stable_seed(seed, "vol", d)).random()


def market_rate(d: date) -> float:
    """The era's risk-free rate (fraction) used when a request names none."""
    rate = RATE_BY_YEAR[0][1]
    for year, value in RATE_BY_YEAR:
        if d.year >= year:
            rate = value
    return rate


def index_path(seed: int, d: date) -> list[float]:
    """The index each minute from 09:30 to 16:15, rounded to cents."""
    rng = random.Random(stable_seed(seed, "path", d))
    level = open_level(seed, d)
    step = base_vol(seed, d) / math.sqrt(252.0 * 390.0)
    path = []
    for _ in range(MINUTES):
        path.append(round(level, 2))
        level *= math.exp(rng.gauss(0.0, step))
    return path


def smile(atm: float, log_moneyness: float) -> float:
    """Volatility of a strike: skewed up on the put side, a little on the far call side."""
    return min(2.0, max(0.05, atm * (1.0 - 1.6 * log_moneyness + 6.0 * log_moneyness ** 2)))


def expiry_moment(e: Expiration) -> datetime:
    """When an expiration stops: 16:00 for PM series, 09:30 on the settlement day for AM ones."""
    if e.am_settlement is not None:
        return datetime.combine(e.am_settlement, time(9, 30))
    return datetime.combine(e.exp, time(16, 0))


def tick_size(price: float) -> float:
    """Cboe SPX tick: 0.05 under $3.00, 0.10 otherwise."""
    return 0.05 if price < 3.0 else 0.10


def quote_around(theo: float) -> tuple[float, float]:
    """A bid/ask pair on the tick grid bracketing the theoretical price."""
    tick = tick_size(theo)
    if theo < tick / 2.0:
        return 0.0, 0.05
    ticks = max(1, round(theo * 0.004 / tick))
    bid = max(0.0, math.floor((theo - ticks * tick / 2.0) / tick + 1e-9) * tick)
    return round(bid, 2), round(bid + ticks * tick, 2)


def mix(*values: int) -> int:
    """A cheap deterministic 32-bit hash of small integers (sizes, volumes, report times)."""
    h = 2166136261
    for v in values:
        h = ((h ^ (v & 0xFFFFFFFF)) * 16777619) & 0xFFFFFFFF
    return h ^ (h >> 15)


GREEK_FIELDS = ("delta", "theta", "vega", "rho", "epsilon", "lambda", "implied_vol", "iv_error",
                "gamma", "vanna", "charm", "vomma", "veta")


@dataclass(frozen=True)
class Contract:
    strike: int          # dollars
    right: str           # "C" or "P"


class Chain:
    """All contracts of one expiration on one trade date, minute by minute.

    ``bid``/``ask`` and the model volatility come from the market alone; greeks depend on the
    rate and dividend a request names, so they are kept per (rate, dividend).
    """

    def __init__(self, seed: int, expiration: Expiration, day: date, strikes: list[int]) -> None:
        self.seed = seed
        self.expiration = expiration
        self.day = day
        self.underlying = index_path(seed, day)
        self.contracts = [Contract(k, r) for k in strikes for r in RIGHTS]
        self.rate = market_rate(day)
        self.years = self._years_to_expiry()
        self.sigma: list[array] = []
        self.bid: list[array] = []
        self.ask: list[array] = []
        self._greeks: dict[tuple[float, float], list[dict[str, array]]] = {}
        self.derived: dict[str, dict] = {}    # per-contract values built from the quotes on demand
        self._lock = threading.Lock()
        self._build_quotes(strikes)

    def _years_to_expiry(self) -> list[float]:
        end = expiry_moment(self.expiration)
        start = datetime.combine(self.day, time(9, 30))
        out = []
        for m in range(MINUTES):
            seconds = (end - start).total_seconds() - 60.0 * m
            out.append(max(MIN_YEARS, seconds / (365.0 * 86400.0)))
        return out

    def _build_quotes(self, strikes: list[int]) -> None:
        atm = base_vol(self.seed, self.day)
        sig_by_strike = []
        for k in strikes:
            sig = array("d", (smile(atm, math.log(k / s)) for s in self.underlying))
            sig_by_strike.append(sig)
        table = self._compute(strikes, sig_by_strike, self.rate, 0.0, store_quotes=True)
        self._greeks[(self.rate, 0.0)] = table

    def _compute(self, strikes: list[int], sig_by_strike: list[array], r: float, q: float,
                 store_quotes: bool) -> list[dict[str, array]]:
        under, years = self.underlying, self.years
        table: list[dict[str, array]] = []
        for i, k in enumerate(strikes):
            sigs = sig_by_strike[i]
            pairs = [call_put(s, float(k), t, r, q, sg) for s, t, sg in zip(under, years, sigs)]
            for side in (0, 1):
                # Transposed: one tuple per Greeks field, each holding every minute.
                cols = dict(zip(Greeks._fields, zip(*[p[side] for p in pairs])))
                if store_quotes:
                    bids, asks = zip(*map(quote_around, cols["price"]))
                    self.bid.append(array("d", bids))
                    self.ask.append(array("d", asks))
                    self.sigma.append(sigs)
                mids = [(b + a) / 2.0 for b, a in zip(self.bid[2 * i + side], self.ask[2 * i + side])]
                g = {name: array("d", cols[name]) for name in Greeks._fields[1:]}
                g["lambda"] = array("d", [d * s / m for d, s, m in zip(cols["delta"], under, mids)])
                g["implied_vol"] = sigs
                g["iv_error"] = array("d", [abs(p - m) / m for p, m in zip(cols["price"], mids)])
                table.append(g)
        return table

    def greeks(self, rate: float | None, dividend: float | None) -> list[dict[str, array]]:
        """Per contract, each greek per minute, for the given rate and dividend yield."""
        key = (self.rate if rate is None else rate, 0.0 if dividend is None else dividend)
        with self._lock:
            table = self._greeks.get(key)
            if table is None:
                strikes = [c.strike for c in self.contracts[::2]]
                table = self._compute(strikes, self.sigma[::2], key[0], key[1], False)
                if len(self._greeks) > MAX_GREEK_TABLES:  # keep the market's table, drop the oldest other
                    del self._greeks[next(k for k in self._greeks if k != (self.rate, 0.0))]
                self._greeks[key] = table
        return table

    def greek_tables(self) -> int:
        """How many (rate, dividend) greeks tables the chain holds."""
        with self._lock:
            return len(self._greeks)

    def size_bytes(self) -> int:
        """Approximate memory held by the chain's arrays."""
        per_table = len(self.contracts) * len(GREEK_FIELDS) * MINUTES * 8
        return (1 + MAX_GREEK_TABLES) * per_table + 3 * len(self.contracts) * MINUTES * 8
