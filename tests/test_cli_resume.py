"""End to end: a range run killed before its last days start; `spxdl status` shows it, `spxdl resume` finishes it.

Real `spxdl` processes in their own session against the simulator (in this process, slowed down
so that the kill lands early), a real SIGKILL of the whole process group, then the archive
compared file for file with a clean run's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from engine_helpers import Driver, archive_digest, data_files, make_settings, temp_files, wait_until
from spxdl import engine, storage
from spxdl.simulator import Faults

START, END = date(2024, 1, 8), date(2024, 1, 12)  # five trading days
RANGE = ["--start", str(START), "--end", str(END), "--max-dte", "5", "--workers", "1", "--threads", "1"]


@pytest.fixture(scope="module", name="reference")
def fixture_reference(sim, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("reference")
    settings = make_settings(data_dir, sim.url, max_dte=5)
    assert engine.run(engine.plan(settings, START, END), settings).complete
    return archive_digest(data_dir)


def spxdl(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SPXDL_")}
    return subprocess.run([sys.executable, "-m", "spxdl", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def started_days(data_dir: Path) -> set[str]:
    return {path.parent.name for path in data_dir.rglob("_day.json")}


def test_a_range_run_killed_before_its_last_days_start_is_shown_by_status_and_finished_by_resume(
    sim, reference, tmp_path
):
    data_dir = tmp_path / "data"
    sim.set_faults(Faults(latency=0.5))  # one task at a time, slowly: the kill lands on the first days
    try:
        run = Driver(data_dir, sim.url, *RANGE, cli=True)
        assert wait_until(lambda: data_files(data_dir) or run.process.poll() is not None, 60), run.text()
        live = spxdl("status", "--data-dir", str(data_dir), cwd=tmp_path).stdout
        os.killpg(run.process.pid, signal.SIGKILL)
        run.wait(timeout=10)
    finally:
        sim.set_faults(Faults())
    assert "1 run(s) in progress:" in live and "by pid " in live and "running; " in live and "of 5 task(s) left" in live
    assert len(started_days(data_dir)) < 5  # the last days never started: no trace of them but the run record

    status = spxdl("status", "--json", "--data-dir", str(data_dir), cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    [shown] = json.loads(status.stdout)["runs"]
    assert (shown["state"], shown["start"], shown["end"], shown["tasks"]) == ("killed", str(START), str(END), 5)
    assert shown["selection"]["max_dte"] == 5 and shown["remaining"] >= 5 - len(data_files(data_dir))
    text = spxdl("status", "--data-dir", str(data_dir), cwd=tmp_path).stdout
    assert "1 interrupted run(s); `spxdl resume` finishes them" in text
    assert f"run {START} .. {END} (SPXW; greeks 1m; DTE 0..5)" in text and "killed" in text

    # --max-dte 1 here would narrow a plain re-run; the interrupted run keeps its own window
    resume = spxdl("resume", "--data-dir", str(data_dir), "--terminal-url", sim.url, "--max-dte", "1", cwd=tmp_path)
    assert resume.returncode == 0, resume.stderr
    assert archive_digest(data_dir) == reference  # every day, those never started included, as a clean run's
    assert f"resuming run {START} .. {END}" in resume.stderr and "Traceback" not in resume.stderr
    assert temp_files(data_dir) == [] and storage.run_record_paths(data_dir) == []  # status lists no run
    again = spxdl("resume", "--data-dir", str(data_dir), "--terminal-url", sim.url, cwd=tmp_path)
    assert again.returncode == 0 and "Nothing to resume" in again.stderr
