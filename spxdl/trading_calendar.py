"""Trading days of the NYSE/Cboe (SPX and SPXW options), from 2000 on.

The exchange's record is built from the holiday rules with their observed-day rules, the ad-hoc
full closures and the early closes (13:00 ET for equities, 13:15 ET for SPX options). Every date
decision is made in New York time, whatever the machine's time zone. Closures or early closes
announced after this module was written go into an overrides file (see
``etc/closures.example.txt``) read by :func:`load_calendar`.

This module imports nothing of spxdl but ``errors``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from spxdl.errors import CalendarError

__all__ = [
    "NY",
    "FIRST_DATE",
    "LAST_DATE",
    "SESSION_CLOSE",
    "EARLY_SESSION_CLOSE",
    "TradingCalendar",
    "load_calendar",
    "today_ny",
    "trading_days",
    "is_trading_day",
    "early_close",
    "last_complete_session",
]

log = logging.getLogger(__name__)

NY = ZoneInfo("America/New_York")
DAY_MS = 86_400_000  # a day in milliseconds; times of day are ms after New York midnight
RTH_START_MS = 34_200_000  # 09:30 New York: regular trading hours open
RTH_END_MS = 57_600_000  # 16:00 New York: regular trading hours close

# The ad-hoc record is kept from 2000; later years follow today's rules plus the overrides file.
FIRST_DATE = date(2000, 1, 1)
LAST_DATE = date(2099, 12, 31)

# SPX options trade until 16:15 ET (13:15 on early-close days), 15 minutes after equities.
SESSION_CLOSE = time(16, 15)
EARLY_SESSION_CLOSE = time(13, 15)

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

_OVERRIDE_LINE = re.compile(r"^(?P<day>\S+)\s+(?P<kind>\S+)$")
_OVERRIDE_FIX = "write 'YYYY-MM-DD closed  # reason' or 'YYYY-MM-DD early  # reason'"


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


def as_reasons(entries: Iterable[date] | Iterable[tuple[date, str]] | Mapping[date, str],
               default_reason: str) -> dict[date, str]:
    """Normalise dates, ``(date, reason)`` pairs or a ``{date: reason}`` mapping to a dict."""
    if isinstance(entries, Mapping):
        return dict(entries)
    reasons: dict[date, str] = {}
    for entry in entries:
        if isinstance(entry, date):
            reasons[entry] = default_reason
        else:
            day, reason = entry
            reasons[day] = reason
    return reasons


# ---------------------------------------------------------------------------------------------
# The calendar


AM_SETTLED_ROOTS = frozenset({"SPX"})


CLOSED, EARLY, OPEN = "closed", "early", "open"  # the kinds of day a source outside the rules decides
SESSION_KINDS = (CLOSED, EARLY, OPEN)


class TradingCalendar:
    """The NYSE/Cboe record with optional extra closures and early closes layered on top.

    ``extra_closures`` and ``extra_early_closes`` take dates, ``(date, reason)`` pairs or a
    ``{date: reason}`` mapping. An extra closure wins over any early close of the same day.
    ``sessions`` maps weekdays to ``closed``, ``early`` or ``open`` as another source decided them
    (the terminal's calendar): they win over the rules, the ad-hoc record and the extras.
    """

    def __init__(
        self,
        extra_closures: Iterable[date] | Iterable[tuple[date, str]] | Mapping[date, str] = (),
        extra_early_closes: Iterable[date] | Iterable[tuple[date, str]] | Mapping[date, str] = (),
        sessions: Mapping[date, str] | None = None,
    ) -> None:
        self._extra_closures = as_reasons(extra_closures, "Closure (override)")
        self._extra_early_closes = as_reasons(extra_early_closes, "Early close (override)")
        self._sessions = dict(sessions or {})
        for day in [*self._extra_closures, *self._extra_early_closes, *self._sessions]:
            check_supported(day)
        unknown = sorted({kind for kind in self._sessions.values() if kind not in SESSION_KINDS})
        if unknown:
            raise CalendarError(f"unknown kind(s) of day {', '.join(unknown)}: use {', '.join(SESSION_KINDS)}")
        self._reject_early_closes_on_closed_days()

    def _reject_early_closes_on_closed_days(self) -> None:
        for day in self._extra_early_closes:
            if day not in self._sessions and not self.is_trading_day(day):
                raise CalendarError(
                    f"{day.isoformat()} cannot close early: the exchange is closed that day "
                    f"({self.holiday_name(day) or day.strftime('%A')}); remove the early close",
                    key="date",
                )

    def holiday_name(self, d: date) -> str | None:
        """Why the exchange is closed on ``d``; None on trading days and on plain weekends."""
        check_supported(d)
        if d in self._sessions:
            return "Closed (the terminal's calendar)" if self._sessions[d] == CLOSED else None
        if d in self._extra_closures:
            return self._extra_closures[d]
        if d in AD_HOC_CLOSURES:
            return AD_HOC_CLOSURES[d]
        return rule_holidays(d.year).get(d)

    def is_trading_day(self, d: date) -> bool:
        """True when the exchange holds a session (full or early close) on ``d``."""
        check_supported(d)
        return d.weekday() < SAT and self.holiday_name(d) is None

    def trading_days(self, start: date, end: date) -> list[date]:
        """Trading days from ``start`` to ``end``, inclusive, ascending (empty if end < start)."""
        check_supported(start)
        check_supported(end)
        days = (start + timedelta(days=n) for n in range((end - start).days + 1))
        return [d for d in days if self.is_trading_day(d)]

    def early_close(self, d: date) -> bool:
        """True when ``d`` is a trading day closing early (13:00 ET equities, 13:15 ET SPX)."""
        if not self.is_trading_day(d):
            return False
        if d in self._sessions:
            return self._sessions[d] == EARLY
        return d in self._extra_early_closes or d in rule_early_closes(d.year)

    def kind_of(self, d: date) -> str:
        """``closed``, ``early`` or ``open`` for a weekday ``d`` (weekends are ``closed``)."""
        if not self.is_trading_day(d):
            return CLOSED
        return EARLY if self.early_close(d) else OPEN

    def session_close(self, d: date) -> datetime:
        """The instant the SPX options session of trading day ``d`` ends (16:15 or 13:15 ET)."""
        if not self.is_trading_day(d):
            raise CalendarError(f"{d.isoformat()} is not a trading day; it has no session",
                                key="date")
        close = EARLY_SESSION_CLOSE if self.early_close(d) else SESSION_CLOSE
        return datetime.combine(d, close, tzinfo=NY)

    def previous_trading_day(self, d: date) -> date:
        """The latest trading day strictly before ``d``."""
        day = d - timedelta(days=1)
        while not self.is_trading_day(day):
            day -= timedelta(days=1)
        return day

    def next_trading_day(self, d: date) -> date:
        """The earliest trading day strictly after ``d``."""
        day = d + timedelta(days=1)
        while not self.is_trading_day(day):
            day += timedelta(days=1)
        return day

    def last_trading_day(self, root: str, expiration: date) -> date:
        """The last day an option of ``root`` expiring on ``expiration`` trades.

        AM-settled SPX options stop the business day before their settlement morning (old
        monthlies carry the Saturday after it as their expiration); PM-settled roots (SPXW)
        trade on their expiration day.
        """
        if root not in AM_SETTLED_ROOTS:
            return expiration
        settlement = expiration - timedelta(days=max(0, expiration.weekday() - 4))
        return self.previous_trading_day(settlement)

    def last_complete_session(self, now: datetime | None = None) -> date:
        """The latest trading day whose session had closed at ``now`` (default: the current time).

        Judged in New York time: a day counts once ``now`` is at or after 16:15 ET, or 13:15 ET
        on an early-close day. ``now`` must be timezone-aware.
        """
        now_ny = as_new_york(now)
        today = now_ny.date()
        if self.is_trading_day(today) and now_ny >= self.session_close(today):
            return today
        return self.previous_trading_day(today)


# ---------------------------------------------------------------------------------------------
# New York time


def as_new_york(now: datetime | None) -> datetime:
    """``now`` (default: the current instant) as an aware datetime in New York time."""
    if now is None:
        return datetime.now(NY)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(timezone.utc))")
    return now.astimezone(NY)


def today_ny(now: datetime | None = None) -> date:
    """The calendar date in New York at ``now`` (default: the current instant), whatever TZ says."""
    return as_new_york(now).date()


# ---------------------------------------------------------------------------------------------
# The overrides file


def load_calendar(overrides_path: Path | None, sessions: Mapping[date, str] | None = None) -> TradingCalendar:
    """A calendar with the closures and early closes of ``overrides_path`` (None: no overrides), and
    the ``sessions`` another source decided (the terminal's calendar), which win over both.

    Raises CalendarError naming the file, the line and the fix when the file is missing,
    unreadable or has a malformed line.
    """
    if overrides_path is None:
        return TradingCalendar(sessions=sessions)
    path = Path(overrides_path)
    closures, early_closes = parse_overrides(read_overrides_text(path), path)
    try:
        calendar = TradingCalendar(extra_closures=closures, extra_early_closes=early_closes, sessions=sessions)
    except CalendarError as exc:
        raise CalendarError(f"{path}: {exc}", key="calendar_overrides", source=str(path)) from exc
    log.debug("calendar overrides %s: %d closures, %d early closes",
              path, len(closures), len(early_closes))
    return calendar


def read_overrides_text(path: Path) -> str:
    """The text of the overrides file; CalendarError if it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalendarError(
            f"cannot read the calendar overrides file {path}: {exc}; "
            "fix the path or remove the setting",
            key="calendar_overrides",
            source=str(path),
        ) from exc


def parse_overrides(text: str, path: Path) -> tuple[dict[date, str], dict[date, str]]:
    """Closures and early closes (``{date: reason}``) from the overrides file's text."""
    closures: dict[date, str] = {}
    early_closes: dict[date, str] = {}
    seen: dict[date, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        entry = parse_override_line(line, path, number)
        if entry is None:
            continue
        day, kind, reason = entry
        if day in seen:
            raise override_error(path, number, f"{day.isoformat()} is already listed on line "
                                 f"{seen[day]}", "keep one line per date")
        seen[day] = number
        (closures if kind == "closed" else early_closes)[day] = reason
    return closures, early_closes


def parse_override_line(line: str, path: Path, number: int) -> tuple[date, str, str] | None:
    """``(date, 'closed' | 'early', reason)`` for an entry line; None for blanks and comments."""
    content, _, comment = line.partition("#")
    content = content.strip()
    if not content:
        return None
    match = _OVERRIDE_LINE.match(content)
    if match is None:
        raise override_error(path, number, f"cannot read {content!r}", _OVERRIDE_FIX)
    day = parse_override_date(match["day"], path, number)
    kind = match["kind"].lower()
    if kind not in ("closed", "early"):
        raise override_error(path, number, f"unknown kind {match['kind']!r}",
                             "use 'closed' or 'early'")
    default = "Closure (override)" if kind == "closed" else "Early close (override)"
    return day, kind, comment.strip() or default


def parse_override_date(text: str, path: Path, number: int) -> date:
    """The ``YYYY-MM-DD`` date of an overrides line, within the calendar's range."""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise override_error(path, number, f"{text!r} is not a date", _OVERRIDE_FIX) from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise override_error(path, number, f"{text} is outside the calendar",
                             f"use a date from {FIRST_DATE.isoformat()} to {LAST_DATE.isoformat()}")
    return day


def override_error(path: Path, number: int, problem: str, fix: str) -> CalendarError:
    """A CalendarError naming the overrides file, the line number, the problem and the fix."""
    return CalendarError(
        f"{path}, line {number}: {problem}; {fix}",
        key="calendar_overrides",
        source=f"{path}:{number}",
    )


# ---------------------------------------------------------------------------------------------
# The default calendar (no overrides)

_DEFAULT = TradingCalendar()


def trading_days(start: date, end: date) -> list[date]:
    """Trading days from ``start`` to ``end`` inclusive, by the default calendar."""
    return _DEFAULT.trading_days(start, end)


def is_trading_day(d: date) -> bool:
    """Whether ``d`` is a trading day, by the default calendar."""
    return _DEFAULT.is_trading_day(d)


def early_close(d: date) -> bool:
    """Whether ``d`` is an early-close trading day, by the default calendar."""
    return _DEFAULT.early_close(d)


def last_complete_session(now: datetime | None = None) -> date:
    """The latest trading day whose session had closed at ``now``, by the default calendar."""
    return _DEFAULT.last_complete_session(now)
