"""``TradingCalendar``: which days of the NYSE/Cboe hold a session and when it closes, in New York time.

The calendar layers extra closures and early closes (the overrides file's) and another source's
decisions (the terminal's calendar) over the exchange's record (``rules``). Every date decision is
made in New York time, whatever the machine's time zone. The module-level functions ask the
default calendar (no overrides).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from spxdl.errors import CalendarError
from spxdl.trading_calendar.rules import (
    AD_HOC_CLOSURES,
    SAT,
    check_supported,
    rule_early_closes,
    rule_holidays,
)

NY = ZoneInfo("America/New_York")
DAY_MS = 86_400_000  # a day in milliseconds; times of day are ms after New York midnight
RTH_START_MS = 34_200_000  # 09:30 New York: regular trading hours open
RTH_END_MS = 57_600_000  # 16:00 New York: regular trading hours close

# SPX options trade until 16:15 ET (13:15 on early-close days), 15 minutes after equities.
SESSION_CLOSE = time(16, 15)
EARLY_SESSION_CLOSE = time(13, 15)


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
