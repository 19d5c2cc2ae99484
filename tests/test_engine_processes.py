"""The parent's side of the worker processes: as many requests in flight as the terminal allows, one
listing for all workers, tasks that never started left to do, workers that cannot start, and no
process left behind when the terminal cannot be found."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from datetime import date

import pytest

from engine_helpers import REPO, DenyingTerminal, claims, data_files, make_settings
from spxdl import engine
from spxdl.errors import TerminalUnavailable
from spxdl.simulator import Faults


def run_range(settings, start, end):
    return engine.run(engine.plan(settings, start, end), settings)


def test_max_in_flight_8_alone_keeps_8_requests_in_flight(sim, tmp_path):
    # nothing but max_in_flight set: workers and threads follow from it
    settings = make_settings(tmp_path, sim.url, workers=None, threads=None, max_in_flight=8, max_dte=13)
    sim.set_faults(Faults(latency=0.3, max_concurrent=8))
    sim.reset_counters()
    try:
        summary = run_range(settings, date(2024, 1, 8), date(2024, 1, 19))  # ten tasks, two expirations each
    finally:
        sim.set_faults(Faults())
    served = sim.counters()
    assert summary.complete
    assert served["max_concurrency"] == 8
    assert not any("429" in by_status for by_status in served["requests"].values())


def test_the_parent_finds_the_terminal_and_lists_each_root_once_for_every_worker(clean_sim, tmp_path):
    settings = make_settings(tmp_path, clean_sim.url, workers=3, roots=("SPXW", "SPX"), max_dte=3)
    summary = run_range(settings, date(2024, 1, 8), date(2024, 1, 12))
    served = clean_sim.counters()["requests"]
    asked = {kind: sum(sum(by_status.values()) for path, by_status in served.items() if kind in path)
             for kind in ("list/expirations", "mdds/status")}
    assert summary.complete and asked == {"list/expirations": 2, "mdds/status": 1}, served  # SPXW and SPX


def test_tasks_waiting_for_their_turn_when_the_run_stops_are_left_not_started(clean_sim, tmp_path):
    # one download at a time (and a spare thread), three expirations per task: the second task
    # waits for its turn when the first one's 471 stops the run
    with DenyingTerminal(clean_sim.url) as terminal:
        settings = make_settings(tmp_path, terminal.url, terminal_api="v2", workers=1, threads=1, max_dte=16)
        summary = run_range(settings, date(2024, 1, 10), date(2024, 1, 16))  # four trading days
    assert [result.state for result in summary.results] == ["interrupted"], summary.results
    assert [task.trade_date for task in summary.not_started] == [date(2024, 1, 11), date(2024, 1, 12), date(2024, 1, 16)]
    assert claims(tmp_path) == [] and data_files(tmp_path) == []


def test_no_worker_is_left_behind_when_the_terminal_cannot_be_found(tmp_path):
    settings = make_settings(tmp_path, "http://127.0.0.1:9", workers=3, retries=0, expiration_attempts=1)
    with pytest.raises(TerminalUnavailable):
        run_range(settings, date(2024, 1, 8), date(2024, 1, 12))
    assert multiprocessing.active_children() == []  # started early, ended with the failed detection


# A driver whose spawned workers die the moment they start (they re-import this as their main module).
DYING_WORKERS = """
import sys
if __name__ == "__mp_main__":  # a spawned worker importing its parent's main module
    raise SystemExit(3)
from datetime import date
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from engine_helpers import make_settings
from spxdl import engine
if __name__ == "__main__":
    settings = make_settings(Path(sys.argv[1]), sys.argv[2], workers=2)
    summary = engine.run(engine.plan(settings, date(2024, 1, 8), date(2024, 1, 12)), settings)
    print(sorted(summary.by_state().items()), summary.results[0].error)
"""


def test_workers_that_cannot_start_fail_the_run_instead_of_being_started_forever(clean_sim, tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(DYING_WORKERS)
    done = subprocess.run([sys.executable, str(driver), str(tmp_path / "data"), clean_sim.url, str(REPO / "tests")],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "[('failed', 5)]" in done.stdout and "died before doing anything" in done.stdout, done.stdout
