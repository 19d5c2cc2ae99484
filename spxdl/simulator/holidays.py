"""The v3 calendar: a year's holidays and early closes, and one day's schedule, from the simulator's calendar.

The simulator's calendar is the built-in one plus the closures it was started with
(``Simulator(calendar_closures=...)``), so a test can make it differ from spxdl's. The words and
times are guesses (docs/simulator.md): ``full_close`` with empty times, ``early_close`` 09:30 to
13:00 (the equity close the vendor's calendar describes), ``open`` 09:30 to 16:00, ``weekend``.
"""

from __future__ import annotations

from datetime import date, timedelta

from spxdl.errors import CalendarError
from spxdl.simulator import wire
from spxdl.simulator.columns import CALENDAR_DAY_COLUMNS, CALENDAR_YEAR_COLUMNS
from spxdl.simulator.params import Problem
from spxdl.trading_calendar import FIRST_DATE, LAST_DATE, TradingCalendar

OPEN_TIME, CLOSE_TIME, EARLY_CLOSE_TIME = "09:30:00", "16:00:00", "13:00:00"
NO_DATA_TEXT = "No data for the specified timeframe and chain. Debug code 1"


def day_row(calendar: TradingCalendar, day: date) -> tuple[str, str, str]:
    """(type, open, close) of one day."""
    if day.weekday() >= 5:
        return "weekend", "", ""
    if not calendar.is_trading_day(day):
        return "full_close", "", ""
    if calendar.early_close(day):
        return "early_close", OPEN_TIME, EARLY_CLOSE_TIME
    return "open", OPEN_TIME, CLOSE_TIME


def year_body(calendar: TradingCalendar, year_text: str, fmt: str) -> bytes:
    """Every weekday of the year that is not a regular session, ascending."""
    if not year_text.isdigit():
        raise Problem(473, f"Invalid parameters: year={year_text!r} is not a year")
    year = int(year_text)
    if not FIRST_DATE.year <= year <= LAST_DATE.year:
        raise Problem(472, NO_DATA_TEXT)
    day, rows = date(year, 1, 1), []
    while day.year == year:
        kind, opens, closes = day_row(calendar, day)
        if kind not in ("open", "weekend"):
            rows.append((day.isoformat(), kind, opens, closes))
        day += timedelta(days=1)
    return _body(CALENDAR_YEAR_COLUMNS, rows, fmt)


def on_date_body(calendar: TradingCalendar, day: date, fmt: str) -> bytes:
    """The schedule of one day."""
    try:
        row = day_row(calendar, day)
    except CalendarError:
        raise Problem(472, NO_DATA_TEXT) from None
    return _body(CALENDAR_DAY_COLUMNS, [row], fmt)


def _body(columns: tuple[str, ...], rows: list[tuple[str, ...]], fmt: str) -> bytes:
    if fmt == "csv":
        return wire.csv_table(columns, rows)
    objects = ("{" + ",".join('"%s":%s' % (name, '"%s"' % value if value else "null")
                              for name, value in zip(columns, row)) + "}" for row in rows)
    return wire.v3_json_list(objects)
