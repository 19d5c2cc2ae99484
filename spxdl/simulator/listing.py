"""Which SPX/SPXW expirations exist, when each trades, and which strikes it has.

Weekday series follow Cboe's launch dates (docs/wire.md section 7); listing lead times,
the strike grid and the list horizon are the simulator's own choices (docs/simulator.md lists
them as guesses).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from spxdl.trading_calendar import TradingCalendar

CALENDAR = TradingCalendar()
ROOTS = ("SPX", "SPXW")
FIRST_DAY = date(2000, 1, 3)
# Guess: the list endpoints show expirations up to this date (a real terminal lists what is
# listed "now"; a fixed horizon keeps the bodies deterministic).
LIST_HORIZON = date(2030, 12, 31)
# Guess: SPX AM monthlies carried the Saturday after the 3rd Friday as their date until then.
SPX_SATURDAY_DATES_UNTIL = date(2015, 2, 1)

MON, TUE, WED, THU, FRI = range(5)


@dataclass(frozen=True)
class Series:
    """SPXW expirations on one weekday, listed from a launch date on."""

    weekday: int
    launched: date              # first day the series was listed (Cboe)
    lead_days: int              # guess: how long before expiry a contract starts trading


SPXW_SERIES = (
    Series(FRI, date(2005, 10, 14), 371),
    Series(WED, date(2016, 2, 23), 70),
    Series(MON, date(2016, 8, 15), 70),
    Series(TUE, date(2022, 4, 18), 70),
    Series(THU, date(2022, 5, 11), 70),
)
SPX_LEAD_DAYS = 3 * 365


def third_friday(year: int, month: int) -> date:
    """The third Friday of a month."""
    first = date(year, month, 1)
    return first + timedelta(days=(FRI - first.weekday()) % 7 + 14)


def _first_weekday_on_or_after(d: date, weekday: int) -> date:
    return d + timedelta(days=(weekday - d.weekday()) % 7)


def _holiday_adjusted(d: date, weekday: int) -> date | None:
    """Fridays move to the prior day, Mondays to the next; other weekdays are dropped (guess)."""
    if CALENDAR.is_trading_day(d):
        return d
    if weekday == FRI:
        return CALENDAR.previous_trading_day(d)
    if weekday == MON:
        return CALENDAR.next_trading_day(d)
    return None


@dataclass(frozen=True)
class Expiration:
    """One listed expiration: its date on the wire, its first and last trade dates."""

    root: str
    exp: date
    first_trade: date
    last_trade: date
    am_settlement: date | None       # AM-settled series: the settlement day (09:30); PM: None

    @property
    def settles_am(self) -> bool:
        return self.am_settlement is not None


def _series_expirations(series: Series) -> list[Expiration]:
    out = []
    # Guess: the first expiry of a new series is the first matching weekday a week after launch.
    d = _first_weekday_on_or_after(series.launched + timedelta(days=6), series.weekday)
    while d <= LIST_HORIZON:
        exp = _holiday_adjusted(d, series.weekday)
        if exp is not None:
            first = max(exp - timedelta(days=series.lead_days), series.launched, FIRST_DAY)
            out.append(Expiration("SPXW", exp, first, exp, None))
        d += timedelta(days=7)
    return out


def _spx_monthlies() -> list[Expiration]:
    out = []
    for year in range(FIRST_DAY.year, LIST_HORIZON.year + 1):
        for month in range(1, 13):
            friday = third_friday(year, month)
            settle = friday if CALENDAR.is_trading_day(friday) else CALENDAR.previous_trading_day(friday)
            wire = friday + timedelta(days=1) if friday < SPX_SATURDAY_DATES_UNTIL else settle
            first = max(settle - timedelta(days=SPX_LEAD_DAYS), FIRST_DAY)
            # AM-settled: the last trading day is the business day before settlement.
            out.append(Expiration("SPX", wire, first, CALENDAR.previous_trading_day(settle), settle))
    return out


@lru_cache(maxsize=8)
def expirations(root: str, weekdays: tuple[int, ...] = (MON, TUE, WED, THU, FRI)) -> tuple[Expiration, ...]:
    """Every expiration of ``root`` up to the list horizon, ascending (empty for other roots)."""
    if root == "SPX":
        return tuple(_spx_monthlies())
    if root != "SPXW":
        return ()
    found: dict[date, Expiration] = {}
    for series in SPXW_SERIES:
        if series.weekday in weekdays:
            for e in _series_expirations(series):
                found.setdefault(e.exp, e)
    return tuple(found[d] for d in sorted(found))


@lru_cache(maxsize=8)
def _by_date(root: str, weekdays: tuple[int, ...]) -> dict[date, Expiration]:
    return {e.exp: e for e in expirations(root, weekdays)}


def find_expiration(root: str, exp: date, weekdays: tuple[int, ...]) -> Expiration | None:
    """The expiration of ``root`` dated ``exp``, or None if there is none."""
    return _by_date(root, weekdays).get(exp)


def trades_on(e: Expiration, d: date) -> bool:
    """Whether contracts of ``e`` have data on trade date ``d``."""
    return e.first_trade <= d <= e.last_trade and CALENDAR.is_trading_day(d)


def trade_dates(e: Expiration) -> list[date]:
    """Trading days on which ``e`` has data, ascending."""
    return CALENDAR.trading_days(e.first_trade, e.last_trade)


def strike_reference_day(e: Expiration) -> date:
    """The day whose index level centres the strike grid: a month before the last trade."""
    return max(e.first_trade, e.last_trade - timedelta(days=30))


def realistic_strikes(level: float) -> list[int]:
    """Strikes in dollars: every 5 within 250 points, every 25 within 15 %, every 100 to -50/+30 %."""
    def listed(k: int) -> bool:
        distance = abs(k - level)
        return distance <= 250 or (k % 25 == 0 and distance <= 0.15 * level) or k % 100 == 0
    return [k for k in range(5 * int(level * 0.5 / 5), int(level * 1.3) + 1, 5) if listed(k)]


def dense_strikes(level: float) -> list[int]:
    """Strikes in dollars: every 5 from 60 % to 125 % of the level (about 4x the realistic chain)."""
    return list(range(5 * int(level * 0.60 / 5), int(level * 1.25) + 1, 5))


def tiny_strikes(level: float) -> list[int]:
    """Five strikes 50 points apart around the level."""
    centre = int(round(level / 50.0)) * 50
    return [centre + k * 50 for k in range(-2, 3)]
