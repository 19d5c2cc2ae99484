"""End to end through the CLI: what a run does with the terminal answers the vendor's contract allows.

A stand-in terminal in front of the simulator gives the answers the simulator does not (403, 478,
a drifted header, a page that is not CSV); each run is judged by its exit code, the one line it
prints and what is on disk afterwards.
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from engine_helpers import StandInTerminal, answering, archive_digest, data_files, temp_files, with_columns
from spxdl import cli
from spxdl.simulator import SessionRules, Simulator
from test_cli import DAY, NEXT_DAY

EARLY_CLOSES = ("2024-11-29", "2024-12-24")


def run(invoke, url: str, data_dir, *extra: str, day: str | None = NEXT_DAY, max_dte: int = 3, env=None):
    dates = ("--date", day) if day else ()
    return invoke("run", *dates, "--terminal-url", url, "--data-dir", str(data_dir), "--max-dte", str(max_dte),
                  "--workers", "1", *extra, env=env)


def stopped_line(result) -> str:
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip().startswith("STOPPED:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "status, text, code, says",
    [
        (403, "Forbidden", cli.EXIT_INCOMPLETE, "subscription does not include"),
        (478, "INVALID_SESSION_ID", cli.EXIT_TRY_LATER, "another ThetaData Terminal is logged in"),
    ],
    ids=["403", "478"],
)
def test_a_permission_or_session_answer_stops_the_run_with_its_line_and_code(invoke, sim, isolated, status, text,
                                                                             code, says):
    with StandInTerminal(sim.url, answering(status, text)) as terminal:
        result = run(invoke, terminal.url, isolated / "data", "--start", DAY, "--end", NEXT_DAY, day=None)
    assert result.exit_code == code
    line = stopped_line(result)
    assert says in line and str(status) in line
    assert data_files(isolated / "data") == [] and temp_files(isolated / "data") == []


def test_an_added_column_is_stored_without_it_with_one_warning(invoke, sim, isolated):
    def add(cells: list[str]) -> list[str]:
        return [*cells, "vendor_note" if cells[0] == "symbol" else "x"]

    with StandInTerminal(sim.url, with_columns(add)) as terminal:
        result = run(invoke, terminal.url, isolated / "data", "--api", "v3")
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "vendor_note" in line]
    assert len(warnings) == 1 and "spxdl does not know" in warnings[0]
    files = data_files(isolated / "data")
    assert files
    for path in files:
        assert pq.read_metadata(path).metadata[b"extra_columns"] == b"vendor_note"
        assert "vendor_note" not in pq.read_schema(path).names
    day = json.loads(next((isolated / "data").rglob("_day.json")).read_text())
    assert all(entry["extra_columns"] == ["vendor_note"] for entry in day["expirations"].values())


@pytest.mark.parametrize(
    "on_history, shown",
    [
        (with_columns(lambda cells: [c for i, c in enumerate(cells) if i != 7]), "missing delta"),
        (lambda status, headers, body: (200, {"Content-Type": "text/html"}, b"<html><body>Log in</body></html>\n"),
         "<html><body>Log in"),
    ],
    ids=["missing-column", "html"],
)
def test_an_answer_without_the_pinned_columns_stops_the_run_and_touches_nothing(invoke, sim, isolated, on_history,
                                                                                  shown):
    data_dir = isolated / "data"
    assert run(invoke, sim.url, data_dir, "--api", "v3", day=DAY).exit_code == 0
    before = archive_digest(data_dir)
    with StandInTerminal(sim.url, on_history) as terminal:
        result = run(invoke, terminal.url, data_dir, "--api", "v3")
    assert result.exit_code == cli.EXIT_WIRE
    line = stopped_line(result)
    assert shown in line and "expected header symbol,expiration,strike,right,timestamp,bid,ask,delta" in line
    assert archive_digest(data_dir) == before and temp_files(data_dir) == []


@pytest.mark.parametrize("rows", ["stop", "flat"], ids=["rows-stop-at-13:15", "rows-run-to-16:00"])
def test_early_close_days_pass_in_fail_mode(invoke, isolated, rows):
    with Simulator(profile="tiny", session=SessionRules(early_close_rows=rows)) as early:
        for day in EARLY_CLOSES:
            result = run(invoke, early.url, isolated / rows, day=day, max_dte=7, env={"SPXDL_VALIDATION_MODE": "fail"})
            assert result.exit_code == 0, result.stderr
    assert len(data_files(isolated / rows)) >= 2
