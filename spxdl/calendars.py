"""The terminal's exchange calendar against spxdl's: fetched, compared day by day, and put in charge on request.

v3 terminals serve the exchange's holidays and early closes per year (``/v3/calendar/year_holidays``,
from 2012 to the end of next year). spxdl keeps its own calendar (``trading_calendar``, plus the
overrides file); when the two disagree a closure announced after a release is the usual reason.
``health`` and ``doctor`` name every day where they differ; with ``[calendar] source = terminal``
the terminal's days win (``with_terminal_calendar``), so that no overrides file is needed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Iterable, Mapping

from spxdl.config import Settings
from spxdl.errors import ConfigError, DataError, NoData
from spxdl.trading_calendar import CLOSED, EARLY, OPEN, TradingCalendar, today_ny

if TYPE_CHECKING:
    from spxdl.terminal import TerminalClient

log = logging.getLogger(__name__)

FIRST_TERMINAL_YEAR = 2012  # the vendor's calendar starts here
# The terminal's words for a day (a third-party client names open, early_close, full_close, weekend).
WORDS = {"open": OPEN, "early_close": EARLY, "full_close": CLOSED, "weekend": CLOSED, "closed": CLOSED,
         "holiday": CLOSED, "early": EARLY}
SAID = {CLOSED: "closed", EARLY: "an early close", OPEN: "a regular session"}


@dataclass(frozen=True)
class DayDifference:
    """One weekday the terminal's calendar and spxdl's see differently."""

    day: date
    terminal: str  # closed, early or open
    spxdl: str

    def describe(self) -> str:
        return f"{self.day} ({self.day:%a}): the terminal says {SAID[self.terminal]}, spxdl's calendar {SAID[self.spxdl]}"


def day_kind(word: str, day: date | None = None) -> str:
    """``closed``, ``early`` or ``open`` for the terminal's word; DataError for a word spxdl does not know."""
    kind = WORDS.get(word.strip().lower())
    if kind is None:
        where = f" for {day}" if day else ""
        raise DataError(f"the terminal's calendar says {word!r}{where}, a kind of day spxdl does not know "
                        f"(known: {', '.join(sorted(WORDS))})")
    return kind


def terminal_days(client: TerminalClient, years: Iterable[int]) -> dict[date, str]:
    """The terminal's non-regular weekdays of ``years`` (from 2012 on): day -> closed or early."""
    days: dict[date, str] = {}
    for year in sorted(set(years)):
        if year < FIRST_TERMINAL_YEAR:
            continue
        try:
            rows = client.holidays(year)
        except NoData:
            log.info("the terminal's calendar has no data for %d", year)
            continue
        for row in rows:
            if row.day is not None and row.day.weekday() < 5:
                days[row.day] = day_kind(row.kind, row.day)
    return days


def weekdays(years: Iterable[int]) -> Iterable[date]:
    for year in sorted(set(years)):
        day = date(year, 1, 1)
        while day.year == year:
            if day.weekday() < 5:
                yield day
            day += timedelta(days=1)


def differences(calendar: TradingCalendar, terminal: Mapping[date, str], years: Iterable[int]) -> list[DayDifference]:
    """Every weekday of ``years`` (from 2012) where ``terminal`` (absent: a regular session) and ``calendar`` differ."""
    found = []
    for day in weekdays(year for year in years if year >= FIRST_TERMINAL_YEAR):
        theirs, ours = terminal.get(day, OPEN), calendar.kind_of(day)
        if theirs != ours:
            found.append(DayDifference(day, theirs, ours))
    return found


def comparison_years(today: date | None = None) -> tuple[int, int]:
    """The years ``health`` and ``doctor`` compare: the current one and the next (New York time)."""
    year = (today or today_ny()).year
    return year, year + 1


def with_terminal_calendar(settings: Settings, client: TerminalClient, years: Iterable[int]) -> Settings:
    """``settings`` whose calendar lets the terminal's days of ``years`` win (``[calendar] source = terminal``).

    Unchanged when the source is ``builtin``. ConfigError when the terminal does not serve a
    calendar (API v2).
    """
    if settings.calendar_source != "terminal":
        return settings
    client.connect()
    if client.api != "v3":
        raise ConfigError(
            "[calendar] source = terminal needs the calendar of a v3 terminal, and this one speaks v2: "
            "set source = builtin (and list closures in the overrides file), or use a v3 terminal",
            key="calendar.source",
        )
    years = tuple(years)
    found = differences(settings.calendar(), terminal_days(client, years), years)
    for difference in found:
        log.info("calendar: %s; the terminal's answer wins ([calendar] source = terminal)", difference.describe())
    decided = tuple(sorted({*settings.calendar_sessions, *((d.day, d.terminal) for d in found)}))
    return settings.replace(calendar_sessions=decided)
