"""The engine against the simulator over loopback, with real worker processes and real files."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Callable

import pyarrow.parquet as pq
import pytest

from engine_helpers import (
    END,
    REPO,
    START,
    DenyingTerminal,
    Driver,
    archive_digest,
    claims,
    data_files,
    file_rows,
    ledger_problems,
    make_settings,
    served_rows,
    temp_files,
    wait_until,
)
from once import copy_into
from spxdl import engine, metrics
from spxdl.errors import ArchiveMismatch, ConfigError, PermissionDenied, TerminalUnavailable
from spxdl.ledger import Ledger, Task, new_expiration_entry
from spxdl.simulator import Faults, Simulator


@pytest.fixture(scope="module", name="reference_archive")
def fixture_reference_archive(sim, tmp_path_factory):
    """A clean run's archive of the standard range (a test that needs it as its start takes a copy)."""
    data_dir = tmp_path_factory.mktemp("reference")
    settings = make_settings(data_dir, sim.url)
    summary = engine.run(engine.plan(settings, START, END), settings)
    assert summary.complete, summary
    return data_dir


@pytest.fixture(scope="module", name="reference")
def fixture_reference(reference_archive):
    """The clean run's archive of the standard range: path -> sha256."""
    return archive_digest(reference_archive)


HOLD_A_CLAIM = """
import sys, time
from datetime import date
from spxdl.ledger import Ledger, Task, new_expiration_entry
Ledger(sys.argv[1]).claim(Task("greeks-1m", "SPXW", date.fromisoformat(sys.argv[2])), min_dte=0, max_dte=8)
print("claimed", flush=True)
time.sleep(60)
"""


def run_range(settings, start=START, end=END, force=False, on_event=None):
    return engine.run(engine.plan(settings, start, end, force=force), settings, on_event=on_event)


# ---------------------------------------------------------------------------------------------
# plan and estimate


def test_plan_lists_trading_days_for_each_archive_and_root_and_creates_nothing(tmp_path):
    settings = make_settings(tmp_path / "data", "http://127.0.0.1:9", roots=("SPXW", "SPX"))
    plan = engine.plan(settings, date(2024, 1, 12), date(2024, 1, 16))  # Fri, weekend, MLK day, Tue
    assert [task.key for task in plan.tasks] == [
        "greeks-1m/SPXW/2024-01-12",
        "greeks-1m/SPX/2024-01-12",
        "greeks-1m/SPXW/2024-01-16",
        "greeks-1m/SPX/2024-01-16",
    ]
    assert (plan.done, plan.held, plan.force) == ((), (), False)
    assert not (tmp_path / "data").exists()


def test_plan_rejects_a_start_after_the_end(tmp_path):
    with pytest.raises(ConfigError, match="after the end"):
        engine.plan(make_settings(tmp_path, "http://127.0.0.1:9"), END, START)


def test_estimate_gives_rough_positive_figures_and_fewer_for_monthlies(tmp_path):
    settings = make_settings(tmp_path, "http://127.0.0.1:9", roots=("SPXW", "SPX"), max_dte=30)
    plan = engine.plan(settings, START, END)
    figures = engine.estimate(plan, settings)
    assert figures["tasks"] == 4 and figures["requests"] > figures["expirations"] > 0
    assert figures["rows"] > 0 and figures["bytes"] > 0
    spx_only = engine.estimate(engine.plan(dataclasses.replace(settings, roots=("SPX",)), START, END), settings)
    assert 0 < spx_only["expirations"] < figures["expirations"] - spx_only["expirations"]
    assert not tmp_path.joinpath(".spxdl.lock").exists()


def test_task_state_from_expiration_states():
    assert engine.task_state([]) == "success"  # a window holding no listed expiration
    assert engine.task_state(["no_data", "no_data"]) == "no_data"
    assert engine.task_state(["complete", "no_data"]) == "success"
    assert engine.task_state(["complete", "failed"]) == "partial"
    assert engine.task_state(["failed", "no_data"]) == "failed"
    assert engine.task_state(["failed"]) == "failed"


def append_metrics_rows(data_dir: Path, writer: int) -> None:
    for n in range(50):
        metrics.append(data_dir, [metrics.MetricsRow("task", f"w{writer}/{n}", "success", n, n * 10, 0.5)])


def test_metrics_rows_from_concurrent_processes_all_land_under_one_header(tmp_path):
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=append_metrics_rows, args=(tmp_path, w)) for w in range(4)]
    for process in writers:
        process.start()
    for process in writers:
        process.join()
    rows = metrics.read(tmp_path)
    assert sorted(row["key"] for row in rows) == sorted(f"w{w}/{n}" for w in range(4) for n in range(50))
    assert metrics.metrics_path(tmp_path).read_text().count("kind,key,") == 1
    assert rows[0]["rows_per_s"] == str(int(rows[0]["rows"]) * 2)


# ---------------------------------------------------------------------------------------------
# a run, resume, force


def test_run_downloads_verified_files_records_them_and_a_rerun_plans_nothing(reference, clean_sim, tmp_path):
    settings = make_settings(tmp_path, clean_sim.url)
    events = []
    summary = run_range(settings, on_event=events.append)

    assert summary.complete and summary.by_state() == {"success": 2}
    assert summary.simulated and summary.api in ("v2", "v3")
    assert archive_digest(tmp_path) == reference
    assert ledger_problems(tmp_path) == [] and claims(tmp_path) == [] and temp_files(tmp_path) == []
    totals = summary.totals()
    files = data_files(tmp_path)
    assert totals["rows"] == sum(pq.ParquetFile(path).metadata.num_rows for path in files) > 0
    assert totals["bytes"] == sum(path.stat().st_size for path in files)
    assert totals["expirations"] == {"complete": len(files)}

    kinds = Counter(event.kind for event in events if event.kind != "expiration_progress")  # those come with time
    assert kinds == {"task_started": 2, "expirations_listed": 2, "expiration_done": len(files), "task_done": 2}
    assert sum(event.total for event in events if event.kind == "expirations_listed") == len(files)
    assert sum(event.rows for event in events if event.kind == "expiration_done") == totals["rows"]

    rows = metrics.read(tmp_path)
    assert [(row["kind"], row["state"]) for row in rows] == [("task", "success")] * 2 + [("run", "complete")]
    assert int(rows[-1]["rows"]) == totals["rows"]

    before = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*")}
    again = engine.plan(settings, START, END)
    assert again.tasks == () and len(again.done) == 2
    assert engine.run(again, settings).results == []
    assert {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*")} == before


def test_force_downloads_again_and_replaces_files_with_identical_bytes(reference, reference_archive, clean_sim, tmp_path):
    settings = make_settings(tmp_path, clean_sim.url, workers=1)
    copy_into(reference_archive, tmp_path)  # the standard range, complete
    inodes = {path: path.stat().st_ino for path in data_files(tmp_path)}
    clean_sim.reset_counters()

    summary = run_range(settings, force=True)

    assert summary.complete and served_rows(clean_sim) == file_rows(tmp_path)  # each one exactly once
    assert archive_digest(tmp_path) == reference
    assert all(path.stat().st_ino != inode for path, inode in inodes.items())  # atomically replaced


def test_a_wider_dte_window_plans_the_days_again_and_fetches_only_new_expirations(reference, clean_sim, tmp_path):
    narrow = make_settings(tmp_path, clean_sim.url, max_dte=3)
    run_range(narrow)
    narrow_files = archive_digest(tmp_path)
    narrow_rows = file_rows(tmp_path)
    wide = make_settings(tmp_path, clean_sim.url)  # max_dte 8, as the reference
    plan = engine.plan(wide, START, END)
    assert len(plan.tasks) == 2 and plan.done == ()
    clean_sim.reset_counters()

    summary = engine.run(plan, wide)

    wide_files = archive_digest(tmp_path)
    assert summary.complete and set(narrow_files) < set(wide_files)
    new = {key: rows for key, rows in file_rows(tmp_path).items() if key not in narrow_rows}
    assert new and served_rows(clean_sim) == new
    assert all(wide_files[path] == digest for path, digest in narrow_files.items())
    assert sum(result.skipped for result in summary.results) == len(narrow_files)
    assert wide_files == reference


def test_a_day_without_expirations_in_the_window_is_complete_with_nothing_to_fetch(clean_sim, tmp_path):
    settings = make_settings(tmp_path, clean_sim.url, min_dte=0, max_dte=0, workers=1)  # tiny lists Fridays only
    summary = run_range(settings, START, START)
    assert summary.by_state() == {"success": 1} and summary.complete
    assert data_files(tmp_path) == []
    assert engine.plan(settings, START, START).tasks == ()


def test_an_spx_monthly_is_not_fetched_on_its_settlement_day(clean_sim, tmp_path):
    # the AM-settled SPX 2024-01-19 stopped trading on the 18th: asking for it would be a 472
    settings = make_settings(tmp_path, clean_sim.url, roots=("SPX",), max_dte=0, workers=1)
    settlement_day = date(2024, 1, 19)
    summary = run_range(settings, settlement_day, settlement_day)
    assert summary.by_state() == {"success": 1} and summary.results[0].expirations == {}
    day_before = date(2024, 1, 18)
    summary = run_range(dataclasses.replace(settings, max_dte=1), day_before, day_before)
    assert summary.results[0].expirations == {"complete": 1}


def test_a_root_the_terminal_does_not_list_is_no_data_and_planned_again(clean_sim, tmp_path):
    settings = make_settings(tmp_path, clean_sim.url, roots=("XYZ",), workers=1)
    summary = run_range(settings, START, START)
    assert summary.by_state() == {"no_data": 1} and not summary.complete
    assert "lists no expiration for XYZ" in summary.results[0].error
    assert engine.plan(settings, START, START).tasks == (Task("greeks-1m", "XYZ", START),)


def test_no_terminal_raises_out_of_run_before_any_worker_starts(tmp_path):
    settings = make_settings(tmp_path, "http://127.0.0.1:9", connect_timeout=0.5)  # nothing listens there
    with pytest.raises(TerminalUnavailable):
        run_range(settings)
    assert data_files(tmp_path) == [] and not list(tmp_path.glob("*/_archive.json"))


def test_an_archive_of_another_shape_is_refused_before_any_worker_starts(clean_sim, tmp_path):
    settings = make_settings(tmp_path, clean_sim.url, max_dte=0, workers=1)
    run_range(settings, START, START)
    with pytest.raises(ArchiveMismatch, match="rate_value"):
        run_range(dataclasses.replace(settings, rate_value=0.05), START, END)
    assert [task.trade_date for task in engine.plan(settings, START, END).tasks] == [END]  # nothing was written


# ---------------------------------------------------------------------------------------------
# faults


def test_cut_bodies_and_expired_pages_are_fetched_again_until_complete(tmp_path):
    # v2 (477 applies to /v2/page fetches), 3 pages per expiration; one worker and one thread
    # make the seeded fault draws land the same way every time
    with Simulator(profile="tiny", page_rows=1500) as sim:
        clean = make_settings(tmp_path / "clean", sim.url, terminal_api="v2", workers=1)
        assert run_range(clean).complete
        sim.set_faults(Faults(cut_rate=0.35, page_expire_rate=0.35))
        faulty = make_settings(
            tmp_path / "faulty", sim.url, terminal_api="v2", expiration_attempts=20, workers=1, threads=1
        )
        events = []
        summary = run_range(faulty, on_event=events.append)
        counters = sim.counters()
    assert summary.complete, summary.failed
    retries = [event for event in events if event.kind == "retry"]
    assert summary.totals()["retries"] == len(retries) > 0 and counters["cut"]["responses"] > 0
    assert counters["requests"]["/v2/page"].get("477", 0) > 0
    assert archive_digest(tmp_path / "faulty") == archive_digest(tmp_path / "clean")
    assert ledger_problems(tmp_path / "faulty") == [] and temp_files(tmp_path / "faulty") == []


def test_a_task_a_live_process_holds_is_left_out_of_the_plan_until_that_process_is_gone(clean_sim, tmp_path):
    settings = make_settings(tmp_path, clean_sim.url)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_CLAIM, str(tmp_path), START.isoformat()],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    try:
        assert holder.stdout.readline().strip() == "claimed"
        plan = engine.plan(settings, START, END)
        assert plan.held == (Task("greeks-1m", "SPXW", START),) and [t.trade_date for t in plan.tasks] == [END]
        summary = engine.run(plan, settings)
        assert summary.held == 1 and not summary.complete and summary.by_state() == {"success": 1}
    finally:
        holder.kill()
        holder.wait()
    assert wait_until(lambda: engine.plan(settings, START, END).tasks == (Task("greeks-1m", "SPXW", START),), 10)


def run_killing_a_worker(
    settings, start, end, kill_on: Callable[[engine.Event, list[int]], int | None], events: list | None = None
):
    """Run in a thread (a run that hangs fails the test instead of blocking it); SIGKILL the
    worker ``kill_on(event, pids of started tasks)`` names, once. ``events``: every event, kept."""
    started: list[int] = []
    killed: list[int] = []

    def watch(event: engine.Event) -> None:
        if events is not None:
            events.append((event, bool(killed)))
        if event.kind == "task_started":
            started.append(event.pid)
        victim = None if killed else kill_on(event, started)
        if victim is not None:
            killed.append(victim)
            os.kill(victim, signal.SIGKILL)

    outcome = []
    runner = threading.Thread(target=lambda: outcome.append(run_range(settings, start, end, on_event=watch)))
    runner.start()
    runner.join(timeout=60)
    assert killed and outcome, "the run did not end"
    return outcome[0]


def test_a_worker_that_dies_fails_only_its_tasks_and_the_run_goes_on(reference, sim, tmp_path):
    def the_first_once_both_work(event, started):  # the other worker is busy: the pool must end it too
        return started[0] if event.kind == "task_started" and len(started) == 2 else None

    events: list = []
    sim.set_faults(Faults(latency=0.2))  # tasks last long enough for the kill to land mid-task
    try:
        # both killed workers may hold an in-flight slot: the next pool must not start without any
        settings = make_settings(tmp_path, sim.url, max_in_flight=2)
        summary = run_killing_a_worker(settings, START, date(2024, 1, 16), the_first_once_both_work, events)
    finally:
        sim.set_faults(Faults())
    # the tasks the killed worker had started fail (one, or more if it had several going); the
    # other worker's, cut short when the crew was killed, and the rest of the four days are run
    # by a new crew
    victim = next(event.pid for event, _ in events if event.kind == "task_started")
    victims_tasks = {event.task for event, after in events if event.kind == "task_started" and event.pid == victim
                     and not after}
    failed = {result.task for result in summary.failed}
    assert failed and failed <= victims_tasks, (failed, victims_tasks)
    assert summary.by_state() == {"failed": len(failed), "success": 4 - len(failed)}, summary.by_state()
    assert all("died" in result.error for result in summary.failed)
    assert claims(tmp_path) == []
    assert run_range(settings, START, date(2024, 1, 16)).complete
    assert temp_files(tmp_path) == [] and ledger_problems(tmp_path) == []
    assert {path: digest for path, digest in archive_digest(tmp_path).items() if path in reference} == reference


def test_a_task_cut_short_by_another_workers_death_runs_again_once_then_fails(sim, tmp_path):
    # one day, two workers: the task's owner is innocent when the other dies, and its task goes to
    # the next crew; cut short a second time it fails, or a worker that always dies would loop forever
    kills: list[int] = []

    def kill_another_worker(event) -> None:
        if event.kind == "task_started" and len(kills) < 2:
            others = [p.pid for p in multiprocessing.active_children() if p.name == "spxdl-worker" and p.pid != event.pid]
            kills.append(others[0])
            os.kill(others[0], signal.SIGKILL)

    sim.set_faults(Faults(latency=0.2))
    try:
        settings = make_settings(tmp_path, sim.url, max_in_flight=2, workers=2, threads=1)
        summary = run_range(settings, START, START, on_event=kill_another_worker)
    finally:
        sim.set_faults(Faults())
    assert len(kills) == 2 and summary.by_state() == {"failed": 1}, (kills, summary.by_state())
    assert "another worker's, twice" in summary.failed[0].error
    assert claims(tmp_path) == [] and run_range(settings, START, START).complete


def test_a_worker_killed_while_idle_does_not_leave_the_run_waiting_for_the_other(sim, tmp_path):
    # An idle worker waits for its next task holding the pool's queue lock: killed there, the
    # lock stays taken and the other worker can never read the pool's "exit" message.
    def the_first_done(event, started):
        return event.pid if event.kind == "task_done" else None

    sim.set_faults(Faults(latency=0.3))
    try:
        settings = make_settings(tmp_path, sim.url, threads=1, max_dte=15)  # 2 and 3 expirations
        summary = run_killing_a_worker(settings, START, END, the_first_done)
    finally:
        sim.set_faults(Faults())
    assert sum(result.state in ("success", "failed") for result in summary.results) == 2
    assert claims(tmp_path) == [] and run_range(settings, START, END).complete


def test_a_subscription_without_the_data_stops_the_run_with_its_message(clean_sim, tmp_path):
    with DenyingTerminal(clean_sim.url) as terminal:
        settings = make_settings(tmp_path, terminal.url, terminal_api="v2", workers=1)
        summary = run_range(settings, START, date(2024, 1, 16))  # four trading days
    assert isinstance(summary.stopped_by, PermissionDenied) and "471" in str(summary.stopped_by)
    assert summary.interrupted is None and not summary.complete
    # the first 471 stops the run: the task that met it, and those that took their turn meanwhile
    # (a worker has threads + 1 at most), are interrupted; nothing more is handed out
    assert summary.results and {result.state for result in summary.results} == {"interrupted"}
    assert summary.not_started and len(summary.results) + len(summary.not_started) == 4
    assert data_files(tmp_path) == [] and temp_files(tmp_path) == [] and claims(tmp_path) == []
    assert len(engine.plan(settings, START, date(2024, 1, 16)).tasks) == 4  # nothing counts as done


def test_two_runs_at_once_download_every_expiration_once(reference, clean_sim, tmp_path):
    # far from New York, on both sides of the date line: the archive must not change
    first = Driver(tmp_path, clean_sim.url, tz="Pacific/Kiritimati")
    second = Driver(tmp_path, clean_sim.url, tz="Pacific/Pago_Pago")
    first.wait(), second.wait()
    # each task is done by one run and left by the other ("held", exit 1) or already done
    states = Counter()
    for driver in (first, second):
        summary = [line for line in driver.output if line.startswith("summary ")]
        assert summary, driver.text()
        states.update(json.loads(summary[0].split(" ", 1)[1].rsplit(" interrupted", 1)[0]))
    assert states["success"] >= 2 and set(states) <= {"success", "held"}, states
    assert served_rows(clean_sim) == file_rows(tmp_path)  # each expiration served once in all
    assert archive_digest(tmp_path) == reference
    assert ledger_problems(tmp_path) == [] and claims(tmp_path) == []
    assert engine.plan(make_settings(tmp_path, clean_sim.url), START, END).tasks == ()


# ---------------------------------------------------------------------------------------------
# claims kept alive by heartbeats, and a takeover noticed (short times set by the test)

HEARTBEAT, STALE = 0.2, 1.0


def run_in_thread(settings, start, end, on_event=None) -> tuple[threading.Thread, list]:
    outcome: list = []
    runner = threading.Thread(target=lambda: outcome.append(run_range(settings, start, end, on_event=on_event)))
    runner.start()
    return runner, outcome


def test_heartbeats_keep_a_long_tasks_claim_live_past_the_stale_time(sim, tmp_path):
    task = Task("greeks-1m", "SPXW", START)
    settings = make_settings(tmp_path, sim.url, workers=1, threads=1, max_dte=16, heartbeat_seconds=HEARTBEAT,
                             stale_after=STALE)
    events: list[engine.Event] = []
    sim.set_faults(Faults(latency=0.5))  # three expirations: the task lasts well past the stale time
    try:
        runner, outcome = run_in_thread(settings, START, START, on_event=events.append)
        assert wait_until(lambda: any(e.kind == "task_started" for e in events), 20)
        live = []
        deadline = time.monotonic() + 2.5 * STALE
        while time.monotonic() < deadline and not any(e.kind == "task_done" for e in events):
            ledger = Ledger(tmp_path, stale_after=STALE)
            # held, or finished already (the task_done event may still be on its way)
            live.append(ledger.is_held(task) or ledger.day(task)["state"] != "in_progress")
            time.sleep(0.1)
        runner.join(60)
    finally:
        sim.set_faults(Faults())
    assert len(live) > 10 and all(live), "a claim went stale while its task ran: heartbeats are not written"
    assert outcome and outcome[0].complete


def test_a_claim_taken_over_is_abandoned_and_left_to_the_run_that_took_it(sim, tmp_path):
    task = Task("greeks-1m", "SPXW", START)
    settings = make_settings(tmp_path, sim.url, workers=1, threads=1, max_dte=29, heartbeat_seconds=HEARTBEAT,
                             stale_after=STALE)  # four Friday expirations, fetched one after the other
    fetched: list[engine.Event] = []
    sim.set_faults(Faults(latency=0.5))
    try:
        runner, outcome = run_in_thread(settings, START, START, on_event=fetched.append)
        assert wait_until(lambda: any(e.kind == "expiration_done" for e in fetched), 20)
        impatient = Ledger(tmp_path, stale_after=0.01)  # another run that calls every claim stale
        assert wait_until(lambda: impatient.claim(task, min_dte=0, max_dte=15), 5)
        runner.join(60)
    finally:
        sim.set_faults(Faults())
    assert outcome, "the run did not end"
    [result] = outcome[0].results
    assert result.state == "held"  # abandoned, not finished over the other run's claim
    assert Ledger(tmp_path).day(task)["claim"]["pid"] == os.getpid()
    done = [e for e in fetched if e.kind == "expiration_done" and e.state == "complete"]
    assert len(done) == 1  # the one in flight was abandoned too, and the rest left to the other run


# ---------------------------------------------------------------------------------------------
# estimates against a real run


EST_FACTOR = 3  # the dry run's figures are within this factor of what a run really does


def test_the_estimate_is_within_a_stated_factor_of_a_real_run(tmp_path):
    day = date(2024, 3, 14)
    with Simulator(profile="realistic") as realistic:
        settings = make_settings(tmp_path, realistic.url, workers=1, max_dte=1)
        plan = engine.plan(settings, day, day)
        estimate = engine.estimate(plan, settings)
        summary = engine.run(plan, settings)
        requests = sum(count for path, by_status in realistic.counters()["requests"].items()
                       if "status" not in path for count in by_status.values())
    totals = summary.totals()
    actual = {"expirations": sum(totals["expirations"].values()), "rows": totals["rows"], "bytes": totals["bytes"],
              "requests": requests}
    for name, value in actual.items():
        assert value / EST_FACTOR <= estimate[name] <= value * EST_FACTOR, (name, estimate[name], value)


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "unreadable"])
def test_a_file_renamed_into_place_by_a_run_killed_before_recording_it_is_adopted_not_fetched_again(
    reference, reference_archive, clean_sim, tmp_path, whole
):
    """Found by make soak (2 of 20 kills): a run killed between a file's rename and its record left
    the file whole in place and its record `downloading`; the next run fetched it again. A file
    there that does not read back is fetched again (and replaced)."""
    settings = make_settings(tmp_path, clean_sim.url)
    copy_into(reference_archive, tmp_path)  # the standard range, complete
    day_path = sorted(tmp_path.rglob("_day.json"))[0]
    day = json.loads(day_path.read_text())
    name = sorted(day["expirations"])[0]
    recorded = dict(day["expirations"][name])
    # what that kill leaves: the record as it was before the file landed, the task in progress
    day["expirations"][name] = {**new_expiration_entry(), "state": "downloading", "attempts": 1}
    day.update(state="in_progress", covered=[], finished_at=None)
    day_path.write_text(json.dumps(day))
    if not whole:
        path = day_path.parent / recorded["file"]
        path.write_bytes(path.read_bytes()[:1000])
    clean_sim.reset_counters()

    summary = run_range(settings)

    assert summary.complete
    assert len(served_rows(clean_sim)) == (0 if whole else 1)  # fetched again only if it did not read back
    entry = json.loads(day_path.read_text())["expirations"][name]
    assert entry["state"] == "complete"
    assert (entry["file"], entry["rows"], entry["sha256"]) == (recorded["file"], recorded["rows"], recorded["sha256"])
    assert archive_digest(tmp_path) == reference and ledger_problems(tmp_path) == []


def test_a_slow_expiration_reports_its_rows_as_they_arrive_and_ticks_come_meanwhile(tmp_path):
    with Simulator(profile="tiny", page_rows=1000, faults=Faults(latency=0.3)) as slow:
        settings = make_settings(tmp_path, slow.url, terminal_api="v2", max_dte=8, workers=1, threads=1)
        events: list = []
        ticks: list[int] = []
        summary = engine.run(engine.plan(settings, START, START), settings, on_event=events.append,
                             on_tick=lambda: ticks.append(1))
    assert summary.complete
    done = {event.expiration: event.rows for event in events if event.kind == "expiration_done"}
    progress = [event for event in events if event.kind == "expiration_progress"]
    assert progress, "four pages 0.3 s apart: the rows received are reported while they arrive"
    assert all(0 < event.rows <= done[event.expiration] for event in progress)
    assert [event.rows for event in progress] == sorted(event.rows for event in progress)
    assert ticks  # the display is redrawn while nothing lands


def test_connecting_asks_a_terminal_that_answered_badly_again_but_not_one_nobody_answers_for(tmp_path, caplog):
    import logging
    import socket

    with Simulator(profile="tiny", faults=Faults(error_rate=1.0)) as unwell:
        settings = make_settings(tmp_path / "unwell", unwell.url, retries=0)
        with caplog.at_level(logging.INFO, logger="spxdl"), pytest.raises(TerminalUnavailable):
            engine.run(engine.plan(settings, START, START), settings)
    assert "connecting to the terminal: attempt 2 of 3 failed" in caplog.text
    caplog.clear()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = make_settings(tmp_path / "nobody", nobody, retries=0)
    with caplog.at_level(logging.INFO, logger="spxdl"), pytest.raises(TerminalUnavailable, match="no ThetaData Terminal"):
        engine.run(engine.plan(settings, START, START), settings)
    assert "trying again" not in caplog.text


# ---------------------------------------------------------------------------------------------
# checks: what each task's bad rows come to, in the ledger, metrics.csv and the log


@pytest.fixture(name="crossing_sim")
def fixture_crossing_sim(clean_sim):
    """The module's simulator crossing every 7th quote (restored after the test)."""
    from spxdl.simulator import Quirks

    clean_sim.set_quirks(Quirks(crossed_every=7))
    yield clean_sim
    clean_sim.set_quirks(Quirks())


@pytest.mark.parametrize("mode", ["flag", "drop"])
def test_bad_rows_are_counted_per_task_in_the_ledger_metrics_and_the_log(crossing_sim, tmp_path, caplog, mode):
    import logging

    settings = make_settings(tmp_path, crossing_sim.url, workers=1, validation_mode=mode)
    with caplog.at_level(logging.INFO, logger="spxdl"):
        summary = run_range(settings, START, START)
    crossed = summary.totals()["checks"]["crossed_quote"]
    assert summary.complete and crossed > 0
    assert summary.totals()["dropped"] == (crossed if mode == "drop" else 0)
    key = Task("greeks-1m", "SPXW", START).key
    entry = Ledger(tmp_path).inventory()["tasks"][key]
    assert entry["checks"]["crossed_quote"] == crossed and entry.get("dropped", 0) == summary.totals()["dropped"]
    task_row, run_row = metrics.read(tmp_path)
    assert task_row["crossed_quote"] == run_row["crossed_quote"] == str(crossed)
    assert task_row["dropped"] == str(summary.totals()["dropped"])
    line = next(line for line in caplog.messages if line.startswith(f"{key}: checks flagged "))
    assert f"crossed_quote {crossed:,}" in line and f"(validation {mode}" in line
    assert ("row(s) dropped" in line) == (mode == "drop")  # in drop mode, contracts come out short too
    rows = sum(pq.read_metadata(path).num_rows for path in data_files(tmp_path))
    assert rows == summary.totals()["rows"]
    assert all(pq.read_metadata(path).metadata[b"validation"] == mode.encode() for path in data_files(tmp_path))
