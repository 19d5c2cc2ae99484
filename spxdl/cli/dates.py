"""The dates a command takes, judged by the calendar it uses (spxdl's, or the terminal's).

``--date``, ``--start``/``--end`` and ``--days-back`` become a range of complete sessions, or one
line saying why not (a reversed, future or sessionless range) and which sessions lie around it.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Iterable

from spxdl import calendars, config, errors, trading_calendar
from spxdl.engine.planning import days_back_range
from spxdl.engine.shared import client_for

log = logging.getLogger(__name__)


def parse_cli_date(text: str, option: str) -> date:
    """A date given on the command line, or a one-line error naming the option."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise errors.ConfigError(f"{option} {text!r} is not a date; write it as YYYY-MM-DD, e.g. 2024-03-14") from None


def check_range(cal: trading_calendar.TradingCalendar, start: date, end: date, last_session: date) -> tuple[date, date]:
    """Refuse reversed, wholly future or sessionless ranges; clamp an end past the last complete session."""
    if start > last_session:
        raise errors.ConfigError(
            f"{start} has no complete session yet (the latest is {last_session}, New York time); "
            "pick dates up to that day"
        )
    if end < start:
        raise errors.ConfigError(f"the end date {end} is before the start date {start}; swap them")
    if end > last_session:
        log.info("end date %s is after the latest complete session; using %s", end, last_session)
        end = last_session
    if not cal.trading_days(start, end):
        raise errors.ConfigError(no_session_message(cal, start, end, last_session))
    return start, end


def no_session_message(cal: trading_calendar.TradingCalendar, start: date, end: date, last_session: date) -> str:
    """Why ``start..end`` holds no session, and the sessions on either side of it."""
    if start == end:
        holiday = cal.holiday_name(start)
        why = f"markets closed: {holiday}" if holiday else f"a {start:%A}"
        what = f"{start} is not a trading day ({why})"
    else:
        what = f"{start} .. {end} holds no trading day"
    before = cal.previous_trading_day(start)
    after = cal.next_trading_day(end)
    around = f"{before} and {after}" if after <= last_session else f"{before} (the latest complete one)"
    return f"{what}; the sessions around it are {around}"


def resolve_run_dates(
    cal: trading_calendar.TradingCalendar,
    last_session: date,
    *,
    on: str | None,
    start: str | None,
    end: str | None,
    days_back: int | None,
) -> tuple[date, date] | None:
    """The range ``run`` was asked for, or ``None`` when no dates were given (update's case)."""
    given = [name for name, value in (("--date", on), ("--start", start), ("--days-back", days_back)) if value is not None]
    if len(given) > 1:
        raise errors.ConfigError(f"use only one of {', '.join(given)}")
    if end is not None and start is None:
        raise errors.ConfigError("--end needs --start")
    if on is not None:
        day = parse_cli_date(on, "--date")
        return check_range(cal, day, day, last_session)
    if start is not None:
        first = parse_cli_date(start, "--start")
        last = parse_cli_date(end, "--end") if end is not None else last_session
        return check_range(cal, first, last, last_session)
    if days_back is not None:
        if days_back < 1:
            raise errors.ConfigError("--days-back must be 1 or more")
        return days_back_range(cal, last_session, days_back)
    return None


def calendar_for(settings: config.Settings) -> trading_calendar.TradingCalendar:
    """The calendar ``settings`` name: spxdl's rules, its overrides file and any sessions decided elsewhere."""
    return settings.calendar()


def terminal_calendar(settings: config.Settings, years: Iterable[int], *, required: bool = True) -> config.Settings:
    """``settings`` with the terminal's calendar in charge of ``years`` when ``[calendar] source = terminal``.

    A command that only reads (``required=False``) goes on with spxdl's calendar, saying so, when
    the terminal cannot be asked.
    """
    if settings.calendar_source != "terminal":
        return settings
    try:
        with client_for(settings, threads=1) as client:
            return calendars.with_terminal_calendar(settings, client, years)
    except errors.TerminalError as exc:
        if required:
            raise
        log.warning("[calendar] source = terminal, but the terminal could not be asked (%s); "
                    "using spxdl's calendar", exc)
        return settings
