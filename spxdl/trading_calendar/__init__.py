"""Trading days of the NYSE/Cboe (SPX and SPXW options), from 2000 on.

The exchange's record is built from the holiday rules with their observed-day rules, the ad-hoc
full closures and the early closes (13:00 ET for equities, 13:15 ET for SPX options). Every date
decision is made in New York time, whatever the machine's time zone. Closures or early closes
announced after the rules were written go into an overrides file (see
``etc/closures.example.txt``) read by :func:`load_calendar`.

Laid out one responsibility per module, each importing only those above it in this list:

- ``rules``: the exchange's record: holiday and early-close rules, the ad-hoc closures, the range;
- ``sessions``: ``TradingCalendar``, New York time, the default calendar's functions;
- ``overrides``: the overrides file, read into a calendar (``load_calendar``).

The package imports nothing of spxdl but ``errors``. Everything importable from
``spxdl.trading_calendar`` before it became a package still is.
"""

from spxdl.trading_calendar.rules import (
    AD_HOC_CLOSURES, AD_HOC_EARLY_CLOSES, FIRST_DATE, FRI, LAST_DATE, MON, SAT, SUN, THU, TUE, WED,
    check_supported, christmas_eve_early_close, easter_sunday, independence_day_early_close, last_weekday,
    nth_weekday, observed, observed_new_years_day, rule_early_closes, rule_holidays,
)
from spxdl.trading_calendar.sessions import (
    AM_SETTLED_ROOTS, CLOSED, DAY_MS, EARLY, EARLY_SESSION_CLOSE, NY, OPEN, RTH_END_MS, RTH_START_MS,
    SESSION_CLOSE, SESSION_KINDS, TradingCalendar, as_new_york, as_reasons, early_close, is_trading_day,
    last_complete_session, today_ny, trading_days,
)
from spxdl.trading_calendar.overrides import (
    load_calendar, override_error, parse_override_date, parse_override_line, parse_overrides,
    read_overrides_text,
)

__all__ = [
    "NY", "FIRST_DATE", "LAST_DATE", "SESSION_CLOSE", "EARLY_SESSION_CLOSE", "TradingCalendar", "load_calendar",
    "today_ny", "trading_days", "is_trading_day", "early_close", "last_complete_session",
]
