"""``spxdl health``'s calendar: the terminal's (the simulator's, given a closure of its own) against spxdl's."""

from __future__ import annotations

import json
from click.testing import CliRunner

from spxdl import cli
from spxdl.config import Settings
from spxdl.health import health_report
from spxdl.simulator import Simulator
from test_doctor import a_weekday_of_next_year


def health(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli.cli, ["health", *args], env=env, catch_exceptions=False)


def test_health_names_every_day_the_terminals_calendar_differs_and_stays_healthy(isolated):
    closure = a_weekday_of_next_year()
    with Simulator(calendar_closures={closure: "a closure announced after this release"}) as sim:
        result = health("--terminal-url", sim.url, "--data-dir", str(isolated), "--json")
        text = health("--terminal-url", sim.url, "--data-dir", str(isolated))
    assert result.exit_code == 0 and text.exit_code == 0
    calendar = json.loads(result.stdout)["calendar"]
    assert calendar["agrees"] is False and calendar["compared"] is True
    assert calendar["differences"] == [{"date": closure.isoformat(), "terminal": "closed", "spxdl": "open"}]
    line = next(line for line in text.stdout.splitlines() if " calendar " in line)
    assert line.startswith("note calendar  1 day(s) differ") and closure.isoformat() in line
    assert "[calendar] source = terminal" in line


def test_with_the_terminals_calendar_in_charge_the_difference_is_reported_as_settled(isolated):
    closure = a_weekday_of_next_year()
    with Simulator(calendar_closures={closure: "announced"}) as sim:
        report = health_report(Settings(terminal_url=sim.url, data_dir=isolated, calendar_source="terminal"))
    assert report.healthy and report.calendar.agrees and "the terminal's calendar wins" in report.calendar.detail


def test_agreeing_calendars_and_a_v2_terminal(sim, isolated):
    agreed = health_report(Settings(terminal_url=sim.url, data_dir=isolated)).calendar
    assert agreed.agrees and agreed.differences == () and "agree on" in agreed.detail
    v2 = health_report(Settings(terminal_url=sim.url, terminal_api="v2", data_dir=isolated)).calendar
    assert v2.agrees and not v2.compared and "API v2 serves no calendar" in v2.detail


def test_an_overrides_file_that_lists_the_closure_agrees(isolated):
    closure = a_weekday_of_next_year()
    overrides = isolated / "closures.txt"
    overrides.write_text(f"{closure.isoformat()} closed  # announced\n")
    with Simulator(calendar_closures={closure: "announced"}) as sim:
        report = health_report(Settings(terminal_url=sim.url, data_dir=isolated, calendar_overrides=overrides))
    assert report.calendar.agrees and report.calendar.differences == ()


def test_spxdl_sim_with_a_closure_and_spxdl_health_as_separate_processes(isolated):
    import os
    import re
    import subprocess
    import sys
    import time

    closure = a_weekday_of_next_year()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SPXDL_")}
    process = subprocess.Popen([sys.executable, "-m", "spxdl", "sim", "--profile", "tiny", "--port", "0",
                                "--closure", closure.isoformat()], cwd=isolated, env=env, stderr=subprocess.PIPE,
                               text=True)
    try:
        url, deadline = None, time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            match = re.search(r"at (http://127\.0\.0\.1:\d+)", process.stderr.readline())
            url = match.group(1) if match else None
        assert url, "the simulator did not announce its URL"
        health_run = subprocess.run([sys.executable, "-m", "spxdl", "health", "--terminal-url", url, "--data-dir",
                                     str(isolated)], cwd=isolated, env=env, capture_output=True, text=True, timeout=60)
    finally:
        process.kill()
        process.wait(timeout=10)
    assert health_run.returncode == 0, health_run.stderr
    assert "note calendar  1 day(s) differ" in health_run.stdout and closure.isoformat() in health_run.stdout


def test_thetadatadx_server_is_reachable_connected_v3_and_its_calendar_compared(isolated):
    closure = a_weekday_of_next_year()
    with Simulator(flavor="thetadatadx", calendar_closures={closure: "announced"}) as sim:
        text = health("--terminal-url", sim.url, "--data-dir", str(isolated))
    lines = text.stdout.splitlines()
    assert text.exit_code == 0
    assert lines[0] == f"ok   terminal  {sim.url}: CONNECTED api v3, simulated"
    assert closure.isoformat() in next(line for line in lines if " calendar " in line)


def test_sim_check_is_for_the_terminal_flavour_and_says_what_checks_the_other(isolated):
    result = CliRunner().invoke(cli.cli, ["sim", "--check", "--flavor", "thetadatadx"])
    assert result.exit_code == 2
    assert "check the thetadatadx flavour with: spxdl doctor --simulate --sim-flavor thetadatadx" in result.stderr
