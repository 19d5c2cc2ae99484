"""The engine against the thetadatadx flavour of the simulator: real worker processes over loopback HTTP.

A day through thetadatadx-server's speech must be the day the terminal gives, file for file; its
no-data answers (500 ``gRPC status NotFound``, 200 with an empty body) make ``no_data``; its tier
error (500 ``gRPC status PermissionDenied``) stops the run; its 503s are waited out outside the
retry budget; and ``spxdl sim --flavor thetadatadx`` serves the same day to ``spxdl run``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import date, time as clock

import pyarrow.parquet as pq
import pytest
import requests

from conftest import cleaned
from engine_helpers import archive_digest, claims, data_files, ledger_problems, make_settings, temp_files
from spxdl import engine
from spxdl.errors import PermissionDenied
from spxdl.ledger import TaskState
from spxdl.simulator import Faults, Simulator

DAY = date(2024, 3, 14)
EVERY_DATASET = ("greeks", "greeks_second_order", "quote", "ohlc", "open_interest", "eod", "greeks_eod",
                 "index_price")
SPXDL = [sys.executable, "-m", "spxdl"]


@pytest.fixture(scope="module", name="server")
def fixture_server():
    with Simulator(flavor="thetadatadx") as simulator:
        yield simulator


@pytest.fixture(name="clean_server")
def fixture_clean_server(server):
    yield from cleaned(server)


def run_day(settings, day: date = DAY):
    return engine.run(engine.plan(settings, day, day), settings)


def statuses(sim: Simulator) -> set[str]:
    return {status for by_status in sim.counters()["requests"].values() for status in by_status}


def test_a_day_of_every_dataset_equals_the_terminal_flavours_file_for_file(clean_server, clean_sim, tmp_path):
    mine, theirs = tmp_path / "thetadatadx", tmp_path / "terminal"
    summaries = [run_day(make_settings(directory, url, terminal_api="v3", datasets=EVERY_DATASET, max_dte=3))
                 for directory, url in ((mine, clean_server.url), (theirs, clean_sim.url))]
    assert all(summary.complete for summary in summaries), summaries
    assert archive_digest(mine) == archive_digest(theirs)
    assert len(data_files(mine)) >= len(EVERY_DATASET)
    assert sum(pq.ParquetFile(path).metadata.num_rows for path in data_files(mine)) > 10_000
    assert ledger_problems(mine) == [] and temp_files(mine) == [] and claims(mine) == []
    served = clean_server.counters()
    assert statuses(clean_server) == {"200"} and served["completed"]["rows"] > 10_000


def test_its_no_data_answers_make_the_tasks_no_data(clean_server, tmp_path):
    # A window after the session: every expiration answers 200 with an empty body.
    late = make_settings(tmp_path / "late", clean_server.url, start_time=clock(17, 0), end_time=clock(17, 30),
                         workers=1)
    empty = run_day(late)
    # A root the server does not know: the expiration list answers 500 gRPC status NotFound.
    unknown = run_day(make_settings(tmp_path / "unknown", clean_server.url, roots=("XYZ",), workers=1))
    assert empty.by_state() == {TaskState.NO_DATA: 1} and unknown.by_state() == {TaskState.NO_DATA: 1}
    assert set(empty.results[0].expirations) == {TaskState.NO_DATA}  # every expiration: 200, empty
    assert "lists no expiration for XYZ" in unknown.results[0].error
    assert statuses(clean_server) == {"200", "500"}
    assert data_files(tmp_path) == [] and temp_files(tmp_path) == []
    assert len(engine.plan(late, DAY, DAY).tasks) == 1  # planned again: the data may come later


def test_a_tier_error_stops_the_run(tmp_path):
    with Simulator(flavor="thetadatadx", tier="value") as server:
        settings = make_settings(tmp_path, server.url, workers=1)
        summary = engine.run(engine.plan(settings, date(2024, 3, 12), DAY), settings)  # three trading days
    assert isinstance(summary.stopped_by, PermissionDenied)
    assert "gRPC status PermissionDenied" in str(summary.stopped_by)
    # A worker claims its next task while the previous one's requests are in flight (engine/fetchers.py):
    # every task that had started is interrupted, the others were never started.
    states = [result.state for result in summary.results]
    assert states and set(states) == {"interrupted"} and len(states) + len(summary.not_started) == 3
    assert data_files(tmp_path) == [] and temp_files(tmp_path) == [] and claims(tmp_path) == []


def test_its_503s_are_waited_out_without_spending_the_retry_budget(clean_server, clean_sim, tmp_path):
    reference = tmp_path / "reference"
    assert run_day(make_settings(reference, clean_sim.url, terminal_api="v3")).complete
    clean_server.set_faults(Faults(throttle_rate=0.3))
    settings = make_settings(tmp_path / "busy", clean_server.url, retries=0, expiration_attempts=1)
    summary = run_day(settings)
    counters = clean_server.counters()
    busy = sum(by_status.get("503", 0) for by_status in counters["requests"].values())
    assert summary.complete and busy > 0, (summary, counters["requests"])
    assert "429" not in statuses(clean_server)
    assert archive_digest(tmp_path / "busy") == archive_digest(reference)


def test_spxdl_sim_flavor_thetadatadx_serves_spxdl_run_the_terminals_day(clean_sim, tmp_path):
    reference = tmp_path / "reference"
    assert run_day(make_settings(reference, clean_sim.url, terminal_api="v3", max_dte=3)).complete
    process = subprocess.Popen([*SPXDL, "sim", "--flavor", "thetadatadx", "--profile", "tiny", "--port", "0"],
                               cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        url, banner = None, ""
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            banner = process.stderr.readline()
            match = re.search(r"at (http://127\.0\.0\.1:\d+)", banner)
            url = match.group(1) if match else None
        assert url and banner.startswith("simulated thetadatadx-server at"), banner
        v2 = requests.get(url + "/v2/system/mdds/status", timeout=10)
        assert (v2.status_code, v2.content) == (404, b"")  # thetadatadx-server serves v3 only
        data = tmp_path / "data"
        run = subprocess.run([*SPXDL, "run", "--date", DAY.isoformat(), "--terminal-url", url, "--max-dte", "3",
                              "--data-dir", str(data)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    finally:
        process.kill()
        process.wait(timeout=10)
    assert run.returncode == 0, run.stderr
    assert "1 success" in run.stderr and "Traceback" not in run.stderr
    assert archive_digest(data) == archive_digest(reference)
