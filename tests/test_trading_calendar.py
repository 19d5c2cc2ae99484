"""The trading calendar against the NYSE/Cboe record, New York time and the overrides file.

Expected dates and yearly totals below are the exchange's published record (NYSE holiday and
early-closing notices, Cboe notices), written out by hand: the calendar computes them from rules.
"""

from __future__ import annotations

import ast
import os
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from spxdl import trading_calendar as tc
from spxdl.errors import CalendarError, ConfigError
from spxdl.trading_calendar import NY, TradingCalendar, load_calendar, today_ny

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_OVERRIDES = REPO / "etc" / "closures.example.txt"

CAL = TradingCalendar()


def d(text: str) -> date:
    return date.fromisoformat(text)


def weekdays_of(year: int) -> list[date]:
    first = date(year, 1, 1)
    days = (first + timedelta(days=n) for n in range(366))
    return [day for day in days if day.year == year and day.weekday() < 5]


# ---------------------------------------------------------------------------------------------
# Closures


AD_HOC_CLOSURES = [
    ("2001-09-11", "September 11"),
    ("2001-09-12", "September 11"),
    ("2001-09-13", "September 11"),
    ("2001-09-14", "September 11"),
    ("2004-06-11", "Reagan"),
    ("2007-01-02", "Ford"),
    ("2012-10-29", "Sandy"),
    ("2012-10-30", "Sandy"),
    ("2018-12-05", "Bush"),
    ("2025-01-09", "Carter"),
]


@pytest.mark.parametrize("day, name_part", AD_HOC_CLOSURES)
def test_ad_hoc_closures_are_not_trading_days(day: str, name_part: str) -> None:
    assert not CAL.is_trading_day(d(day))
    assert not tc.is_trading_day(d(day))
    assert name_part in CAL.holiday_name(d(day))


@pytest.mark.parametrize("before, after", [
    ("2001-09-10", "2001-09-17"),
    ("2012-10-26", "2012-10-31"),
    ("2018-12-04", "2018-12-06"),
    ("2025-01-08", "2025-01-10"),
])
def test_trading_resumes_around_ad_hoc_closures(before: str, after: str) -> None:
    assert CAL.next_trading_day(d(before)) == d(after)
    assert CAL.previous_trading_day(d(after)) == d(before)


GOOD_FRIDAYS = [
    "2000-04-21", "2001-04-13", "2002-03-29", "2003-04-18", "2004-04-09", "2005-03-25",
    "2006-04-14", "2007-04-06", "2008-03-21", "2009-04-10", "2010-04-02", "2011-04-22",
    "2012-04-06", "2013-03-29", "2014-04-18", "2015-04-03", "2016-03-25", "2017-04-14",
    "2018-03-30", "2019-04-19", "2020-04-10", "2021-04-02", "2022-04-15", "2023-04-07",
    "2024-03-29", "2025-04-18", "2026-04-03", "2027-03-26", "2030-04-19", "2035-03-23",
]


@pytest.mark.parametrize("day", GOOD_FRIDAYS)
def test_good_friday_is_closed_and_the_thursday_before_open(day: str) -> None:
    good_friday = d(day)
    assert good_friday.weekday() == 4
    assert CAL.holiday_name(good_friday) == "Good Friday"
    assert not CAL.is_trading_day(good_friday)
    assert CAL.is_trading_day(good_friday - timedelta(days=1))
    easter_monday = good_friday + timedelta(days=3)
    assert CAL.previous_trading_day(easter_monday) == good_friday - timedelta(days=1)


@pytest.mark.parametrize("year, easter", [
    (2000, "2000-04-23"), (2008, "2008-03-23"), (2011, "2011-04-24"), (2019, "2019-04-21"),
    (2038, "2038-04-25"), (2285, "2285-03-22"),
])
def test_easter_sunday_including_the_earliest_and_latest_possible(year: int, easter: str) -> None:
    assert tc.easter_sunday(year) == d(easter)


OBSERVED_CLOSED = [
    ("2021-07-05", "Independence Day"),        # July 4 on a Sunday
    ("2020-07-03", "Independence Day"),        # July 4 on a Saturday
    ("2015-07-03", "Independence Day"),
    ("2026-07-03", "Independence Day"),
    ("2021-12-24", "Christmas Day"),           # Christmas on a Saturday
    ("2010-12-24", "Christmas Day"),
    ("2022-12-26", "Christmas Day"),           # Christmas on a Sunday
    ("2023-01-02", "New Year's Day"),          # New Year's Day on a Sunday
    ("2012-01-02", "New Year's Day"),
    ("2006-01-02", "New Year's Day"),
    ("2022-06-20", "Juneteenth National Independence Day"),   # June 19 on a Sunday
    ("2027-06-18", "Juneteenth National Independence Day"),   # June 19 on a Saturday
]


@pytest.mark.parametrize("day, name", OBSERVED_CLOSED)
def test_observed_weekday_holidays_are_closed(day: str, name: str) -> None:
    assert not CAL.is_trading_day(d(day))
    assert CAL.holiday_name(d(day)) == name


OPEN_NEAR_HOLIDAYS = [
    "2021-12-31",   # New Year's Day 2022 on a Saturday: not observed on the Friday before
    "2010-12-31",
    "2004-12-31",
    "2021-06-18",   # Juneteenth became an exchange holiday in 2022 only
    "2020-07-02",   # July 3 closed as the observed Independence Day; July 2 an ordinary day
    "2021-07-02",
    "2021-12-23",
    "2022-12-23",
    "2023-12-22",
    "2022-01-03",
]


@pytest.mark.parametrize("day", OPEN_NEAR_HOLIDAYS)
def test_days_next_to_observed_holidays_are_open(day: str) -> None:
    assert CAL.is_trading_day(d(day))
    assert CAL.holiday_name(d(day)) is None


def test_weekends_are_closed_without_a_holiday_name() -> None:
    saturday, sunday = d("2024-03-16"), d("2024-03-17")
    assert not CAL.is_trading_day(saturday)
    assert not CAL.is_trading_day(sunday)
    assert CAL.holiday_name(saturday) is None
    assert CAL.trading_days(saturday, sunday) == []


HOLIDAYS_2024 = {
    "2024-01-01": "New Year's Day",
    "2024-01-15": "Martin Luther King Jr. Day",
    "2024-02-19": "Washington's Birthday",
    "2024-03-29": "Good Friday",
    "2024-05-27": "Memorial Day",
    "2024-06-19": "Juneteenth National Independence Day",
    "2024-07-04": "Independence Day",
    "2024-09-02": "Labor Day",
    "2024-11-28": "Thanksgiving Day",
    "2024-12-25": "Christmas Day",
}

HOLIDAYS_2025 = {
    "2025-01-01": "New Year's Day",
    "2025-01-09": "National Day of Mourning for President Jimmy Carter",
    "2025-01-20": "Martin Luther King Jr. Day",
    "2025-02-17": "Washington's Birthday",
    "2025-04-18": "Good Friday",
    "2025-05-26": "Memorial Day",
    "2025-06-19": "Juneteenth National Independence Day",
    "2025-07-04": "Independence Day",
    "2025-09-01": "Labor Day",
    "2025-11-27": "Thanksgiving Day",
    "2025-12-25": "Christmas Day",
}


@pytest.mark.parametrize("year, expected", [(2024, HOLIDAYS_2024), (2025, HOLIDAYS_2025)])
def test_every_weekday_closure_of_the_year(year: int, expected: dict[str, str]) -> None:
    closed = {day.isoformat(): CAL.holiday_name(day)
              for day in weekdays_of(year) if not CAL.is_trading_day(day)}
    assert closed == expected


# Published yearly totals of NYSE trading sessions.
PUBLISHED_TRADING_DAYS = {
    2000: 252, 2001: 248, 2004: 252, 2007: 251, 2008: 253, 2012: 250, 2016: 252,
    2018: 251, 2019: 252, 2020: 253, 2021: 252, 2022: 251, 2023: 250, 2024: 252, 2025: 250,
}


@pytest.mark.parametrize("year, count", sorted(PUBLISHED_TRADING_DAYS.items()))
def test_trading_days_per_year_match_the_published_totals(year: int, count: int) -> None:
    assert len(tc.trading_days(date(year, 1, 1), date(year, 12, 31))) == count


JUNETEENTH = "Juneteenth National Independence Day"
REGULAR_HOLIDAYS = {
    "New Year's Day", "Martin Luther King Jr. Day", "Washington's Birthday", "Good Friday",
    "Memorial Day", "Independence Day", "Labor Day", "Thanksgiving Day", "Christmas Day",
}


@pytest.mark.parametrize("year", range(2000, 2036))
def test_every_regular_holiday_closes_one_weekday_each_year(year: int) -> None:
    names = [CAL.holiday_name(day) for day in weekdays_of(year) if not CAL.is_trading_day(day)]
    expected = set(REGULAR_HOLIDAYS)
    if year >= 2022:
        expected.add(JUNETEENTH)
    if date(year, 1, 1).weekday() == 5:
        expected.discard("New Year's Day")
    regular = [name for name in names if name in REGULAR_HOLIDAYS | {JUNETEENTH}]
    assert sorted(regular) == sorted(expected)


@pytest.mark.parametrize("year", [2005, 2011, 2022, 2028, 2033])
def test_new_years_day_on_a_saturday_is_observed_on_no_day(year: int) -> None:
    assert date(year, 1, 1).weekday() == 5
    assert "New Year's Day" not in tc.rule_holidays(year).values()
    assert CAL.is_trading_day(date(year - 1, 12, 31))


# ---------------------------------------------------------------------------------------------
# Early closes


EARLY_CLOSES = [
    # the day after Thanksgiving
    "2000-11-24", "2001-11-23", "2005-11-25", "2012-11-23", "2020-11-27", "2024-11-29",
    "2025-11-28", "2026-11-27",
    # Christmas Eve on a weekday (not on a Friday, when it is the observed holiday)
    "2001-12-24", "2002-12-24", "2003-12-24", "2007-12-24", "2008-12-24", "2009-12-24",
    "2012-12-24", "2013-12-24", "2014-12-24", "2015-12-24", "2018-12-24", "2019-12-24",
    "2020-12-24", "2024-12-24", "2025-12-24", "2026-12-24",
    # before Independence Day
    "2000-07-03", "2001-07-03", "2003-07-03", "2006-07-03", "2007-07-03", "2008-07-03",
    "2012-07-03", "2013-07-03", "2014-07-03", "2017-07-03", "2018-07-03", "2019-07-03",
    "2023-07-03", "2024-07-03", "2025-07-03",
    # irregular ones
    "2002-07-05",   # July 4 on a Thursday before 2013: the Friday after closed early
    "2003-12-26",   # the day after Christmas 2003
]


@pytest.mark.parametrize("day", EARLY_CLOSES)
def test_early_closes(day: str) -> None:
    assert CAL.is_trading_day(d(day))
    assert CAL.early_close(d(day))
    assert tc.early_close(d(day))


FULL_DAYS_NEAR_EARLY_CLOSES = [
    "2002-07-03",   # July 4, 2002 on a Thursday: the early close was July 5
    "2013-07-05",   # from 2013 the Wednesday before closes early, the Friday after is full
    "2015-07-02", "2020-07-02", "2026-07-02", "2009-07-02",   # July 3 was the observed holiday
    "2004-07-02", "2010-07-02", "2021-07-02",                 # July 5 was the observed holiday
    "2004-12-23", "2010-12-23", "2021-12-23",                 # Christmas Eve was the holiday
    "2008-12-26", "2014-12-26", "2025-12-26", "2024-12-26",
    "2021-12-31", "2024-12-31",
    "2024-11-27",
]


@pytest.mark.parametrize("day", FULL_DAYS_NEAR_EARLY_CLOSES)
def test_full_sessions_next_to_early_closes(day: str) -> None:
    assert CAL.is_trading_day(d(day))
    assert not CAL.early_close(d(day))


@pytest.mark.parametrize("year, expected", [
    (2024, ["2024-07-03", "2024-11-29", "2024-12-24"]),
    (2025, ["2025-07-03", "2025-11-28", "2025-12-24"]),
    (2026, ["2026-11-27", "2026-12-24"]),
    (2002, ["2002-07-05", "2002-11-29", "2002-12-24"]),
    (2003, ["2003-07-03", "2003-11-28", "2003-12-24", "2003-12-26"]),
])
def test_every_early_close_of_the_year(year: int, expected: list[str]) -> None:
    days = CAL.trading_days(date(year, 1, 1), date(year, 12, 31))
    assert [day.isoformat() for day in days if CAL.early_close(day)] == expected


def test_closed_days_are_never_early_closes() -> None:
    assert not CAL.early_close(d("2025-12-25"))
    assert not CAL.early_close(d("2024-03-16"))


def test_session_close_is_1615_or_1315_new_york_time() -> None:
    assert CAL.session_close(d("2024-03-14")) == datetime(2024, 3, 14, 16, 15, tzinfo=NY)
    assert CAL.session_close(d("2024-11-29")) == datetime(2024, 11, 29, 13, 15, tzinfo=NY)
    with pytest.raises(CalendarError):
        CAL.session_close(d("2024-11-28"))


# ---------------------------------------------------------------------------------------------
# Ranges and neighbours


def test_trading_days_is_inclusive_ascending_and_skips_closures() -> None:
    days = tc.trading_days(d("2024-03-27"), d("2024-04-02"))
    assert days == [d("2024-03-27"), d("2024-03-28"), d("2024-04-01"), d("2024-04-02")]
    assert tc.trading_days(d("2024-04-02"), d("2024-03-27")) == []
    assert tc.trading_days(d("2024-03-29"), d("2024-03-29")) == []


@pytest.mark.parametrize("day, previous, following", [
    ("2024-01-02", "2023-12-29", "2024-01-03"),
    ("2024-04-01", "2024-03-28", "2024-04-02"),
    ("2024-03-16", "2024-03-15", "2024-03-18"),
    ("2012-10-29", "2012-10-26", "2012-10-31"),
    ("2001-09-11", "2001-09-10", "2001-09-17"),
])
def test_previous_and_next_trading_day_are_strict(day: str, previous: str, following: str) -> None:
    assert CAL.previous_trading_day(d(day)) == d(previous)
    assert CAL.next_trading_day(d(day)) == d(following)


@pytest.mark.parametrize("call", [
    lambda: tc.is_trading_day(date(1999, 12, 31)),
    lambda: tc.trading_days(date(1999, 12, 1), date(2000, 1, 31)),
    lambda: CAL.previous_trading_day(date(2000, 1, 3)),
    lambda: tc.is_trading_day(date(2100, 1, 4)),
])
def test_dates_outside_the_calendar_raise_calendar_error(call) -> None:
    with pytest.raises(CalendarError, match="outside the trading calendar"):
        call()


@pytest.mark.parametrize("path", sorted(Path(tc.__file__).parent.glob("*.py")), ids=lambda path: path.name)
def test_package_imports_nothing_of_spxdl_but_errors(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    modules |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    outside = {m for m in modules if m and m.startswith("spxdl") and not m.startswith("spxdl.trading_calendar")}
    assert outside <= {"spxdl.errors"}


# ---------------------------------------------------------------------------------------------
# New York time


@pytest.mark.parametrize("now_utc, expected", [
    ("2024-03-14T20:14:59", "2024-03-13"),   # 16:14:59 EDT: Thursday's session still open
    ("2024-03-14T20:15:00", "2024-03-14"),   # 16:15 EDT: closed
    ("2024-03-15T03:30:00", "2024-03-14"),   # 23:30 EDT, already Friday in UTC
    ("2024-03-11T20:15:00", "2024-03-11"),   # the Monday after DST began
    ("2024-03-11T19:15:00", "2024-03-08"),   # 15:15 EDT; 16:15 in EST terms would be wrong
    ("2024-01-05T21:14:00", "2024-01-04"),   # 16:14 EST
    ("2024-01-05T21:15:00", "2024-01-05"),   # 16:15 EST
    ("2024-11-29T18:14:00", "2024-11-27"),   # 13:14 EST on an early close; Thanksgiving closed
    ("2024-11-29T18:15:00", "2024-11-29"),   # 13:15 EST: the early session is over
    ("2024-03-16T18:00:00", "2024-03-15"),   # Saturday
    ("2024-04-01T12:00:00", "2024-03-28"),   # Monday morning after Good Friday
    ("2025-01-10T14:00:00", "2025-01-08"),   # the morning after the Carter closure
])
def test_last_complete_session(now_utc: str, expected: str) -> None:
    now = datetime.fromisoformat(now_utc).replace(tzinfo=timezone.utc)
    assert CAL.last_complete_session(now) == d(expected)
    assert tc.last_complete_session(now) == d(expected)


def test_last_complete_session_accepts_any_time_zone() -> None:
    tokyo = datetime(2024, 3, 15, 5, 15, tzinfo=ZoneInfo("Asia/Tokyo"))   # 16:15 EDT on 03-14
    assert CAL.last_complete_session(tokyo) == d("2024-03-14")


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.last_complete_session(datetime(2024, 3, 14, 17, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        today_ny(datetime(2024, 3, 14, 17, 0))


def test_today_ny_is_the_new_york_date_of_a_utc_instant() -> None:
    # 02:00 UTC on 03-15 is 22:00 EDT on 03-14.
    assert today_ny(datetime(2024, 3, 15, 2, 0, tzinfo=timezone.utc)) == d("2024-03-14")
    assert today_ny(datetime(2024, 3, 15, 4, 0, tzinfo=timezone.utc)) == d("2024-03-15")


@pytest.fixture
def tokyo_machine(monkeypatch: pytest.MonkeyPatch):
    """The process's local time zone set to Asia/Tokyo (UTC+9), restored afterwards."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    assert time.localtime(0).tm_hour == 9
    yield
    monkeypatch.undo()
    time.tzset()


def test_new_york_dates_do_not_depend_on_the_machine_time_zone(tokyo_machine) -> None:
    assert os.environ["TZ"] == "Asia/Tokyo"
    # 10:00 on 03-15 in Tokyo is 21:00 EDT on 03-14.
    now = datetime(2024, 3, 15, 1, 0, tzinfo=timezone.utc)
    assert datetime.fromtimestamp(now.timestamp()).date() == d("2024-03-15")   # local: Tokyo
    assert today_ny(now) == d("2024-03-14")
    assert tc.last_complete_session(now) == d("2024-03-14")


def test_default_now_is_new_york_time_on_a_tokyo_machine(tokyo_machine) -> None:
    before = datetime.now(timezone.utc).astimezone(NY).date()
    result = today_ny()
    after = datetime.now(timezone.utc).astimezone(NY).date()
    assert result in (before, after)
    session = tc.last_complete_session()
    assert tc.is_trading_day(session)
    assert session <= result


# ---------------------------------------------------------------------------------------------
# Overrides


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "closures.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_overrides_file_adds_closures_and_early_closes(tmp_path: Path) -> None:
    path = write(tmp_path, (
        "# announced after release\n"
        "\n"
        "2030-01-04 closed  # National Day of Mourning\n"
        "   2030-12-31   EARLY\t# early close by notice\n"
        "2031-03-03 closed\n"
    ))
    calendar = load_calendar(path)
    assert not calendar.is_trading_day(d("2030-01-04"))
    assert calendar.holiday_name(d("2030-01-04")) == "National Day of Mourning"
    assert calendar.holiday_name(d("2031-03-03")) == "Closure (override)"
    assert calendar.early_close(d("2030-12-31"))
    assert calendar.next_trading_day(d("2030-01-03")) == d("2030-01-07")
    # the default calendar is untouched
    assert tc.is_trading_day(d("2030-01-04"))
    assert not tc.early_close(d("2030-12-31"))


def test_an_override_closure_wins_over_a_rule_early_close(tmp_path: Path) -> None:
    calendar = load_calendar(write(tmp_path, "2026-12-24 closed  # whole day off\n"))
    assert not calendar.is_trading_day(d("2026-12-24"))
    assert not calendar.early_close(d("2026-12-24"))


def test_no_overrides_path_gives_the_default_record() -> None:
    calendar = load_calendar(None)
    assert calendar.trading_days(d("2024-01-01"), d("2024-12-31")) == \
        tc.trading_days(d("2024-01-01"), d("2024-12-31"))


def test_constructor_takes_dates_pairs_or_a_mapping() -> None:
    calendar = TradingCalendar(
        extra_closures=[d("2030-01-04"), (d("2030-01-07"), "storm")],
        extra_early_closes={d("2030-01-08"): "notice"},
    )
    assert calendar.holiday_name(d("2030-01-04")) == "Closure (override)"
    assert calendar.holiday_name(d("2030-01-07")) == "storm"
    assert calendar.early_close(d("2030-01-08"))


def test_the_example_file_loads_and_its_examples_parse(tmp_path: Path) -> None:
    example = EXAMPLE_OVERRIDES.read_text(encoding="utf-8")
    default_days = tc.trading_days(d("2030-01-01"), d("2030-12-31"))
    from_example = load_calendar(EXAMPLE_OVERRIDES)
    assert from_example.trading_days(d("2030-01-01"), d("2030-12-31")) == default_days
    examples = [line[2:] for line in example.splitlines() if line.startswith("# 20")]
    assert len(examples) == 2
    calendar = load_calendar(write(tmp_path, "\n".join(examples) + "\n"))
    assert not calendar.is_trading_day(d("2030-01-04"))
    assert calendar.early_close(d("2030-12-31"))


MALFORMED = [
    ("2030-01-04\n", 1, "cannot read"),
    ("# ok\n2030-01-04 closed now  # extra word\n", 2, "cannot read"),
    ("\n\n2030-13-01 closed\n", 3, "is not a date"),
    ("01/04/2030 closed\n", 1, "is not a date"),
    ("2030-1-4 closed\n", 1, "is not a date"),
    ("2030-01-04 shut  # typo\n", 1, "unknown kind 'shut'"),
    ("2030-01-04 closed\n2030-01-04 early\n", 2, "already listed on line 1"),
    ("1999-12-30 closed\n", 1, "outside the calendar"),
]


@pytest.mark.parametrize("text, line, problem", MALFORMED)
def test_malformed_lines_name_the_file_the_line_and_the_fix(
        tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CalendarError) as caught:
        load_calendar(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"line {line}:" in message
    assert problem in message
    assert caught.value.source == f"{path}:{line}"
    assert isinstance(caught.value, ConfigError)


def test_malformed_line_messages_say_how_to_write_an_entry(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match=r"write 'YYYY-MM-DD closed  # reason'"):
        load_calendar(write(tmp_path, "tomorrow closed\n"))


def test_an_early_close_on_a_closed_day_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "2025-12-25 early  # mistaken\n")
    with pytest.raises(CalendarError, match="Christmas Day") as caught:
        load_calendar(path)
    assert str(path) in str(caught.value)


def test_a_missing_overrides_file_is_a_calendar_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.txt"
    with pytest.raises(CalendarError, match="nope.txt") as caught:
        load_calendar(path)
    assert caught.value.source == str(path)


def test_last_trading_day_of_am_settled_spx_is_the_day_before_settlement():
    cal = TradingCalendar()
    assert cal.last_trading_day("SPX", date(2024, 1, 19)) == date(2024, 1, 18)  # 3rd Friday, settles at the open
    assert cal.last_trading_day("SPX", date(2014, 1, 18)) == date(2014, 1, 16)  # an old Saturday expiration
    assert cal.last_trading_day("SPX", date(2019, 4, 18)) == date(2019, 4, 17)  # Good Friday moved it to Thursday
    assert cal.last_trading_day("SPXW", date(2024, 1, 19)) == date(2024, 1, 19)  # PM-settled: trades that day


# ---------------------------------------------------------------------------------------------
# days another source decides (the terminal's calendar)


def test_sessions_another_source_decides_win_over_the_rules_and_the_overrides(tmp_path):
    good_friday, ordinary, eve = date(2024, 3, 29), date(2024, 3, 13), date(2024, 12, 24)
    decided = TradingCalendar(sessions={good_friday: "open", ordinary: "closed", eve: "open"})
    assert decided.is_trading_day(good_friday) and not decided.early_close(good_friday)
    assert not decided.is_trading_day(ordinary) and decided.holiday_name(ordinary) == "Closed (the terminal's calendar)"
    assert decided.is_trading_day(eve) and not decided.early_close(eve)
    assert [decided.kind_of(day) for day in (good_friday, ordinary, eve, date(2024, 3, 16))] == [
        "open", "closed", "open", "closed"]
    overrides = tmp_path / "closures.txt"
    overrides.write_text("2024-03-13 early  # the file says early, the terminal closed\n")
    loaded = load_calendar(overrides, {ordinary: "closed"})
    assert not loaded.is_trading_day(ordinary)
    with pytest.raises(CalendarError, match="unknown kind"):
        TradingCalendar(sessions={ordinary: "half"})
