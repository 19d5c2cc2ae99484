"""The engine, health, doctor and the CLI with ``[terminal] source = direct``: the real SDK against loopback doubles.

A day through the SDK must be the terminal's day, table for table (the files' metadata names the
source, as it names the API); the SDK's no-data answers make ``no_data``, its permission answer
stops the run, a stop mid-stream leaves nothing half-written, and an archive begun through a
terminal goes on through the SDK. The SDK finds the doubles through its own configuration
variables (conftest ``market``); the CLI runs as a separate process, as a user runs it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import date, time as clock
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from engine_helpers import (
    StandInTerminal,
    claims,
    data_files,
    ledger_problems,
    make_settings,
    temp_files,
    wait_until,
)
from spxdl import engine
from spxdl.errors import PermissionDenied
from spxdl.ledger import TaskState

DAY = date(2024, 3, 14)
EVERY_DATASET = ("greeks", "greeks_second_order", "quote", "ohlc", "open_interest", "eod", "greeks_eod",
                 "index_price")
REPO = Path(__file__).resolve().parents[1]
SPXDL = [sys.executable, "-m", "spxdl"]


@pytest.fixture(name="fresh")
def fixture_fresh(market):
    market.data.mode, market.data.denied, market.data.chunk_delay = None, frozenset(), 0.0
    yield market
    market.data.mode, market.data.denied, market.data.chunk_delay = None, frozenset(), 0.0


def direct_settings(data_dir: Path, **changes):
    return make_settings(data_dir, None, source="direct", **changes)


def run_days(settings, first: date = DAY, last: date = DAY):
    return engine.run(engine.plan(settings, first, last), settings)


def tables(data_dir: Path) -> dict[str, object]:
    """Relative path -> the file's table without its key-value metadata."""
    return {str(path.relative_to(data_dir)): pq.read_table(path).replace_schema_metadata(None)
            for path in data_files(data_dir)}


def spxdl(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*SPXDL, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


def user_env(market, home: Path) -> dict[str, str]:
    """A user's environment: the SDK's variables (the doubles, a key), the patched SDK and spxdl on the path."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SPXDL_", "THETADATA_"))}
    env.update(market.env, HOME=str(home))
    env["PYTHONPATH"] = os.pathsep.join([market.env["PYTHONPATH"], str(REPO)])
    return env


def test_a_day_of_every_dataset_through_the_sdk_is_the_terminals_day_table_for_table(fresh, clean_sim, tmp_path):
    direct, terminal = tmp_path / "direct", tmp_path / "terminal"
    mine = run_days(direct_settings(direct, datasets=EVERY_DATASET, max_dte=3))
    theirs = run_days(make_settings(terminal, clean_sim.url, terminal_api="v3", datasets=EVERY_DATASET, max_dte=3))
    assert mine.complete and theirs.complete, (mine, theirs)
    assert mine.api == "direct" and not mine.simulated
    ours, reference = tables(direct), tables(terminal)
    assert ours.keys() == reference.keys() and len(ours) >= len(EVERY_DATASET)
    assert [name for name in reference if not ours[name].equals(reference[name])] == []
    assert sum(table.num_rows for table in ours.values()) > 10_000
    assert ledger_problems(direct) == [] and temp_files(direct) == [] and claims(direct) == []
    metadata = pq.ParquetFile(data_files(direct)[0]).schema_arrow.metadata
    assert metadata[b"api"] == b"direct" and metadata[b"endpoint"].startswith(b"option_history_")


def test_its_no_data_answers_make_the_tasks_no_data(fresh, tmp_path):
    late = direct_settings(tmp_path / "late", start_time=clock(17, 0), end_time=clock(17, 30), workers=1)
    empty = run_days(late)  # a window after the session: every answer ends without a row
    unknown = run_days(direct_settings(tmp_path / "unknown", roots=("XYZ",), workers=1))  # NOT_FOUND
    assert empty.by_state() == {TaskState.NO_DATA: 1} and set(empty.results[0].expirations) == {TaskState.NO_DATA}
    assert unknown.by_state() == {TaskState.NO_DATA: 1}
    assert "lists no expiration for XYZ" in unknown.results[0].error
    assert data_files(tmp_path) == [] and temp_files(tmp_path) == []
    assert len(engine.plan(late, DAY, DAY).tasks) == 1  # planned again: the data may come later


def test_a_permission_answer_stops_the_run(fresh, tmp_path):
    fresh.data.denied = frozenset({"GetOptionHistoryGreeksFirstOrder"})
    settings = direct_settings(tmp_path, workers=1)
    summary = run_days(settings, date(2024, 3, 12), DAY)  # three trading days
    assert isinstance(summary.stopped_by, PermissionDenied)
    assert "does not include option_history_greeks_first_order" in str(summary.stopped_by)
    # A worker claims its next task while the previous one's requests are in flight (engine/fetchers.py):
    # every task that had started is interrupted, the others were never started.
    states = [result.state for result in summary.results]
    assert states and set(states) == {"interrupted"} and len(states) + len(summary.not_started) == 3
    assert data_files(tmp_path) == [] and temp_files(tmp_path) == [] and claims(tmp_path) == []


def test_an_archive_begun_through_a_terminal_goes_on_through_the_sdk(fresh, clean_sim, tmp_path):
    # A real terminal (the simulator without its header): real data, as the SDK's, may share an archive.
    with StandInTerminal(clean_sim.url, drop=("X-Spxdl-Simulator",)) as terminal:
        first = run_days(make_settings(tmp_path, terminal.url, terminal_api="v3", max_dte=1))
    wider = run_days(direct_settings(tmp_path, max_dte=8))  # the same shape: only the new expirations
    assert first.complete and wider.complete
    assert wider.results[0].skipped > 0 and wider.totals()["expirations"]["complete"] > wider.results[0].skipped
    sources = {pq.ParquetFile(path).schema_arrow.metadata[b"api"] for path in data_files(tmp_path)}
    assert sources == {b"v3", b"direct"} and ledger_problems(tmp_path) == []


def test_spxdl_run_source_direct_as_a_user_runs_it(fresh, clean_sim, tmp_path):
    env = user_env(fresh, tmp_path)
    data = tmp_path / "data"
    result = spxdl("run", "--source", "direct", "--date", DAY.isoformat(), "--max-dte", "3", "--data-dir", str(data),
                   cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "ThetaData directly, thetadatadx SDK" in result.stderr and "1 success" in result.stderr
    assert "Traceback" not in result.stderr
    reference = tmp_path / "reference"
    assert run_days(make_settings(reference, clean_sim.url, terminal_api="v3", max_dte=3)).complete
    assert tables(data).keys() == tables(reference).keys()
    assert all(table.equals(tables(reference)[name]) for name, table in tables(data).items())
    key = fresh.env["THETADATA_API_KEY"]
    log = (data / "logs" / "spxdl.log").read_text()
    assert key not in log and key not in result.stderr and key not in result.stdout  # never logged
    assert "credentials from THETADATA_API_KEY" in log


def test_health_and_doctor_report_the_direct_source(fresh, tmp_path):
    env = user_env(fresh, tmp_path)
    health = spxdl("health", "--source", "direct", "--data-dir", str(tmp_path / "data"), cwd=tmp_path, env=env)
    assert health.returncode == 0, health.stdout + health.stderr
    source = health.stdout.splitlines()[0]
    assert source.startswith("ok   source    ThetaData through the thetadatadx SDK 0.7")
    assert "CONNECTED; credentials from THETADATA_API_KEY; subscription: " in source and "options Standard" in source
    doctor = spxdl("doctor", "--source", "direct", "--json", cwd=tmp_path, env=env)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    report = json.loads(doctor.stdout)
    verdicts = {finding["check"]: finding["verdict"] for finding in report["findings"]}
    assert report["api"] == "direct" and report["outcome"] == "ok"
    assert verdicts.pop("calendar") == "not_served" and set(verdicts.values()) == {"ok"}
    assert set(verdicts) == {"status", "expirations", "strikes", *EVERY_DATASET}


def test_doctor_names_a_dataset_outside_the_subscription(fresh, tmp_path):
    fresh.data.denied = frozenset({"GetOptionHistoryGreeksSecondOrder"})
    result = spxdl("doctor", "--source", "direct", "--json", cwd=tmp_path, env=user_env(fresh, tmp_path))
    report = json.loads(result.stdout)
    verdicts = {finding["check"]: finding["verdict"] for finding in report["findings"]}
    assert result.returncode == 0 and verdicts["greeks_second_order"] == "no_subscription"  # not configured


def test_a_stop_mid_stream_leaves_nothing_half_written_and_a_rerun_completes(fresh, clean_sim, tmp_path):
    fresh.data.chunk_delay = 0.05  # a slow upstream: the run is still streaming when the signal comes
    env = user_env(fresh, tmp_path)
    data = tmp_path / "data"
    command = [*SPXDL, "run", "--source", "direct", "--start", "2024-03-12", "--end", "2024-03-14", "--max-dte", "3",
               "--workers", "2", "--data-dir", str(data)]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        assert wait_until(lambda: data_files(data) or process.poll() is not None, 60)
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 128 + signal.SIGINT, output
    assert temp_files(data) == [] and claims(data) == [] and ledger_problems(data) == []
    fresh.data.chunk_delay = 0.0
    rerun = run_days(direct_settings(data, max_dte=3), date(2024, 3, 12), DAY)
    assert rerun.complete and ledger_problems(data) == []
    reference = tmp_path / "reference"
    assert run_days(make_settings(reference, clean_sim.url, terminal_api="v3", max_dte=3), date(2024, 3, 12),
                    DAY).complete
    assert tables(data).keys() == tables(reference).keys()
    assert all(table.equals(tables(reference)[name]) for name, table in tables(data).items())
