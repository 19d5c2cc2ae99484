"""Killed and interrupted runs: real subprocesses in their own session, real signals, then re-runs.

The simulator runs in this process (a thread) and slows its answers down so that kills land
mid-run; every run is the driver in ``engine_helpers`` (plan + run, one line per event).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from engine_helpers import (
    END,
    START,
    Driver,
    alive,
    archive_digest,
    claims,
    data_files,
    ledger_problems,
    make_settings,
    session_pids,
    temp_files,
    wait_until,
)
from spxdl import engine
from spxdl.simulator import Faults, Simulator

PAGE_ROWS = 1000  # v2: four pages per expiration, so a kill can land between pages and inside one
MAX_DTE = 15  # three Friday expirations per day in the tiny profile
SLOW = Faults(latency=0.2)


@pytest.fixture(scope="module", name="sim")
def fixture_sim():
    with Simulator(profile="tiny", page_rows=PAGE_ROWS) as simulator:
        yield simulator


@pytest.fixture(scope="module", name="reference")
def fixture_reference(sim, tmp_path_factory):
    """A clean run's archive: path -> sha256."""
    data_dir = tmp_path_factory.mktemp("reference")
    sim.set_faults(Faults())
    settings = make_settings(data_dir, sim.url, max_dte=MAX_DTE, terminal_api="v2")
    summary = engine.run(engine.plan(settings, START, END), settings)
    assert summary.complete, summary
    return archive_digest(data_dir)


@pytest.fixture(name="slow_sim")
def fixture_slow_sim(sim):
    sim.set_faults(SLOW)
    yield sim
    sim.set_faults(Faults())


def start(data_dir: Path, sim) -> Driver:
    return Driver(data_dir, sim.url, "--max-dte", str(MAX_DTE), "--api", "v2")


def rerun_completes(data_dir: Path, sim, reference: dict[str, str]) -> None:
    """A fault-free re-run (in this process) finishes the archive: equal to a clean run's, consistent."""
    sim.set_faults(Faults())
    settings = make_settings(data_dir, sim.url, max_dte=MAX_DTE, terminal_api="v2")
    summary = engine.run(engine.plan(settings, START, END), settings)
    assert summary.complete, summary
    assert archive_digest(data_dir) == reference
    assert temp_files(data_dir) == [] and claims(data_dir) == [] and ledger_problems(data_dir) == []


def readable(files: list[Path]) -> bool:
    return all(pq.ParquetFile(path).metadata.num_rows > 0 for path in files)


def test_sigterm_to_spxdl_run_mid_run_stops_within_seconds_cleanly_and_the_next_run_completes(
    reference, slow_sim, tmp_path
):
    # one request at a time, each 0.5 s: the files land seconds apart, so the signal always finds some left
    slow_sim.set_faults(Faults(latency=0.5))
    command = ["--start", str(START), "--end", str(END), "--api", "v2", "--max-dte", str(MAX_DTE), "--workers", "2",
               "--max-in-flight", "1"]
    cli = Driver(tmp_path, slow_sim.url, *command, cli=True)
    assert wait_until(lambda: data_files(tmp_path) or cli.process.poll() is not None, 30), cli.text()

    os.killpg(cli.process.pid, signal.SIGTERM)

    assert cli.wait(timeout=20) == 128 + signal.SIGTERM, cli.text()
    assert wait_until(lambda: not session_pids(cli.process.pid), 10)
    assert temp_files(tmp_path) == [] and claims(tmp_path) == [] and ledger_problems(tmp_path) == []
    assert 0 < len(data_files(tmp_path)) < len(reference)
    assert wait_until(lambda: "interrupted by SIGTERM" in cli.text(), 10), cli.text()
    stored = sum(pq.ParquetFile(path).metadata.num_rows for path in data_files(tmp_path))
    assert f"rows {stored:,};" in cli.text() and f"the {stored:,} rows stored are kept" in cli.text(), cli.text()
    summary_tasks = cli.text().split("tasks: ", 1)[1].split(";")[0]
    summary_states = {state: int(count) for count, state in re.findall(r"(\d+) (\w+)", summary_tasks)}
    status = subprocess.run([sys.executable, "-m", "spxdl", "status", "--json", "--data-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    shown = json.loads(status.stdout)["totals"]["states"]
    assert "in_progress" not in shown  # no run holds them: the stopped run's tasks read as interrupted
    assert shown.get("interrupted", 0) == summary_states.get("interrupted", 0), (shown, cli.text())
    rerun_completes(tmp_path, slow_sim, reference)


def test_sigkill_of_the_whole_group_at_random_moments_then_reruns_complete(reference, slow_sim, tmp_path, seed):
    rng = random.Random(seed)
    delays = [rng.uniform(0.0, 1.5) for _ in range(3)]  # after the first task starts
    landed = 0  # kills that left a claim or a temp file behind: they cut a run short
    for delay in delays:
        driver = start(tmp_path, slow_sim)
        if driver.wait_for("event task_started"):
            time.sleep(delay)
        with contextlib.suppress(ProcessLookupError):  # it may have finished what was left
            os.killpg(driver.process.pid, signal.SIGKILL)
        driver.wait(timeout=10)
        assert wait_until(lambda: not session_pids(driver.process.pid), 10), f"seed {seed}"
        assert readable(data_files(tmp_path)), f"seed {seed}"  # never a half-written file in place
        landed += bool(temp_files(tmp_path) or claims(tmp_path))
    assert landed, f"seed {seed}: no kill landed mid-run"
    from spxdl import audit

    states = audit.status_report(tmp_path)["totals"]["states"]
    assert "in_progress" not in states, f"seed {seed}: {states}"  # a killed run holds nothing: interrupted
    rerun_completes(tmp_path, slow_sim, reference)


def test_the_parent_killed_alone_its_workers_stop_within_seconds_and_a_rerun_completes(reference, slow_sim, tmp_path):
    driver = start(tmp_path, slow_sim)
    assert driver.wait_for("event expiration_done"), driver.text()
    workers = [pid for pid in session_pids(driver.process.pid) if pid != driver.process.pid]
    assert workers

    driver.process.kill()  # SIGKILL to the parent only

    driver.wait(timeout=10)
    assert wait_until(lambda: not any(alive(pid) for pid in workers), 15)
    assert temp_files(tmp_path) == [] and claims(tmp_path) == []
    rerun_completes(tmp_path, slow_sim, reference)


def test_a_second_sigint_exits_at_once_and_a_rerun_completes(reference, sim, tmp_path):
    sim.set_faults(Faults(latency=1.0))  # a graceful stop would wait for a slow answer
    try:
        driver = Driver(tmp_path, sim.url, "--max-dte", str(MAX_DTE), "--api", "v2", "--workers", "1")
        assert driver.wait_for("event task_started"), driver.text()
        os.killpg(driver.process.pid, signal.SIGINT)
        time.sleep(0.2)  # the first one is being handled: workers are told to stop
        os.killpg(driver.process.pid, signal.SIGINT)
        assert driver.wait(timeout=10) == 128 + signal.SIGINT
        assert "summary" not in driver.text()  # it did not wait to write one
        assert wait_until(lambda: not session_pids(driver.process.pid), 15)
        assert driver.output_closed(), driver.text()
        assert "leaked semaphore" not in driver.text() and "resource_tracker" not in driver.text(), driver.text()
    finally:
        sim.set_faults(Faults())
    rerun_completes(tmp_path, sim, reference)
