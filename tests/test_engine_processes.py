"""The parent's side of the worker processes: as many requests in flight as the terminal allows, one
listing for all workers, tasks that never started left to do, workers that cannot start, and no
process left behind when the terminal cannot be found."""

from __future__ import annotations

import logging
import multiprocessing
import os
import subprocess
import sys
import threading
from datetime import date

import pytest

from engine_helpers import (
    REPO,
    DenyingTerminal,
    archive_digest,
    claims,
    day_files,
    data_files,
    file_rows,
    ledger_problems,
    make_settings,
    served_rows,
    wait_until,
)
from spxdl import engine
from spxdl.errors import PermissionDenied, TerminalUnavailable
from spxdl.ledger import Ledger, Task
from spxdl.simulator import Faults


def run_range(settings, start, end, on_event=None):
    """A run in a thread: one that hangs fails the test instead of blocking the suite."""
    outcome: list = []
    runner = threading.Thread(target=lambda: outcome.append(
        engine.run(engine.plan(settings, start, end), settings, on_event=on_event)), daemon=True)
    runner.start()
    runner.join(90)
    assert outcome, "the run did not end"
    return outcome[0]


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
        engine.run(engine.plan(settings, date(2024, 1, 8), date(2024, 1, 12)), settings)
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


# ---------------------------------------------------------------------------------------------
# a task shared among workers (a single day, the last task of a run)


def test_a_single_day_is_shared_among_the_workers_and_ends_as_if_one_had_done_it(clean_sim, tmp_path):
    day = date(2024, 1, 10)  # four Friday expirations in DTE 0..29
    alone = make_settings(tmp_path / "alone", clean_sim.url, workers=1, threads=1, max_dte=29)
    assert run_range(alone, day, day).complete
    shared = make_settings(tmp_path / "shared", clean_sim.url, workers=3, threads=1, max_dte=29)
    clean_sim.reset_counters()
    events: list = []
    summary = run_range(shared, day, day, on_event=events.append)
    assert summary.complete and summary.totals()["expirations"] == {"complete": 4}
    assert len({e.pid for e in events if e.kind == "expiration_done"}) == 3  # the owner and two helpers
    # the progress display's count: the owner lists the whole window once, the helpers' shares included
    assert [e.total for e in events if e.kind == "expirations_listed"] == [4]
    assert served_rows(clean_sim) == file_rows(tmp_path / "shared")  # nothing fetched twice
    assert archive_digest(tmp_path / "shared") == archive_digest(tmp_path / "alone")
    assert ledger_problems(tmp_path / "shared") == [] and claims(tmp_path / "shared") == []
    assert engine.plan(shared, day, day).tasks == ()


def test_a_single_day_keeps_max_in_flight_requests_in_flight(sim, tmp_path):
    # nothing but max_in_flight set: one task, yet every slot busy (the nightly update's case)
    day = date(2024, 1, 10)  # eight Friday expirations in DTE 0..55: two rounds for each of two workers
    settings = make_settings(tmp_path, sim.url, workers=None, threads=None, max_in_flight=4, max_dte=55)
    sim.set_faults(Faults(latency=1.0, max_concurrent=4))
    sim.reset_counters()
    try:
        summary = run_range(settings, day, day)
    finally:
        sim.set_faults(Faults())
    assert summary.complete and sim.counters()["max_concurrency"] == 4


def test_a_shared_task_stopped_by_a_471_releases_its_claim_and_no_helper_is_left_waiting(clean_sim, tmp_path):
    day = date(2024, 1, 10)
    with DenyingTerminal(clean_sim.url) as terminal:
        settings = make_settings(tmp_path, terminal.url, terminal_api="v2", workers=3, threads=1, max_dte=29)
        summary = run_range(settings, day, day)
    assert [result.state for result in summary.results] == ["interrupted"]
    assert isinstance(summary.stopped_by, PermissionDenied)
    assert claims(tmp_path) == [] and data_files(tmp_path) == []
    assert multiprocessing.active_children() == []


def test_helpers_stop_when_the_shared_tasks_claim_is_taken_over(sim, tmp_path):
    day = date(2024, 1, 10)
    task = Task("greeks-1m", "SPXW", day)
    settings = make_settings(tmp_path, sim.url, workers=3, threads=1, max_dte=29, heartbeat_seconds=0.2,
                             stale_after=1.0)
    events: list = []
    sim.set_faults(Faults(latency=0.5))
    try:
        outcome: list = []
        runner = threading.Thread(target=lambda: outcome.append(engine.run(engine.plan(settings, day, day), settings,
                                                                           on_event=events.append)))
        runner.start()
        assert wait_until(lambda: any(e.kind == "task_started" for e in events), 20)
        impatient = Ledger(tmp_path, stale_after=0.01)  # another run that calls every claim stale
        assert wait_until(lambda: impatient.claim(task, min_dte=0, max_dte=29), 5)
        runner.join(60)
    finally:
        sim.set_faults(Faults())
    assert outcome, "the run did not end"
    assert [result.state for result in outcome[0].results] == ["held"]
    assert Ledger(tmp_path).day(task)["claim"]["pid"] == os.getpid()  # left to the run that took it


def test_workers_and_threads_too_few_for_the_slots_are_named_in_a_warning(clean_sim, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="spxdl")
    day = date(2024, 1, 10)
    run_range(make_settings(tmp_path / "few", clean_sim.url, workers=1, threads=1, max_in_flight=4), day, day)
    assert "at most 1 requests in flight" in caplog.text and "leave workers and threads unset" in caplog.text
    caplog.clear()
    run_range(make_settings(tmp_path / "auto", clean_sim.url, workers=None, threads=None, max_in_flight=4), day, day)
    assert "request threads for max_in_flight" not in caplog.text


# A fresh process (its fork server is its own): the fork server starts with the first run, while the
# environment sends every request through a proxy that is not there (the run cannot find its
# terminal); then the environment says the terminal's host needs no proxy, and the second run's
# workers must see that too, though the fork server they are forked from never did.
ENVIRONMENT_PROBE = """
import os, sys
from datetime import date
from pathlib import Path
from spxdl import engine
from spxdl.config import Settings
from spxdl.errors import TerminalUnavailable
from spxdl.simulator import Simulator

day = date(2024, 1, 10)
with Simulator(profile="tiny") as sim:
    settings = Settings(terminal_url=sim.url, data_dir=Path(sys.argv[1]), max_dte=3, connect_timeout=0.5, retries=0,
                        outage_limit=1.0)
    os.environ["HTTP_PROXY"] = "http://127.0.0.1:9"  # nothing listens there
    try:
        engine.run(engine.plan(settings, day, day), settings)
    except TerminalUnavailable:
        print("first run: no terminal")
    os.environ["NO_PROXY"] = "127.0.0.1"
    print("second run:", engine.run(engine.plan(settings, day, day), settings).by_state())
"""


def test_workers_take_the_environment_of_their_run_not_the_one_the_fork_server_started_with(tmp_path):
    env = {key: value for key, value in os.environ.items() if "proxy" not in key.lower()}
    done = subprocess.run([sys.executable, "-c", ENVIRONMENT_PROBE, str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.splitlines() == ["first run: no terminal", "second run: {'success': 1}"], done.stdout + done.stderr


def test_the_parent_starts_its_workers_before_it_loads_their_code():
    # the workers' code (the converter's Arrow modules, HTTP) is the fork server's to import: the
    # parent that only plans and drives a run never pays for it before its workers start
    probe = ("import sys, spxdl.engine.pool; print([m for m in ('spxdl.engine.serving', 'spxdl.engine.worker', "
             "'spxdl.convert', 'spxdl.terminal', 'requests', 'pyarrow.compute', 'pyarrow.csv') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


# A run whose single day is shared between two workers: the helper's outcomes travel through the
# parent, which must forward them without loading the converter or Arrow's compute kernels (about a
# quarter of a CPU-second, taken from the workers while they convert).
WORKER_CODE = ('spxdl.engine.serving', 'spxdl.engine.worker', 'spxdl.engine.download', 'spxdl.convert',
               'pyarrow.compute', 'pyarrow.csv')
PARENT_PROBE = """
import sys
from datetime import date
from pathlib import Path
from spxdl import engine
from spxdl.config import Settings

day = date(2024, 1, 10)
settings = Settings(terminal_url=sys.argv[1], data_dir=Path(sys.argv[2]), workers=2, threads=1, max_in_flight=2,
                    max_dte=30)
summary = engine.run(engine.plan(settings, day, day), settings)
print(summary.by_state(), [name for name in %r if name in sys.modules])
""" % (WORKER_CODE,)


def test_a_parent_that_forwards_a_helpers_outcomes_never_loads_the_workers_code(clean_sim, tmp_path):
    done = subprocess.run([sys.executable, "-c", PARENT_PROBE, clean_sim.url, str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.strip() == "{'success': 1} []", done.stdout + done.stderr
    served = clean_sim.counters()["requests"]
    assert sum(sum(by_status.values()) for path, by_status in served.items() if "history" in path) >= 2, served


def test_a_crew_started_on_its_own_thread_is_waited_for_and_what_starting_it_raised_is_raised_where_it_is_wanted():
    from spxdl.engine.processes import CrewStart

    ready = threading.Event()

    def slow_start():
        ready.wait(5)
        return "the crew"

    starting = CrewStart(slow_start)
    ready.set()
    assert starting.crew() == "the crew"

    def failing_start():
        raise OSError("too many open files")

    failed = CrewStart(failing_start)
    assert failed.started() is None  # where another error is on its way, this one does not replace it
    with pytest.raises(OSError, match="too many open files"):
        failed.crew()


def test_a_workers_claim_names_the_run_it_works_for_not_the_fork_server(sim, tmp_path):
    # a claim's ppid is the run's process: what a user (or the soak) matches a run's claims by
    settings = make_settings(tmp_path, sim.url, workers=1, threads=1, max_dte=8)
    sim.set_faults(Faults(latency=0.3))
    seen: list = []
    try:
        def watch(event):
            if event.kind == "task_started":
                seen.extend(day.get("claim", {}).get("ppid") for day in day_files(tmp_path).values() if day.get("claim"))
        run_range(settings, date(2024, 1, 10), date(2024, 1, 10), on_event=watch)
    finally:
        sim.set_faults(Faults())
    assert seen and set(seen) == {os.getpid()}
