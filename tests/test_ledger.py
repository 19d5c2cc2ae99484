"""The ledger on real files, with real processes and threads competing for its lock."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import pickle
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spxdl import storage
from spxdl.errors import LedgerBusy
from spxdl.ledger import (
    EXPIRATION_STATES,
    FINAL_STATES,
    TASK_STATES,
    ExpirationState,
    Ledger,
    LedgerLock,
    Task,
    TaskState,
    merge_windows,
    parse_timestamp,
    timestamp,
    utc_now,
    window_covered,
)

FORK = multiprocessing.get_context("fork")
TASK = Task("greeks-1m", "SPXW", date(2024, 1, 15))
EXP = date(2024, 1, 16)
STALE = 2.0  # seconds: stale_after for the heartbeat tests, whose stale heartbeats are written 10x older


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def ledger(data_dir: Path) -> Ledger:
    return Ledger(data_dir, lock_timeout=20)


@pytest.fixture
def holder(data_dir: Path):
    holder = ClaimHolder(data_dir)
    yield holder
    holder.leave()


def write_data_file(data_dir: Path, task: Task, expiration: date, rows: int) -> storage.FileInfo:
    """A real Parquet file where the task's data for ``expiration`` belongs, verified by storage."""
    path = storage.data_file_path(data_dir, task.archive, task.root, task.trade_date, expiration)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"strike": [4700.0 + i for i in range(rows)]}), path)
    return storage.verify_parquet(path, expected_rows=rows)


def day_path(data_dir: Path, task: Task) -> Path:
    return storage.day_json_path(data_dir, task.archive, task.root, task.trade_date)


def corrupt_copies(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".corrupt-*"))


def set_heartbeat(data_dir: Path, task: Task, moment) -> None:
    """Write ``moment`` as the heartbeat of the task's claim: what a holder whose beats stopped then leaves."""
    ledger = Ledger(data_dir)
    with ledger.lock():
        day = ledger.day(task)
        day["claim"]["heartbeat"] = timestamp(moment)
        storage.write_json_atomic(day_path(data_dir, task), day)


def long_ago() -> datetime:
    return utc_now() - timedelta(seconds=10 * STALE)


class ClaimHolder:
    """Another process holding TASK's claim, alive throughout, that heartbeats only when told to."""

    def __init__(self, data_dir: Path) -> None:
        self.commands, self.replies = FORK.Queue(), FORK.Queue()
        self.process = FORK.Process(target=claim_and_beat_on_command, args=(data_dir, TASK, self.commands, self.replies))
        self.process.start()
        assert self.replies.get(timeout=30), "the holder could not claim the task"

    def heartbeat(self) -> bool:
        """What ``Ledger.heartbeat`` returned in the holder."""
        self.commands.put("beat")
        return self.replies.get(timeout=30)

    def leave(self) -> None:
        self.commands.put("exit")
        self.process.join(timeout=30)


# --- helpers run in child processes (module level so that any start method can run them) ---------


def record_many(data_dir: Path, tasks: list[Task], worker: int, count: int, start) -> None:
    ledger = Ledger(data_dir, lock_timeout=60)
    start.wait()
    for i in range(count):
        task = tasks[i % len(tasks)]
        ledger.record_expiration(task, EXP + timedelta(days=worker * 1000 + i), "failed", attempts=i, error=f"w{worker}")


def claim_and_hold(data_dir: Path, task: Task, start, claimed, results, done) -> None:
    start.wait()
    results.put(Ledger(data_dir, lock_timeout=60).claim(task, min_dte=0, max_dte=7))
    claimed.wait()
    done.wait()


def claim_and_wait(data_dir: Path, task: Task, ready, done) -> None:
    Ledger(data_dir).claim(task, min_dte=0, max_dte=7)
    ready.set()
    done.wait()


def claim_in_grandchild(data_dir: Path, task: Task, ready, done) -> None:
    """Claim from a process that is not the test's child (a parent may end its children's claims)."""
    grandchild = FORK.Process(target=claim_and_wait, args=(data_dir, task, ready, done))
    grandchild.start()
    grandchild.join()


def claim_download_and_exit(data_dir: Path, task: Task) -> None:
    ledger = Ledger(data_dir)
    ledger.claim(task, min_dte=0, max_dte=7)
    ledger.record_expiration(task, EXP, "downloading", attempts=1)


def claim_and_beat_on_command(data_dir: Path, task: Task, commands, replies) -> None:
    """Claim ``task``, then call heartbeat once per "beat" (replying with its result) until "exit"."""
    ledger = Ledger(data_dir)
    replies.put(ledger.claim(task, min_dte=0, max_dte=7))
    while commands.get(timeout=60) == "beat":
        replies.put(ledger.heartbeat(task))


def claim_and_beat_until_stopped(data_dir: Path, task: Task, interval: float, ready, stop, leave) -> None:
    """A worker with its heartbeat thread: claim, heartbeat every ``interval`` s until ``stop``, live until ``leave``."""
    ledger = Ledger(data_dir)
    ledger.claim(task, min_dte=0, max_dte=7)
    ready.set()
    while not stop.wait(interval):
        ledger.heartbeat(task)
    leave.wait(60)


def hold_lock(data_dir: Path, ready, done) -> None:
    with Ledger(data_dir).lock():
        ready.set()
        done.wait()


def try_lock(data_dir: Path, timeout: float, results) -> None:
    try:
        with Ledger(data_dir, lock_timeout=timeout).lock():
            results.put("acquired")
    except LedgerBusy as exc:
        results.put(f"busy: {exc}")


# --- Task -------------------------------------------------------------------------------------------


def test_task_key_round_trips():
    assert TASK.key == "greeks-1m/SPXW/2024-01-15"
    assert Task.from_key(TASK.key) == TASK
    assert Task.from_identity(TASK.identity()) == TASK
    assert Task("greeks-1m", "SPXW", date(2024, 1, 12)) < TASK


def test_task_and_ledger_pickle_for_worker_processes(ledger):
    restored = pickle.loads(pickle.dumps((TASK, ledger)))
    assert restored[0] == TASK
    assert (restored[1].data_dir, restored[1].lock_timeout) == (ledger.data_dir, ledger.lock_timeout)


def test_task_from_bad_key_raises():
    with pytest.raises(ValueError):
        Task.from_key("greeks-1m/SPXW")
    with pytest.raises(ValueError):
        Task.from_key("greeks-1m/SPXW/15-01-2024")


def test_state_names_are_the_strings_stored_on_disk():
    assert TASK_STATES == ("queued", "in_progress", "success", "partial", "failed", "no_data")
    assert FINAL_STATES == ("success", "partial", "failed", "no_data")
    assert EXPIRATION_STATES == ("pending", "downloading", "complete", "failed", "no_data")
    assert (TaskState.SUCCESS, ExpirationState.COMPLETE) == ("success", "complete")
    assert json.dumps([TaskState.NO_DATA]) == '["no_data"]'


# --- the life of a task -------------------------------------------------------------------------------


def test_claim_marks_task_in_progress_in_day_json_and_status(ledger, data_dir):
    assert ledger.claim(TASK, min_dte=0, max_dte=7)

    day = json.loads(day_path(data_dir, TASK).read_text())
    assert day["state"] == "in_progress"
    assert day["claim"]["pid"] == os.getpid()
    assert day["claim"]["ppid"] == os.getppid()
    assert (day["claim"]["min_dte"], day["claim"]["max_dte"]) == (0, 7)
    entry = ledger.status()["tasks"][TASK.key]
    assert entry["state"] == "in_progress"
    assert entry["started_at"] == day["started_at"]
    assert entry["claimed_by"].endswith(f":{os.getpid()}")


def test_record_expiration_touches_only_the_tasks_day_json(ledger, data_dir):
    other = Task("greeks-1m", "SPXW", date(2024, 1, 16))
    ledger.claim(TASK, min_dte=0, max_dte=7)
    ledger.claim(other, min_dte=0, max_dte=7)
    info = write_data_file(data_dir, TASK, EXP, rows=5)
    untouched = (storage.status_path(data_dir), storage.inventory_path(data_dir), day_path(data_dir, other))
    before = {path: path.read_bytes() for path in untouched}

    ledger.record_expiration(TASK, EXP, "complete", info=info, attempts=2, checks={"zero_bid": 1})

    assert {path: path.read_bytes() for path in untouched} == before
    entry = ledger.day(TASK)["expirations"]["2024-01-16"]
    assert entry["state"] == "complete"
    assert entry["file"] == "spxw_exp_20240116.parquet"
    assert (entry["rows"], entry["bytes"], entry["sha256"]) == (5, info.bytes, info.sha256)
    assert (entry["attempts"], entry["checks"]) == (2, {"zero_bid": 1})


def test_heartbeat_moves_the_heartbeat_forward_and_nothing_else(ledger, data_dir):
    ledger.claim(TASK, min_dte=0, max_dte=7)
    set_heartbeat(data_dir, TASK, long_ago())
    status_before = storage.status_path(data_dir).read_bytes()
    first = ledger.day(TASK)["claim"]
    called_at = utc_now()

    assert ledger.heartbeat(TASK)

    claim = ledger.day(TASK)["claim"]
    assert parse_timestamp(claim["heartbeat"]) >= called_at
    assert {**claim, "heartbeat": None} == {**first, "heartbeat": None}
    assert storage.status_path(data_dir).read_bytes() == status_before


def test_finish_records_state_coverage_and_summaries(ledger, data_dir):
    ledger.claim(TASK, min_dte=0, max_dte=7)
    info = write_data_file(data_dir, TASK, EXP, rows=4)
    ledger.record_expiration(TASK, EXP, "complete", info=info)
    ledger.record_expiration(TASK, EXP + timedelta(days=1), "no_data")

    assert ledger.finish(TASK, "success", min_dte=0, max_dte=7)

    day = ledger.day(TASK)
    assert (day["state"], day["claim"], day["covered"]) == ("success", None, [[0, 7]])
    summary = ledger.status()["tasks"][TASK.key]
    assert summary["state"] == "success"
    assert summary["expirations"]["complete"] == 1
    assert summary["expirations"]["no_data"] == 1
    assert (summary["rows"], summary["bytes"]) == (4, info.bytes)
    assert summary["finished_at"] is not None
    assert ledger.status()["states"]["success"] == 1
    inventory = ledger.inventory()
    assert inventory["tasks"][TASK.key] == {"files": 1, "rows": 4, "bytes": info.bytes}
    assert inventory["totals"] == {"files": 1, "rows": 4, "bytes": info.bytes}
    assert inventory["archives"]["greeks-1m"]["tasks"] == 1


def test_checks_and_dropped_rows_are_recorded_and_summed_per_task_and_archive(ledger, data_dir):
    ledger.claim(TASK, min_dte=0, max_dte=7)
    first, second = EXP, EXP + timedelta(days=1)
    ledger.record_expiration(TASK, first, "complete", info=write_data_file(data_dir, TASK, first, rows=4),
                             checks={"crossed_quote": 2, "greeks_all_zero": 1, "negative_quote": 0}, dropped=2)
    ledger.record_expiration(TASK, second, "complete", info=write_data_file(data_dir, TASK, second, rows=3),
                             checks={"crossed_quote": 1})
    assert ledger.finish(TASK, "success", min_dte=0, max_dte=7)

    assert ledger.day(TASK)["expirations"][first.isoformat()]["dropped"] == 2
    entry = ledger.inventory()["tasks"][TASK.key]
    assert entry["checks"] == {"crossed_quote": 3, "greeks_all_zero": 1} and entry["dropped"] == 2
    other = Task("greeks-1m", "SPXW", TASK.trade_date + timedelta(days=1))
    ledger.claim(other, min_dte=0, max_dte=7)
    ledger.record_expiration(other, second, "complete", info=write_data_file(data_dir, other, second, rows=1),
                             checks={"crossed_quote": 5})
    ledger.finish(other, "success", min_dte=0, max_dte=7)
    archive = ledger.inventory()["archives"]["greeks-1m"]
    assert archive["checks"] == {"crossed_quote": 8, "greeks_all_zero": 1} and archive["dropped"] == 2
    rebuilt = Ledger(data_dir)
    storage.inventory_path(data_dir).unlink()
    assert rebuilt.inventory()["archives"]["greeks-1m"]["checks"] == archive["checks"]  # rebuilt from the days


def test_a_failed_download_again_keeps_the_last_files_counts(ledger, data_dir):
    ledger.claim(TASK, min_dte=0, max_dte=7)
    info = write_data_file(data_dir, TASK, EXP, rows=4)
    ledger.record_expiration(TASK, EXP, "complete", info=info, checks={"crossed_quote": 2}, dropped=1)
    ledger.record_expiration(TASK, EXP, "failed", attempts=3, error="cut body")
    entry = ledger.day(TASK)["expirations"][EXP.isoformat()]
    assert (entry["state"], entry["sha256"], entry["checks"], entry["dropped"]) == ("failed", info.sha256,
                                                                                    {"crossed_quote": 2}, 1)


def test_the_status_names_when_a_tasks_last_file_landed(ledger, data_dir):
    ledger.claim(TASK, min_dte=0, max_dte=7)
    ledger.finish(TASK, "no_data", min_dte=0, max_dte=7)
    assert ledger.status()["tasks"][TASK.key]["last_file_at"] is None
    ledger.claim(TASK, min_dte=0, max_dte=7)
    ledger.record_expiration(TASK, EXP, "complete", info=write_data_file(data_dir, TASK, EXP, rows=1))
    ledger.record_expiration(TASK, EXP + timedelta(days=1), "failed", error="cut")
    ledger.finish(TASK, "partial", min_dte=0, max_dte=7)
    landed = ledger.day(TASK)["expirations"][EXP.isoformat()]["updated_at"]
    assert ledger.status()["tasks"][TASK.key]["last_file_at"] == landed


def test_the_claim_notes_how_many_expirations_the_window_holds(ledger):
    ledger.claim(TASK, min_dte=0, max_dte=7)
    ledger.note_listed(TASK, 5)
    assert ledger.day(TASK)["claim"]["listed"] == 5
    ledger.finish(TASK, "success", min_dte=0, max_dte=7)
    ledger.note_listed(TASK, 6)  # no claim of ours: nothing written
    assert ledger.day(TASK)["claim"] is None


def test_another_processs_claim_never_takes_our_count(ledger, holder):
    ledger.note_listed(TASK, 5)
    assert "listed" not in ledger.day(TASK)["claim"]


def test_expiration_states_lists_every_recorded_expiration(ledger, data_dir):
    ledger.claim(TASK, min_dte=0, max_dte=7)
    ledger.record_expiration(TASK, EXP, "complete", info=write_data_file(data_dir, TASK, EXP, rows=1))
    ledger.record_expiration(TASK, EXP + timedelta(days=1), "downloading")
    ledger.record_expiration(TASK, EXP + timedelta(days=2), "failed", error="cut body", attempts=3)

    assert ledger.expiration_states(TASK) == {
        EXP: "complete",
        EXP + timedelta(days=1): "downloading",
        EXP + timedelta(days=2): "failed",
    }
    assert ledger.expiration_states(Task("greeks-1m", "SPX", TASK.trade_date)) == {}


def test_a_failed_retry_keeps_the_file_already_in_place(ledger, data_dir):
    info = write_data_file(data_dir, TASK, EXP, rows=3)
    ledger.record_expiration(TASK, EXP, "complete", info=info)

    ledger.record_expiration(TASK, EXP, "failed", attempts=3, error="terminal down")

    entry = ledger.day(TASK)["expirations"]["2024-01-16"]
    assert (entry["state"], entry["error"], entry["file"], entry["rows"]) == ("failed", "terminal down", info.path.name, 3)


def test_invalid_states_are_refused(ledger):
    with pytest.raises(ValueError, match="expiration state"):
        ledger.record_expiration(TASK, EXP, "done")
    with pytest.raises(ValueError, match="FileInfo"):
        ledger.record_expiration(TASK, EXP, "complete")
    with pytest.raises(ValueError, match="final task state"):
        ledger.finish(TASK, "in_progress", min_dte=0, max_dte=7)
    with pytest.raises(ValueError, match="min_dte"):
        ledger.claim(TASK, min_dte=5, max_dte=1)


# --- done and covered windows -----------------------------------------------------------------------


def test_is_done_needs_success_and_a_covering_window(ledger):
    assert not ledger.is_done(TASK, min_dte=0, max_dte=7)
    ledger.claim(TASK, min_dte=0, max_dte=7)
    assert not ledger.is_done(TASK, min_dte=0, max_dte=7)

    ledger.finish(TASK, "success", min_dte=0, max_dte=7)

    assert ledger.is_done(TASK, min_dte=0, max_dte=7)
    assert ledger.is_done(TASK, min_dte=1, max_dte=3)
    assert not ledger.is_done(TASK, min_dte=0, max_dte=30)


def test_a_wider_window_extends_coverage_only_when_it_succeeds(ledger):
    ledger.claim(TASK, min_dte=0, max_dte=7)
    ledger.finish(TASK, "success", min_dte=0, max_dte=7)

    ledger.claim(TASK, min_dte=0, max_dte=30)
    assert not ledger.is_done(TASK, min_dte=0, max_dte=7), "in progress again"
    ledger.finish(TASK, "success", min_dte=0, max_dte=30)
    assert ledger.is_done(TASK, min_dte=0, max_dte=30)

    ledger.claim(TASK, min_dte=0, max_dte=60)
    ledger.finish(TASK, "partial", min_dte=0, max_dte=60, error="2 expirations failed")
    assert not ledger.is_done(TASK, min_dte=0, max_dte=7)
    day = ledger.day(TASK)
    assert (day["state"], day["covered"], day["error"]) == ("partial", [], "2 expirations failed")


@pytest.mark.parametrize("state", ["partial", "failed", "no_data"])
def test_tasks_that_did_not_succeed_are_not_done(ledger, state):
    ledger.claim(TASK, min_dte=0, max_dte=7)
    ledger.finish(TASK, state, min_dte=0, max_dte=7)
    assert not ledger.is_done(TASK, min_dte=0, max_dte=7)
    assert ledger.day(TASK)["state"] == state


def test_merge_windows_joins_overlapping_and_adjacent_windows():
    assert merge_windows([], 0, 7) == [[0, 7]]
    assert merge_windows([[0, 7]], 8, 30) == [[0, 30]]
    assert merge_windows([[0, 7]], 10, 20) == [[0, 7], [10, 20]]
    assert merge_windows([[0, 7], [10, 20]], 5, 12) == [[0, 20]]
    assert window_covered([[0, 7], [10, 20]], 11, 20)
    assert not window_covered([[0, 7], [10, 20]], 5, 12)


# --- claims -------------------------------------------------------------------------------------------


def test_our_own_claim_can_be_claimed_again(ledger):
    assert ledger.claim(TASK, min_dte=0, max_dte=7)
    assert ledger.claim(TASK, min_dte=0, max_dte=30)
    assert not ledger.is_held(TASK)
    assert ledger.day(TASK)["claim"]["max_dte"] == 30


def test_two_runs_in_one_process_never_take_each_others_claims(data_dir):
    # a Dask worker process runs the tasks of every run on the cluster: each run's claims name it
    first, second = Ledger(data_dir, owner="run-1"), Ledger(data_dir, owner="run-2")
    assert first.claim(TASK, min_dte=0, max_dte=7)
    assert first.day(TASK)["claim"]["owner"] == "run-1"
    assert not second.claim(TASK, min_dte=0, max_dte=7) and second.is_held(TASK) and not first.is_held(TASK)
    assert not second.heartbeat(TASK) and not second.release(TASK)
    assert not second.finish(TASK, "success", min_dte=0, max_dte=7)
    assert first.heartbeat(TASK) and first.release(TASK)
    assert second.claim(TASK, min_dte=0, max_dte=7)  # free again
    assert not Ledger(data_dir).claim(TASK, min_dte=0, max_dte=7)  # nor does a crew's claim of the same pid


def test_exactly_one_of_several_processes_wins_a_claim(data_dir):
    start, claimed, done, results = FORK.Barrier(4), FORK.Barrier(4), FORK.Event(), FORK.Queue()
    workers = [
        FORK.Process(target=claim_and_hold, args=(data_dir, TASK, start, claimed, results, done)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    outcomes = sorted(results.get(timeout=30) for _ in workers)
    ledger = Ledger(data_dir)
    held = ledger.is_held(TASK)
    done.set()
    for worker in workers:
        worker.join(timeout=30)

    assert outcomes == [False, False, False, True]
    assert held
    assert ledger.day(TASK)["claim"]["pid"] in {worker.pid for worker in workers}


def test_a_live_claim_is_skipped_and_a_stale_heartbeat_is_taken_over(data_dir, caplog):
    ready, done = FORK.Event(), FORK.Event()
    holder = FORK.Process(target=claim_in_grandchild, args=(data_dir, TASK, ready, done))
    holder.start()
    try:
        assert ready.wait(timeout=30)
        holder_pid = Ledger(data_dir).day(TASK)["claim"]["pid"]
        assert holder_pid != holder.pid
        patient = Ledger(data_dir, stale_after=60)
        assert patient.is_held(TASK)
        assert not patient.claim(TASK, min_dte=0, max_dte=7)
        assert not patient.finish(TASK, "failed", min_dte=0, max_dte=7)
        assert not patient.release(TASK)
        assert not patient.heartbeat(TASK)
        assert patient.day(TASK)["state"] == "in_progress"

        time.sleep(0.3)
        impatient = Ledger(data_dir, stale_after=0.2)
        assert not impatient.is_held(TASK)
        with caplog.at_level(logging.WARNING, logger="spxdl.ledger"):
            assert impatient.claim(TASK, min_dte=0, max_dte=7)
    finally:
        done.set()
        holder.join(timeout=30)

    assert impatient.day(TASK)["claim"]["pid"] == os.getpid()
    assert "heartbeat" in caplog.text and str(holder_pid) in caplog.text


def test_a_claim_kept_fresh_by_heartbeats_is_not_taken_over_and_one_left_stale_is(holder, data_dir, caplog):
    rival = Ledger(data_dir, stale_after=STALE)
    set_heartbeat(data_dir, TASK, long_ago())  # the holder stopped beating long ago ...
    assert holder.heartbeat()  # ... and beats again

    assert rival.is_held(TASK)
    assert not rival.claim(TASK, min_dte=0, max_dte=7)

    set_heartbeat(data_dir, TASK, long_ago())  # its process lives on, its beats stop
    assert not rival.is_held(TASK)
    with caplog.at_level(logging.WARNING, logger="spxdl.ledger"):
        assert rival.claim(TASK, min_dte=0, max_dte=7)
    assert rival.day(TASK)["claim"]["pid"] == os.getpid()
    assert f"from pid {holder.process.pid}" in caplog.text and "heartbeat" in caplog.text


def test_heartbeat_returns_false_and_writes_nothing_once_another_run_took_the_claim_over(holder, data_dir):
    set_heartbeat(data_dir, TASK, long_ago())
    rival = Ledger(data_dir, stale_after=STALE)
    assert rival.claim(TASK, min_dte=0, max_dte=7)
    taken = rival.day(TASK)

    assert holder.heartbeat() is False

    assert rival.day(TASK) == taken


def test_heartbeats_keep_a_claim_past_stale_after_and_it_is_taken_over_once_they_stop(data_dir, caplog):
    stale_after, beat_every = 1.0, 0.05
    ready, stop, leave = FORK.Event(), FORK.Event(), FORK.Event()
    worker = FORK.Process(target=claim_and_beat_until_stopped, args=(data_dir, TASK, beat_every, ready, stop, leave))
    worker.start()
    try:
        assert ready.wait(timeout=30)
        rival = Ledger(data_dir, stale_after=stale_after)
        watch_until = time.monotonic() + 2 * stale_after
        while time.monotonic() < watch_until:
            assert not rival.claim(TASK, min_dte=0, max_dte=7), "taken over while its heartbeats went on"
            time.sleep(0.1)

        stop.set()  # the worker lives on, its heartbeats stop
        give_up = time.monotonic() + 30
        with caplog.at_level(logging.WARNING, logger="spxdl.ledger"):
            while not rival.claim(TASK, min_dte=0, max_dte=7):
                assert time.monotonic() < give_up, "never taken over after its heartbeats stopped"
                time.sleep(0.1)
    finally:
        stop.set()
        leave.set()
        worker.join(timeout=30)

    assert f"from pid {worker.pid}" in caplog.text and "heartbeat" in caplog.text


def test_the_claim_of_a_dead_process_is_taken_over(ledger, caplog):
    child = FORK.Process(target=claim_download_and_exit, args=(ledger.data_dir, TASK))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0
    assert ledger.day(TASK)["claim"]["pid"] == child.pid
    assert not ledger.is_held(TASK)

    with caplog.at_level(logging.WARNING, logger="spxdl.ledger"):
        assert ledger.claim(TASK, min_dte=0, max_dte=7)

    assert "process is gone" in caplog.text
    assert ledger.day(TASK)["claim"]["pid"] == os.getpid()
    assert ledger.expiration_states(TASK) == {EXP: "pending"}, "left downloading by the dead run"


def test_a_reused_pid_does_not_keep_an_old_claim_alive(ledger, data_dir):
    # Linux (/proc): a live process that started after the claim was made is not its owner.
    ready, done = FORK.Event(), FORK.Event()
    holder = FORK.Process(target=claim_and_wait, args=(data_dir, TASK, ready, done))
    holder.start()
    try:
        assert ready.wait(timeout=30)
        day = ledger.day(TASK)
        day["claim"]["started_at"] = timestamp(utc_now() - timedelta(minutes=5))
        storage.write_json_atomic(day_path(data_dir, TASK), day)

        assert not ledger.is_held(TASK)
        assert ledger.claim(TASK, min_dte=0, max_dte=7)
    finally:
        done.set()
        holder.join(timeout=30)


def test_release_drops_our_claim_and_keeps_the_states(ledger):
    ledger.claim(TASK, min_dte=0, max_dte=7)
    ledger.record_expiration(TASK, EXP, "downloading")

    assert ledger.release(TASK)

    day = ledger.day(TASK)
    assert (day["claim"], day["state"]) == (None, "in_progress")
    assert ledger.expiration_states(TASK) == {EXP: "downloading"}
    assert ledger.status()["tasks"][TASK.key]["claimed_by"] is None


def test_a_run_may_release_the_claim_of_a_worker_it_started_and_no_other(ledger):
    ready, done = FORK.Event(), FORK.Event()
    child = FORK.Process(target=claim_and_wait, args=(ledger.data_dir, TASK, ready, done))
    child.start()
    try:
        assert ready.wait(timeout=30)
        assert not ledger.release(TASK) and ledger.day(TASK)["claim"]["pid"] == child.pid  # a live process's
        assert ledger.release(TASK, workers={child.pid})
        assert ledger.day(TASK)["claim"] is None
    finally:
        done.set()
        child.join(timeout=30)


# --- concurrency ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("distinct", [True, False], ids=["distinct-tasks", "same-task"])
def test_concurrent_processes_lose_no_update(data_dir, distinct):
    processes, count = 4, 50
    tasks = [Task("greeks-1m", "SPXW", date(2024, 1, 15) + timedelta(days=i)) for i in range(processes)]
    start = FORK.Barrier(processes)
    workers = [
        FORK.Process(target=record_many, args=(data_dir, [tasks[w]] if distinct else tasks[:1], w, count, start))
        for w in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0] * processes

    ledger = Ledger(data_dir)
    if distinct:
        for w, task in enumerate(tasks):
            assert {entry["error"] for entry in ledger.day(task)["expirations"].values()} == {f"w{w}"}
            assert len(ledger.expiration_states(task)) == count
    else:
        assert len(ledger.expiration_states(tasks[0])) == processes * count
    assert not list(data_dir.rglob("*.tmp-*"))


@pytest.mark.parametrize("shared", [True, False], ids=["one-ledger", "ledger-per-thread"])
def test_concurrent_threads_lose_no_update(data_dir, shared):
    threads, count = 4, 50
    one = Ledger(data_dir)
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        ledger = one if shared else Ledger(data_dir)
        start.wait()
        try:
            for i in range(count):
                ledger.record_expiration(TASK, EXP + timedelta(days=worker * 1000 + i), "pending", attempts=i)
        except BaseException as exc:  # surfaced below: a thread's exception would vanish otherwise
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()

    assert errors == []
    assert len(one.expiration_states(TASK)) == threads * count


# --- the lock -----------------------------------------------------------------------------------------


def test_lock_held_by_another_process_times_out_with_ledger_busy(data_dir):
    ready, done = FORK.Event(), FORK.Event()
    holder = FORK.Process(target=hold_lock, args=(data_dir, ready, done))
    holder.start()
    try:
        assert ready.wait(timeout=30)
        with pytest.raises(LedgerBusy) as caught:
            Ledger(data_dir, lock_timeout=0.2).claim(TASK, min_dte=0, max_dte=7)
    finally:
        done.set()
        holder.join(timeout=30)

    assert str(storage.lock_path(data_dir)) in str(caught.value)
    assert "another spxdl run" in str(caught.value)
    assert Ledger(data_dir, lock_timeout=5).claim(TASK, min_dte=0, max_dte=7)


def test_lock_held_by_another_thread_times_out(ledger, data_dir):
    ready, done = threading.Event(), threading.Event()

    def hold() -> None:
        with ledger.lock():
            ready.set()
            done.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert ready.wait(timeout=30)
        with pytest.raises(LedgerBusy):
            with Ledger(data_dir, lock_timeout=0.1).lock():
                pass
    finally:
        done.set()
        holder.join()


def test_lock_is_reentrant_within_a_thread(ledger):
    with ledger.lock():
        with Ledger(ledger.data_dir, lock_timeout=0).lock():
            ledger.record_expiration(TASK, EXP, "pending")
    assert ledger.expiration_states(TASK) == {EXP: "pending"}


def test_a_ledger_lock_is_reentrant_across_objects_and_unlocks_at_the_outermost_release(data_dir):
    path = storage.lock_path(data_dir)
    outer, inner = LedgerLock(path, timeout=5), LedgerLock(path, timeout=0)
    results = FORK.Queue()

    def probe() -> str:
        child = FORK.Process(target=try_lock, args=(data_dir, 0.2, results))
        child.start()
        child.join(timeout=30)
        return results.get(timeout=5).split(":")[0]

    with outer:
        with inner:
            assert inner.is_locked and outer.is_locked
        assert outer.is_locked
        assert probe() == "busy"
    assert not outer.is_locked
    assert probe() == "acquired"


def test_a_ledger_lock_refuses_a_release_without_an_acquire_and_pickles_without_its_state(data_dir):
    lock = LedgerLock(storage.lock_path(data_dir), timeout=3, poll_interval=0.01)
    with pytest.raises(RuntimeError):
        lock.release()
    with lock:
        copy = pickle.loads(pickle.dumps(lock))
    assert (copy.path, copy.timeout, copy.poll_interval) == (lock.path, 3, 0.01)
    with pytest.raises(RuntimeError):
        copy.release()


def test_a_child_forked_while_the_lock_is_held_must_wait_for_it(ledger):
    results = FORK.Queue()
    with ledger.lock():
        for _attempt in range(2):  # the second shows that the first child's exit left our lock held
            child = FORK.Process(target=try_lock, args=(ledger.data_dir, 0.2, results))
            child.start()
            child.join(timeout=30)
    later = FORK.Process(target=try_lock, args=(ledger.data_dir, 5, results))
    later.start()
    later.join(timeout=30)

    outcomes = [results.get(timeout=5) for _ in range(3)]
    assert [outcome.split(":")[0] for outcome in outcomes] == ["busy", "busy", "acquired"]


def test_a_forked_child_leaving_the_locked_block_does_not_unlock_the_parent(ledger):
    results = FORK.Queue()
    child = -1
    try:
        with ledger.lock():
            child = os.fork()
            if child:
                os.waitpid(child, 0)
                probe = FORK.Process(target=try_lock, args=(ledger.data_dir, 0.2, results))
                probe.start()
                probe.join(timeout=30)
    finally:
        if child == 0:  # the forked child has left the block; it must not run the rest of pytest
            os._exit(0)

    assert results.get(timeout=5).startswith("busy")


# --- corruption and rebuilding ----------------------------------------------------------------------------

BAD_CONTENT = {
    "truncated": b'{"tasks": {"greeks-1m/SPXW/2024-01-15": {"state": "succ',
    "garbage": b"\x00\xff\xfe not json at all",
    "wrong-shape": b"[1, 2, 3]\n",
    "empty": b"",
}


def finished_task(ledger: Ledger, task: Task, rows: int) -> storage.FileInfo:
    ledger.claim(task, min_dte=0, max_dte=7)
    info = write_data_file(ledger.data_dir, task, EXP, rows=rows)
    ledger.record_expiration(task, EXP, "complete", info=info)
    ledger.finish(task, "success", min_dte=0, max_dte=7)
    return info


@pytest.mark.parametrize("content", BAD_CONTENT.values(), ids=BAD_CONTENT.keys())
@pytest.mark.parametrize("name", [storage.STATUS_JSON, storage.INVENTORY_JSON])
def test_corrupt_summary_is_moved_aside_and_rebuilt(ledger, data_dir, caplog, name, content):
    info = finished_task(ledger, TASK, rows=6)
    path = data_dir / name
    path.write_bytes(content)

    with caplog.at_level(logging.WARNING, logger="spxdl.ledger"):
        status = ledger.status()

    assert status["tasks"][TASK.key]["state"] == "success"
    assert ledger.inventory()["totals"] == {"files": 1, "rows": 6, "bytes": info.bytes}
    [aside] = corrupt_copies(path)
    assert aside.read_bytes() == content
    assert json.loads(path.read_text())["tasks"][TASK.key]
    assert "corrupt" in caplog.text


def test_both_summaries_corrupt_at_once_are_both_kept_aside_before_the_rebuild(ledger, data_dir):
    """Found by the corrupted-ledger scenario: rebuilding for a corrupt status.json overwrote a corrupt inventory.json."""
    finished_task(ledger, TASK, rows=6)
    storage.status_path(data_dir).write_bytes(b"")
    storage.inventory_path(data_dir).write_bytes(b'{"version": 1, "tas')

    assert ledger.status()["tasks"][TASK.key]["state"] == "success"

    assert [aside.read_bytes() for aside in corrupt_copies(storage.status_path(data_dir))] == [b""]
    assert [aside.read_bytes() for aside in corrupt_copies(storage.inventory_path(data_dir))] == [b'{"version": 1, "tas']
    assert ledger.inventory()["totals"]["rows"] == 6


WRONG_SHAPES = {
    storage.STATUS_JSON: [
        {"tasks": {"not a task key": {"state": "success"}}},
        {"tasks": {TASK.key: {"state": "finished"}}},
    ],
    storage.INVENTORY_JSON: [
        {"tasks": {TASK.key: {"files": 1, "rows": "6", "bytes": 10}}},
        {"totals": {}},
    ],
}


@pytest.mark.parametrize(
    "name, content", [(name, shape) for name, shapes in WRONG_SHAPES.items() for shape in shapes]
)
def test_summary_of_the_wrong_shape_counts_as_corrupt(ledger, data_dir, name, content):
    finished_task(ledger, TASK, rows=6)
    (data_dir / name).write_text(json.dumps(content))

    assert ledger.status()["tasks"][TASK.key]["state"] == "success"
    assert ledger.inventory()["tasks"][TASK.key]["rows"] == 6
    assert len(corrupt_copies(data_dir / name)) == 1


@pytest.mark.parametrize(
    "change",
    [{"covered": [[0]]}, {"state": "done"}, {"expirations": {"soon": {"state": "pending"}}}, {"claim": "me"}],
    ids=["covered", "state", "expiration-key", "claim"],
)
def test_day_json_of_the_wrong_shape_counts_as_corrupt(ledger, data_dir, change):
    finished_task(ledger, TASK, rows=6)
    day = json.loads(day_path(data_dir, TASK).read_text())
    day_path(data_dir, TASK).write_text(json.dumps({**day, **change}))

    assert ledger.day(TASK)["state"] == "partial"
    assert ledger.expiration_states(TASK) == {EXP: "complete"}
    assert len(corrupt_copies(day_path(data_dir, TASK))) == 1


def test_lost_summaries_are_rebuilt_from_the_day_files(ledger, data_dir):
    finished_task(ledger, TASK, rows=2)
    storage.status_path(data_dir).unlink()
    storage.inventory_path(data_dir).unlink()

    assert ledger.status()["tasks"][TASK.key]["state"] == "success"
    assert ledger.inventory()["totals"]["rows"] == 2


@pytest.mark.parametrize("content", BAD_CONTENT.values(), ids=BAD_CONTENT.keys())
def test_corrupt_day_json_is_moved_aside_and_rebuilt_from_the_files(ledger, data_dir, caplog, content):
    info = finished_task(ledger, TASK, rows=7)
    path = day_path(data_dir, TASK)
    path.write_bytes(content)

    with caplog.at_level(logging.WARNING, logger="spxdl.ledger"):
        day = ledger.day(TASK)

    assert day["state"] == "partial", "unknown: planned again"
    assert day["covered"] == []
    entry = day["expirations"]["2024-01-16"]
    assert (entry["state"], entry["rows"], entry["sha256"]) == ("complete", 7, info.sha256)
    assert not ledger.is_done(TASK, min_dte=0, max_dte=7)
    [aside] = corrupt_copies(path)
    assert aside.read_bytes() == content
    assert json.loads(path.read_text())["state"] == "partial"
    assert "corrupt" in caplog.text


def test_day_json_of_another_task_counts_as_corrupt(ledger, data_dir):
    other = Task("greeks-1m", "SPXW", date(2024, 1, 17))
    ledger.record_expiration(other, EXP, "pending")
    day_path(data_dir, TASK).parent.mkdir(parents=True)
    day_path(data_dir, TASK).write_bytes(day_path(data_dir, other).read_bytes())

    day = ledger.day(TASK)

    assert Task.from_identity(day) == TASK
    assert day["state"] == "queued"
    assert len(corrupt_copies(day_path(data_dir, TASK))) == 1


def test_a_second_corruption_is_kept_aside_too(ledger, data_dir):
    path = storage.status_path(data_dir)
    for content in (b"{", b"[", b"nul"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        ledger.status()
    assert sorted(aside.read_bytes() for aside in corrupt_copies(path)) == [b"[", b"nul", b"{"]


def test_rebuild_reconciles_records_with_the_files_on_disk(ledger, data_dir):
    kept = Task("greeks-1m", "SPXW", date(2024, 1, 16))
    finished_task(ledger, kept, rows=3)
    finished_task(ledger, TASK, rows=4)
    storage.data_file_path(data_dir, TASK.archive, TASK.root, TASK.trade_date, EXP).unlink()
    stray = write_data_file(data_dir, kept, EXP + timedelta(days=1), rows=5)
    lost = Task("greeks-1m", "SPX", date(2024, 1, 18))
    write_data_file(data_dir, lost, EXP, rows=9)
    broken = storage.data_file_path(data_dir, lost.archive, lost.root, lost.trade_date, EXP + timedelta(days=2))
    broken.write_bytes(b"PAR1 cut short")
    storage.status_path(data_dir).write_bytes(b"{")
    storage.inventory_path(data_dir).unlink()

    report = ledger.rebuild()

    assert report["tasks"] == 3
    assert (report["files"], report["rows"]) == (3, 3 + 5 + 9)
    assert report["bytes"] == sum(f.stat().st_size for f in data_dir.rglob("*.parquet") if f != broken)
    problems = "\n".join(report["problems"])
    assert "status.json" in problems and "missing" in problems and stray.path.name in problems
    assert f"unrecorded file {broken.name}" in problems
    assert ledger.day(TASK)["state"] == "partial"
    assert ledger.expiration_states(TASK) == {EXP: "pending"}
    assert ledger.is_done(kept, min_dte=0, max_dte=7)
    assert ledger.expiration_states(kept) == {EXP: "complete", EXP + timedelta(days=1): "complete"}
    assert ledger.day(lost)["state"] == "partial"
    assert len(corrupt_copies(storage.status_path(data_dir))) == 1
    assert [task for task, _summary in ledger.tasks()] == sorted([kept, TASK, lost])


def test_rebuild_of_a_consistent_ledger_finds_no_problem(ledger):
    finished_task(ledger, TASK, rows=2)
    assert ledger.rebuild()["problems"] == []
    assert ledger.rebuild(verify_files=False)["rows"] == 2
