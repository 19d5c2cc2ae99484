"""The exchange's record of the NYSE/Cboe (SPX and SPXW options), from 2000 on: the rules behind it.

The yearly holiday rules with their observed-day rules, the yearly early closes (13:00 ET for
equities, 13:15 ET for SPX options), the ad-hoc full closures and early closes, and the range of
dates the record covers. Pure date arithmetic: no calendar object, no time zone.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

from spxdl.errors import CalendarError

# The ad-hoc record is kept from 2000; later years follow today's rules plus the overrides file.
FIRST_DATE = date(2000, 1, 1)
LAST_DATE = date(2099, 12, 31)

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)

AD_HOC_CLOSURES: dict[date, str] = {
    date(2001, 9, 11): "September 11 attacks",
    date(2001, 9, 12): "September 11 attacks",
    date(2001, 9, 13): "September 11 attacks",
    date(2001, 9, 14): "September 11 attacks",
    date(2004, 6, 11): "National Day of Mourning for President Ronald Reagan",
    date(2007, 1, 2): "National Day of Mourning for President Gerald Ford",
    date(2012, 10, 29): "Hurricane Sandy",
    date(2012, 10, 30): "Hurricane Sandy",
    date(2018, 12, 5): "National Day of Mourning for President George H. W. Bush",
    date(2025, 1, 9): "National Day of Mourning for President Jimmy Carter",
}

# Early closes outside the yearly rules.
AD_HOC_EARLY_CLOSES: dict[date, str] = {
    date(2003, 12, 26): "Day after Christmas",
}


# ---------------------------------------------------------------------------------------------
# Date arithmetic for the rules


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based) ``weekday`` (0 = Monday) of the month."""
    first = date(year, month, 1)
    offset = (weekday - first.weekday()) % 7
    return first + timedelta(days=offset + 7 * (n - 1))


def last_weekday(year: int, month: int, weekday: int) -> date:
    """The last ``weekday`` (0 = Monday) of the month."""
    next_month = date(year + month // 12, month % 12 + 1, 1)
    last = next_month - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def easter_sunday(year: int) -> date:
    """Western (Gregorian) Easter Sunday, by the anonymous Gregorian algorithm."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


def observed(day: date) -> date:
    """The weekday a fixed-date holiday is observed on: Saturday -> Friday, Sunday -> Monday."""
    if day.weekday() == SAT:
        return day - timedelta(days=1)
    if day.weekday() == SUN:
        return day + timedelta(days=1)
    return day


def observed_new_years_day(year: int) -> date | None:
    """New Year's Day as observed; on a Saturday it is not observed at all.

    NYSE Rule 7.2 keeps the market open on the Friday before when that Friday ends a yearly
    accounting period (e.g. 2010-12-31 and 2021-12-31 were trading days).
    """
    day = date(year, 1, 1)
    if day.weekday() == SAT:
        return None
    return observed(day)


# ---------------------------------------------------------------------------------------------
# The exchange's record, year by year


@lru_cache(maxsize=None)
def rule_holidays(year: int) -> dict[date, str]:
    """Regular full-day holidays of ``year`` (observed dates), without ad-hoc closures."""
    holidays: dict[date, str] = {}
    new_year = observed_new_years_day(year)
    if new_year is not None:
        holidays[new_year] = "New Year's Day"
    holidays[nth_weekday(year, 1, MON, 3)] = "Martin Luther King Jr. Day"
    holidays[nth_weekday(year, 2, MON, 3)] = "Washington's Birthday"
    holidays[easter_sunday(year) - timedelta(days=2)] = "Good Friday"
    holidays[last_weekday(year, 5, MON)] = "Memorial Day"
    if year >= 2022:
        holidays[observed(date(year, 6, 19))] = "Juneteenth National Independence Day"
    holidays[observed(date(year, 7, 4))] = "Independence Day"
    holidays[nth_weekday(year, 9, MON, 1)] = "Labor Day"
    holidays[nth_weekday(year, 11, THU, 4)] = "Thanksgiving Day"
    holidays[observed(date(year, 12, 25))] = "Christmas Day"
    return holidays


def independence_day_early_close(year: int) -> date | None:
    """The early close around Independence Day, if ``year`` has one.

    July 4 on a Tuesday, Wednesday or Friday: July 3 closes early. On a Thursday: until 2012 the
    Friday after (2002-07-05), from 2013 the Wednesday before (2013-07-03, 2019-07-03).
    On a Monday, or on a weekend (observed on July 3 or July 5), there is none.
    """
    weekday = date(year, 7, 4).weekday()
    if weekday in (TUE, WED, FRI):
        return date(year, 7, 3)
    if weekday == THU:
        return date(year, 7, 5) if year < 2013 else date(year, 7, 3)
    return None


def christmas_eve_early_close(year: int) -> date | None:
    """December 24 closes early when it falls Monday to Thursday (on a Friday it is a holiday)."""
    day = date(year, 12, 24)
    return day if day.weekday() in (MON, TUE, WED, THU) else None


@lru_cache(maxsize=None)
def rule_early_closes(year: int) -> dict[date, str]:
    """Regular early closes of ``year`` plus the ad-hoc ones that fall in it."""
    closes: dict[date, str] = {}
    july = independence_day_early_close(year)
    if july is not None:
        closes[july] = "Independence Day (early close)"
    closes[nth_weekday(year, 11, THU, 4) + timedelta(days=1)] = "Day after Thanksgiving"
    eve = christmas_eve_early_close(year)
    if eve is not None:
        closes[eve] = "Christmas Eve"
    closes.update({d: name for d, name in AD_HOC_EARLY_CLOSES.items() if d.year == year})
    return closes


def check_supported(day: date) -> None:
    """Raise CalendarError unless ``day`` lies within the calendar's range."""
    if not FIRST_DATE <= day <= LAST_DATE:
        raise CalendarError(
            f"{day.isoformat()} is outside the trading calendar "
            f"({FIRST_DATE.isoformat()} to {LAST_DATE.isoformat()}); choose a date in that range",
            key="date",
        )
