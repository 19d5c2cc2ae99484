"""The terminal's calendar against spxdl's: fetched from the simulator, compared, and put in charge of a run."""

from __future__ import annotations

from datetime import date

import pytest

from engine_helpers import make_settings
from spxdl import calendars, engine
from spxdl.config import Settings
from spxdl.errors import ConfigError, DataError
from spxdl.simulator import Simulator
from spxdl.terminal import TerminalClient
from spxdl.trading_calendar import TradingCalendar

CLOSURE = date(2024, 3, 13)  # a Wednesday the simulator's calendar is told is closed
EARLY = date(2024, 7, 3)  # the built-in calendar's early close


@pytest.fixture(scope="module", name="closed_sim")
def fixture_closed_sim():
    with Simulator(calendar_closures={CLOSURE: "a closure spxdl does not know"}) as sim:
        yield sim


def test_the_terminals_days_and_where_they_differ(closed_sim):
    with TerminalClient(closed_sim.url, api="v3") as client:
        days = calendars.terminal_days(client, [2024, 2011])  # 2011 is before the terminal's calendar
    assert days[CLOSURE] == "closed" and days[EARLY] == "early" and days[date(2024, 3, 29)] == "closed"
    assert all(day.year == 2024 and day.weekday() < 5 for day in days)
    found = calendars.differences(TradingCalendar(), days, [2024])
    assert found == [calendars.DayDifference(CLOSURE, "closed", "open")]
    assert found[0].describe() == "2024-03-13 (Wed): the terminal says closed, spxdl's calendar a regular session"


def test_a_word_spxdl_does_not_know_is_an_error_naming_it():
    assert calendars.day_kind("early_close") == "early" and calendars.day_kind("WEEKEND") == "closed"
    with pytest.raises(DataError, match="'half_day' for 2024-03-13"):
        calendars.day_kind("half_day", CLOSURE)


def test_with_the_terminal_in_charge_a_run_leaves_its_closure_out(closed_sim, tmp_path):
    builtin = make_settings(tmp_path, closed_sim.url)
    terminal = builtin.replace(calendar_source="terminal")
    with TerminalClient(closed_sim.url, api="v3") as client:
        assert calendars.with_terminal_calendar(builtin, client, [2024]) is builtin
        resolved = calendars.with_terminal_calendar(terminal, client, [2024])
    assert resolved.calendar_sessions == ((CLOSURE, "closed"),)
    assert not resolved.calendar().is_trading_day(CLOSURE)
    days = {task.trade_date for task in engine.plan(resolved, date(2024, 3, 12), date(2024, 3, 14)).tasks}
    assert days == {date(2024, 3, 12), date(2024, 3, 14)}
    assert CLOSURE in {task.trade_date for task in engine.plan(builtin, date(2024, 3, 12), date(2024, 3, 14)).tasks}


def test_the_terminal_in_charge_needs_a_v3_terminal(closed_sim):
    with TerminalClient(closed_sim.url, api="v2") as client:
        with pytest.raises(ConfigError, match="needs the calendar of a v3 terminal"):
            calendars.with_terminal_calendar(Settings(calendar_source="terminal"), client, [2024])


def test_a_cli_run_with_the_terminal_in_charge_skips_the_closure(closed_sim, isolated):
    from click.testing import CliRunner

    from spxdl import cli

    result = CliRunner().invoke(cli.cli, ["run", "--terminal-url", closed_sim.url, "--start", "2024-03-12", "--end",
                                          "2024-03-14", "--max-dte", "2", "--workers", "1", "--dry-run"],
                                env={"SPXDL_CALENDAR_SOURCE": "terminal"}, catch_exceptions=False)
    assert result.exit_code == 0, result.output + result.stderr
    assert "greeks-1m/SPXW/2024-03-12" in result.output and "greeks-1m/SPXW/2024-03-14" in result.output
    assert "greeks-1m/SPXW/2024-03-13" not in result.output
    assert "2024-03-13 (Wed): the terminal says closed" in result.stderr


def test_gaps_follow_the_terminals_calendar_and_without_a_terminal_spxdls(closed_sim, isolated):
    from click.testing import CliRunner

    from spxdl import cli

    def spxdl(*args: str, env: dict[str, str]):
        return CliRunner().invoke(cli.cli, list(args), env={"SPXDL_CALENDAR_SOURCE": "terminal", **env},
                                  catch_exceptions=False)

    data = str(isolated / "data")
    run = spxdl("run", "--terminal-url", closed_sim.url, "--start", "2024-03-12", "--end", "2024-03-14",
                "--max-dte", "2", "--workers", "1", "--data-dir", data, env={})
    assert run.exit_code == 0, run.stderr
    gaps = spxdl("gaps", "--terminal-url", closed_sim.url, "--start", "2024-03-12", "--end", "2024-03-14",
                 "--max-dte", "2", "--data-dir", data, env={})
    assert gaps.exit_code == 0, gaps.stdout  # the closure is no gap
    offline = spxdl("gaps", "--terminal-url", "http://127.0.0.1:9", "--start", "2024-03-12", "--end", "2024-03-14",
                    "--max-dte", "2", "--data-dir", data, env={"SPXDL_TERMINAL_RETRIES": "0"})
    assert offline.exit_code == 1 and "greeks-1m/SPXW/2024-03-13" in offline.stdout
    assert "using spxdl's calendar" in offline.stderr
