"""``spxdl doctor``: every check passes against the simulator, and each way a terminal may differ is named.

The simulator is made to differ in one respect at a time (``Quirks``); a stand-in terminal in front
of it answers 471 where a subscription lacks a dataset. Real loopback HTTP, the CLI in-process.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from click.testing import CliRunner

from engine_helpers import StandInTerminal
from spxdl import cli
from spxdl.health import Verdict
from spxdl.simulator import Quirks, Simulator
from spxdl.trading_calendar import TradingCalendar, today_ny

CHECKS = ["status", "expirations", "strikes", "greeks", "greeks_second_order", "quote", "ohlc", "open_interest",
          "eod", "greeks_eod", "index_price", "calendar"]


@pytest.fixture(name="doctor")
def fixture_doctor(isolated):
    """Run ``spxdl doctor ARGS --json`` in-process; (exit code, report)."""

    def doctor(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
        result = CliRunner().invoke(cli.cli, ["doctor", "--json", *args], env=env, catch_exceptions=False)
        return result.exit_code, json.loads(result.stdout)

    return doctor


def verdicts(report: dict) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for finding in report["findings"]:
        found.setdefault(finding["check"], set()).add(finding["verdict"])
    return found


def details(report: dict, verdict: str) -> dict[str, str]:
    return {f["check"]: f["detail"] for f in report["findings"] if f["verdict"] == verdict}


@pytest.mark.parametrize("flavor, api", [("terminal", "v3"), ("terminal", "v2"), ("thetadatadx", "v3")])
def test_every_check_passes_against_the_simulator(doctor, flavor, api):
    code, report = doctor("--simulate", "--sim-profile", "tiny", "--sim-flavor", flavor, "--api", api)
    assert code == 0 and report["outcome"] == "ok" and report["simulated"] is True
    served = {"v3": CHECKS, "v2": [c for c in CHECKS if c not in ("greeks_eod", "calendar")]}[api]
    assert verdicts(report) == {check: {Verdict.OK} if check in served else {Verdict.NOT_SERVED} for check in CHECKS}


def test_against_thetadatadx_server_each_answer_is_whole_with_its_length(doctor):
    code, report = doctor("--simulate", "--sim-profile", "tiny", "--sim-flavor", "thetadatadx")
    assert code == 0
    v2, _ = doctor("--simulate", "--sim-profile", "tiny", "--sim-flavor", "thetadatadx", "--api", "v2")
    assert v2 == 75  # thetadatadx-server has no v2: nothing answers it
    assert all("CSV, CRLF, Content-Length" in detail for check, detail in details(report, Verdict.OK).items()
               if check in CHECKS[3:-1])


@pytest.mark.parametrize("flavor", ["terminal", "thetadatadx"])
def test_datasets_above_the_tier_are_not_in_the_subscription_in_either_flavour(doctor, flavor):
    with Simulator(flavor=flavor, tier="value") as sim:
        code, report = doctor("--terminal-url", sim.url)
    assert code == 1 and report["outcome"] == "differs"  # the config asks for greeks
    found = verdicts(report)
    assert {check for check, verdict in found.items() if verdict == {Verdict.NO_SUBSCRIPTION}} == {
        "greeks", "greeks_second_order", "greeks_eod"}
    assert found["quote"] == {Verdict.OK} and found["calendar"] == {Verdict.OK}


def test_the_text_is_one_line_per_check_and_a_summary(isolated, sim):
    result = CliRunner().invoke(cli.cli, ["doctor", "--terminal-url", sim.url], catch_exceptions=False)
    lines = result.stdout.splitlines()
    assert result.exit_code == 0
    assert lines[0].startswith(f"spxdl doctor: {sim.url}, API v3 (spxdl simulator)")
    assert [line.split()[1] for line in lines[1:-2]] == CHECKS and all(line.split()[0] == "ok" for line in lines[1:-2])
    assert lines[-2] == "12 checks: 12 ok." and lines[-1] == "spxdl works with this terminal."


QUIRKS = {
    "strike units": (Quirks(strike_units="swapped"), "strikes", "strikes look like 1/10 cent", "dollars (5150.000)"),
    "a renamed column": (Quirks(renamed=(("delta", "dlt"),)), "greeks", "the header lacks delta; instead: dlt", ""),
    "a missing final line ending": (Quirks(final_newline=False), "greeks", "no line ending after the last line", ""),
}


@pytest.mark.parametrize("api", ["v3", "v2"])
@pytest.mark.parametrize("name", list(QUIRKS))
def test_each_difference_is_named_and_fails_the_doctor(doctor, name, api):
    quirks, check, said, also = QUIRKS[name]
    with Simulator(quirks=quirks) as sim:
        code, report = doctor("--terminal-url", sim.url, "--api", api)
    assert code == 1 and report["outcome"] == "differs"
    named = details(report, Verdict.DIFFERS)
    if name == "strike units" and api == "v2":
        said, also = "strikes look like dollars", "1/10 cent (5150000)"
    assert said in named[check] and also in named[check], named
    assert Verdict.OK not in verdicts(report)[check]


TOLERATED = {
    "LF instead of CRLF": (Quirks(line_end="lf"), "lines end with LF where the documented wire uses CRLF; spxdl reads both"),
    "quoted text fields": (Quirks(quoted_text=True), "text fields come in double quotes where the vendor's examples "
                                                     "have none; spxdl reads both"),
}


@pytest.mark.parametrize("api", ["v3", "v2"])
@pytest.mark.parametrize("name", list(TOLERATED))
def test_differences_spxdl_reads_anyway_are_named_and_tolerated(doctor, name, api):
    quirks, said = TOLERATED[name]
    with Simulator(quirks=quirks) as sim:
        code, report = doctor("--terminal-url", sim.url, "--api", api)
    assert code == 0 and report["outcome"] == "ok"
    assert details(report, Verdict.TOLERATED)["greeks"] == said
    assert Verdict.DIFFERS not in report["counts"]


def test_no_terminal_exits_75_with_one_line(isolated):
    result = CliRunner().invoke(cli.cli, ["doctor", "--terminal-url", "http://127.0.0.1:9"],
                                env={"SPXDL_TERMINAL_RETRIES": "0"}, catch_exceptions=False)
    assert result.exit_code == 75
    assert result.stdout.splitlines() == ["spxdl doctor: no terminal answered at http://127.0.0.1:9"]
    assert [line for line in result.stderr.splitlines() if line.startswith("spxdl: error:")]
    assert "Traceback" not in result.stderr


def test_a_dataset_outside_the_subscription_fails_only_when_the_config_asks_for_it(doctor, sim):
    with StandInTerminal(sim.url, deny=("/v3/option/history/greeks/second_order",)) as terminal:
        code, report = doctor("--terminal-url", terminal.url)
        assert code == 0 and verdicts(report)["greeks_second_order"] == {Verdict.NO_SUBSCRIPTION}
        code, report = doctor("--terminal-url", terminal.url, env={"SPXDL_DOWNLOAD_DATASETS": "greeks,greeks_second_order"})
        assert code == 1 and report["outcome"] == "differs"


def a_weekday_of_next_year() -> date:
    calendar, day = TradingCalendar(), date(today_ny().year + 1, 3, 10)
    while not calendar.is_trading_day(day):
        day = date(day.year, day.month, day.day + 1)
    return day


def test_a_closure_only_the_terminal_knows_is_named_and_the_terminals_calendar_may_win(doctor):
    closure = a_weekday_of_next_year()
    with Simulator(calendar_closures={closure: "announced after this release"}) as sim:
        code, report = doctor("--terminal-url", sim.url)
        assert code == 1 and f"{closure}" in details(report, Verdict.DIFFERS)["calendar"]
        assert "the terminal says closed, spxdl's calendar a regular session" in details(report, Verdict.DIFFERS)["calendar"]
        code, report = doctor("--terminal-url", sim.url, env={"SPXDL_CALENDAR_SOURCE": "terminal"})
        assert code == 0 and "the terminal's calendar wins" in details(report, Verdict.OK)["calendar"]


def test_a_session_without_data_yet_is_asked_for_the_session_before(doctor, sim):
    session = TradingCalendar().last_complete_session()
    before = TradingCalendar().previous_trading_day(session)
    not_yet = f"{session:%Y%m%d}"

    def no_data_for_the_session(path: str):
        if "/history/" in path and (f"date={not_yet}" in path or f"start_date={not_yet}" in path):
            return 472, {"Content-Type": "text/plain"}, b"No data for the specified timeframe and chain. Debug code 1"
        return None

    with StandInTerminal(sim.url, intercept=no_data_for_the_session) as terminal:
        code, report = doctor("--terminal-url", terminal.url)
    assert code == 0, report
    assert all(f"on {before}" in details(report, Verdict.OK)[check] for check in CHECKS[3:11])

    def no_data_at_all(path: str):
        if "/history/" in path:
            return 472, {"Content-Type": "text/plain"}, b"No data for the specified timeframe and chain. Debug code 1"
        return None

    with StandInTerminal(sim.url, intercept=no_data_at_all) as terminal:
        code, report = doctor("--terminal-url", terminal.url)
    assert code == 1 and details(report, Verdict.DIFFERS)["greeks"].startswith(f"no data for {session} nor {before}")


def test_a_terminal_that_rejects_the_credentials_is_named(isolated, sim):
    def unverified(path: str):
        return (200, {"Content-Type": "text/plain"}, b"UNVERIFIED") if "/mdds/status" in path else None

    with StandInTerminal(sim.url, intercept=unverified) as terminal:
        result = CliRunner().invoke(cli.cli, ["doctor", "--terminal-url", terminal.url], catch_exceptions=False)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "API unknown" in lines[0] and lines[1].split()[:2] == ["differs", "status"]
    assert "UNVERIFIED" in lines[1] and "log the terminal in" in lines[1]
