"""spxdl.ledger.runs: run records on real files, judged against real processes and the ledger's tasks."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from spxdl import storage
from spxdl.ledger import Ledger, RunBook, RunRecordState, Task, TaskState, timestamp, utc_now

DAYS = [date(2024, 1, 8) + timedelta(days=offset) for offset in range(5)]  # Mon..Fri
TASKS = [Task("greeks-1m", "SPXW", day) for day in DAYS]
SELECTION = {"roots": ["SPXW"], "datasets": ["greeks"], "interval": "1m", "min_dte": 0, "max_dte": 5, "force": False}


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "data", lock_timeout=20)


@pytest.fixture
def book(ledger: Ledger) -> RunBook:
    return RunBook(ledger)


def begin(book: RunBook, tasks=TASKS, **selection) -> str:
    return book.begin(start=DAYS[0], end=DAYS[-1], tasks=tasks, selection={**SELECTION, **selection})


def succeed(ledger: Ledger, task: Task, min_dte: int = 0, max_dte: int = 5) -> None:
    assert ledger.claim(task, min_dte=min_dte, max_dte=max_dte)
    assert ledger.finish(task, TaskState.SUCCESS, min_dte=min_dte, max_dte=max_dte)


def exited_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def rewrite(ledger: Ledger, run_id: str, **changes) -> None:
    path = storage.run_record_path(ledger.data_dir, run_id)
    record = json.loads(path.read_text())
    record.update(changes)
    path.write_text(json.dumps(record))


def test_a_run_is_recorded_with_its_range_selection_and_every_task_before_it_starts(book, ledger):
    run_id = begin(book)
    record = json.loads(storage.run_record_path(ledger.data_dir, run_id).read_text())
    assert (record["start"], record["end"], record["selection"]) == ("2024-01-08", "2024-01-12", SELECTION)
    assert record["tasks"] == [task.key for task in TASKS]
    assert record["state"] == RunRecordState.RUNNING and record["reason"] is None
    [view] = book.views()
    assert view.state == RunRecordState.RUNNING and view.remaining == tuple(TASKS)
    assert book.unfinished() == []  # a live run is not for resume to finish


def test_a_run_that_tried_every_task_leaves_no_record(book, ledger):
    run_id = begin(book)
    book.end(run_id, reason=None)
    assert book.views() == [] and storage.run_record_paths(ledger.data_dir) == []


def test_a_stopped_run_stays_interrupted_with_its_reason_and_every_task_not_done(book, ledger):
    run_id = begin(book)
    succeed(ledger, TASKS[0])
    book.end(run_id, reason="stopped by SIGTERM")
    [view] = book.unfinished()
    assert view.state == RunRecordState.INTERRUPTED and view.record["reason"] == "stopped by SIGTERM"
    assert view.remaining == tuple(TASKS[1:])  # days never started included
    assert view.as_dict()["tasks"] == 5 and view.as_dict()["remaining"] == 4


def test_a_killed_run_reads_as_killed_and_a_live_one_as_running(book, ledger):
    killed = begin(book)
    rewrite(ledger, killed, pid=exited_pid())
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = begin(book)
        rewrite(ledger, live, pid=sleeper.pid)
        states = {view.id: view.state for view in book.views()}
        assert states == {killed: RunRecordState.KILLED, live: RunRecordState.RUNNING}
        assert [view.id for view in book.unfinished()] == [killed]
        book.prune()
        assert len(book.views()) == 2  # neither is done: both stay
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_task_done_for_a_narrower_window_is_still_left_to_do(book, ledger):
    run_id = begin(book, max_dte=30)
    succeed(ledger, TASKS[0], max_dte=5)
    book.end(run_id, reason="stopped")
    assert book.unfinished()[0].remaining == tuple(TASKS)


def test_a_forced_run_still_needs_the_tasks_finished_before_it_began(book, ledger):
    succeed(ledger, TASKS[0])
    run_id = begin(book, force=True)
    succeed(ledger, TASKS[1])
    book.end(run_id, reason="stopped")
    assert book.unfinished()[0].remaining == (TASKS[0], *TASKS[2:])


def test_records_whose_tasks_all_got_done_are_pruned_when_a_run_ends(book, ledger):
    old = begin(book, tasks=TASKS[:2])
    book.end(old, reason="stopped")
    for task in TASKS[:2]:
        succeed(ledger, task)
    assert book.unfinished() == []
    later = begin(book, tasks=TASKS[2:])
    book.end(later, reason="stopped")
    assert [view.id for view in book.views()] == [later]


def test_a_run_that_finishes_interrupted_runs_closes_their_records(book, ledger):
    first = begin(book)
    book.end(first, reason="stopped")
    resume = begin(book)
    book.end(resume, reason=None, finishes=[first])
    assert book.views() == []


def test_a_corrupt_record_is_moved_aside_and_the_others_still_read(book, ledger, caplog):
    good, bad = begin(book), begin(book, tasks=TASKS[:1])
    book.end(good, reason="stopped")
    path = storage.run_record_path(ledger.data_dir, bad)
    path.write_text('{"version": 1, "id": "trunc')
    assert [view.id for view in book.views()] == [good]
    assert not path.exists()
    assert [p.name.split(".corrupt-")[0] for p in path.parent.glob("*.corrupt-*")] == [path.name]
    assert "is corrupt" in caplog.text


def test_an_end_record_that_is_gone_is_not_an_error(book, ledger):
    run_id = begin(book)
    storage.run_record_path(ledger.data_dir, run_id).unlink()
    book.end(run_id, reason="stopped")
    assert book.views() == []


def test_timestamps_order_run_ids(book):
    first = begin(book)
    second = begin(book)
    assert [view.id for view in book.views()] == sorted([first, second]) == [first, second]
    assert timestamp(utc_now()) > book.views()[0].record["started_at"]
