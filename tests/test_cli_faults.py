"""The faults nightly runs meet, end to end (the quick forms of `make soak`'s scenarios).

Real `spxdl` processes against the simulator over loopback: three runs over overlapping ranges
at once, the terminal stopped mid-run and started again on the same port (and one that stays
away past ``outage_limit``), writes failing on a real kernel limit (``ulimit -f``: the file-size
limit fails a write with EFBIG as a full disk does with ENOSPC), and ledger files corrupted
between runs. Each ends with the archive equal, file for file, to a clean run's.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from engine_helpers import (
    Driver,
    archive_digest,
    claims,
    data_files,
    ledger_problems,
    make_settings,
    temp_files,
    wait_until,
)
from spxdl import engine, storage
from spxdl.ledger import RunRecordState, Task, new_day, task_summary
from spxdl.simulator import Faults, Simulator

START, END = date(2024, 1, 8), date(2024, 1, 11)  # four trading days, SPXW, DTE 0..8: seven expirations
RANGE = ["--start", str(START), "--end", str(END), "--max-dte", "8"]
FILE_SIZE_LIMIT = 110_000  # bytes: the tiny profile's files are 60-135 KB, the ledger's JSON a few KB


@pytest.fixture(scope="module", name="reference")
def fixture_reference(sim, tmp_path_factory):
    """A clean run's archive (path -> sha256) and what it was served ((root, day, expiration) -> rows)."""
    data_dir = tmp_path_factory.mktemp("reference")
    sim.reset_counters()
    settings = make_settings(data_dir, sim.url, max_dte=8)
    assert engine.run(engine.plan(settings, START, END), settings).complete
    return archive_digest(data_dir), served(sim)


def served(sim: Simulator) -> dict[tuple[str, str, str], int]:
    """(root, trade date, expiration) -> rows in complete history answers (twice the rows: served twice)."""
    rows = {}
    for key, count in sim.counters()["rows_by_request"].items():
        _api, _dataset, root, expiration, days = key.split()[:5]
        rows[(root, days.split("..")[0], expiration)] = count
    return rows


def env(**extra: str) -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("SPXDL_")}
    return {**clean, **extra}


def spxdl(*args: str, cwd: Path, limit: int | None = None, **extra: str) -> subprocess.CompletedProcess:
    """`spxdl ARGS` in a process of its own; ``limit`` sets its file-size limit (ulimit -f) in bytes."""

    def lower_the_file_size_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    return subprocess.run([sys.executable, "-m", "spxdl", *args], cwd=cwd, env=env(**extra), capture_output=True,
                          text=True, timeout=120, preexec_fn=lower_the_file_size_limit if limit else None)


class SimProcess:
    """`spxdl sim` in a process of its own, like a terminal: stopping it drops every connection."""

    def __init__(self, cwd: Path, port: int = 0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "spxdl", "sim", "--profile", "tiny", "--port", str(port), "--latency", "0.2"],
            cwd=cwd, env=env(), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        )
        deadline, match = time.monotonic() + 60, None
        while match is None and time.monotonic() < deadline:
            match = re.search(r"at (http://127\.0\.0\.1:(\d+))", self.process.stderr.readline())
        assert match, "the simulator did not announce its URL"
        self.url, self.port = match.group(1), int(match.group(2))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()  # a crash: no goodbye to the connections
        self.process.wait(timeout=30)


def consistent(data_dir: Path) -> None:
    """No temp file, no claim, every data file readable and recorded with its sha256."""
    assert temp_files(data_dir) == [] and claims(data_dir) == [] and ledger_problems(data_dir) == []
    assert all(pq.ParquetFile(path).metadata.num_rows > 0 for path in data_files(data_dir))


def test_three_runs_over_overlapping_ranges_at_once_download_every_expiration_once(sim, reference, tmp_path):
    digest, once = reference
    sim.set_faults(Faults(latency=0.05))
    sim.reset_counters()
    try:
        ranges = [("2024-01-08", "2024-01-10"), ("2024-01-09", "2024-01-11"), ("2024-01-08", "2024-01-11")]
        runs = [Driver(tmp_path, sim.url, "--start", first, "--end", last, "--workers", "1") for first, last in ranges]
        codes = [run.wait(timeout=120) for run in runs]
    finally:
        sim.set_faults(Faults())
    assert set(codes) <= {0, 1}, [run.text() for run in runs]  # 1: a task was left to (held by) another run
    assert served(sim) == once  # every expiration served once in all
    assert archive_digest(tmp_path) == digest
    consistent(tmp_path)


def test_a_terminal_restarted_mid_run_on_the_same_port_is_waited_for_and_the_run_completes(reference, tmp_path):
    digest, _ = reference
    first = SimProcess(tmp_path)
    run = Driver(tmp_path, first.url, *RANGE, "--workers", "1", cli=True)
    second = None
    try:
        assert wait_until(lambda: data_files(tmp_path) or run.process.poll() is not None, 60), run.text()
        first.stop()  # the terminal goes away mid-run...
        time.sleep(3)
        second = SimProcess(tmp_path, first.port)  # ...and comes back on the same port
        assert run.wait(timeout=120) == 0, run.text()
    finally:
        if run.process.poll() is None:
            os.killpg(run.process.pid, signal.SIGKILL)
        for sim in (first, second):
            if sim is not None:
                sim.stop()
    assert "the terminal refused or dropped the connection" in run.text()  # it did see the outage
    assert "Traceback" not in run.text()
    assert archive_digest(tmp_path) == digest
    consistent(tmp_path)
    assert storage.run_record_paths(tmp_path) == []


def test_a_terminal_gone_past_the_outage_limit_stops_the_run_with_75_and_resume_completes_it(reference, tmp_path):
    digest, _ = reference
    first = SimProcess(tmp_path)
    outage = {"SPXDL_TERMINAL_OUTAGE_LIMIT": "2", "SPXDL_TERMINAL_RETRIES": "1"}
    data_dir = tmp_path / "data"
    command = [sys.executable, "-m", "spxdl", "--quiet", "run", *RANGE, "--workers", "1", "--terminal-url", first.url,
               "--data-dir", str(data_dir)]
    run = subprocess.Popen(command, cwd=tmp_path, env=env(**outage), stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    try:
        assert wait_until(lambda: data_files(data_dir) or run.poll() is not None, 60)
        first.stop()  # and it stays away
        _, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        first.stop()
    assert run.returncode == 75, stderr
    [stopped] = [line for line in stderr.splitlines() if "STOPPED" in line]
    assert "did not come back within 2 s" in stopped and "`spxdl resume` finishes it" in stopped
    assert "Traceback" not in stderr
    consistent(data_dir)
    [record] = [json.loads(path.read_text()) for path in storage.run_record_paths(data_dir)]
    assert record["state"] == RunRecordState.INTERRUPTED and "did not come back" in record["reason"]

    back = SimProcess(tmp_path, first.port)
    try:
        resume = spxdl("resume", "--data-dir", str(data_dir), "--terminal-url", back.url, cwd=tmp_path)
    finally:
        back.stop()
    assert resume.returncode == 0, resume.stderr
    assert archive_digest(data_dir) == digest
    consistent(data_dir)
    assert storage.run_record_paths(data_dir) == []


def test_writes_failing_for_lack_of_space_stop_the_run_with_74_leave_no_partial_file_and_a_rerun_completes(
    sim, reference, tmp_path
):
    digest, _ = reference
    args = ["--quiet", "run", *RANGE, "--workers", "1", "--threads", "1", "--terminal-url", sim.url, "--data-dir", "data"]
    full = spxdl(*args, cwd=tmp_path, limit=FILE_SIZE_LIMIT)
    data_dir = tmp_path / "data"
    assert full.returncode == 74, full.stderr
    [line] = [line for line in full.stderr.splitlines() if "cannot write" in line]  # one clear line
    assert "file-size limit (ulimit -f)" in line and "nothing partial was kept" in line and "spxdl resume" in line
    assert "Traceback" not in full.stderr and "Logging error" not in full.stderr
    consistent(data_dir)  # no partial file, no temp file: what landed is whole and recorded
    assert all(path.stat().st_size <= FILE_SIZE_LIMIT for path in data_files(data_dir))
    assert len(data_files(data_dir)) < len(digest)
    [record] = [json.loads(path.read_text()) for path in storage.run_record_paths(data_dir)]
    assert record["state"] == RunRecordState.INTERRUPTED and "cannot write" in record["reason"]

    again = spxdl(*args, cwd=tmp_path)  # space is back
    assert again.returncode == 0, again.stderr
    assert archive_digest(data_dir) == digest
    consistent(data_dir)
    assert storage.run_record_paths(data_dir) == []


def test_a_disk_too_full_to_claim_a_task_stops_the_run_with_74_instead_of_failing_every_task(sim, reference, tmp_path):
    data_dir = tmp_path / "data"
    tasks = {Task("greeks-1m", "SPXW", date(1990, 1, 1) + timedelta(days=n)).key: task_summary(new_day(
        Task("greeks-1m", "SPXW", date(1990, 1, 1) + timedelta(days=n)))) for n in range(1000)}
    storage.write_json_atomic(storage.status_path(data_dir), {"version": 1, "tasks": tasks, "states": {}}, compact=True)
    assert storage.status_path(data_dir).stat().st_size > FILE_SIZE_LIMIT  # a claim rewrites it: past the limit
    args = ["--quiet", "run", *RANGE, "--terminal-url", sim.url, "--data-dir", "data"]
    full = spxdl(*args, cwd=tmp_path, limit=FILE_SIZE_LIMIT)
    assert full.returncode == 74, full.stderr
    assert [line for line in full.stderr.splitlines() if "cannot write" in line] == [
        "  STOPPED: cannot write data/status.json: the file-size limit (ulimit -f) or the file system's "
        "largest file size was reached; nothing partial was kept. Free space on the data dir's disk (or raise the "
        "limit), then run `spxdl resume`."]
    assert data_files(data_dir) == [] and temp_files(data_dir) == []  # the re-run: the test above


def test_ledger_files_corrupted_between_runs_are_moved_aside_rebuilt_and_nothing_is_fetched_twice(
    sim, reference, tmp_path
):
    digest, once = reference
    settings = make_settings(tmp_path, sim.url, max_dte=8)
    assert engine.run(engine.plan(settings, START, date(2024, 1, 9)), settings).complete  # the first two days
    before = set(archive_digest(tmp_path))
    corrupted = [storage.status_path(tmp_path), storage.inventory_path(tmp_path),
                 *sorted(tmp_path.rglob("_day.json"))]
    for number, path in enumerate(corrupted):
        path.write_bytes([b"", b"{\"version\": 1, \"tas", b"\x00" * 64][number % 3])  # empty, cut, garbage
    sim.reset_counters()

    rerun = spxdl("run", *RANGE, "--terminal-url", sim.url, "--data-dir", str(tmp_path), cwd=tmp_path)

    assert rerun.returncode == 0, rerun.stderr
    assert sorted(path.name.split(".corrupt-")[0] for path in tmp_path.rglob("*.corrupt-*")) == sorted(
        path.name for path in corrupted)
    fetched = served(sim)
    assert fetched and all(day > "2024-01-09" for _, day, _ in fetched)  # only the days not yet downloaded
    assert all(rows == once[key] for key, rows in fetched.items())  # each served once
    assert set(archive_digest(tmp_path)) > before and archive_digest(tmp_path) == digest
    consistent(tmp_path)
    verify = spxdl("verify", "--data-dir", str(tmp_path), cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout
