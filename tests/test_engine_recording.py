"""spxdl.engine.recording and resume planning: the record a run keeps, and what resume makes of the records."""

from __future__ import annotations

import json
import os
import signal
from datetime import date

import pytest

from engine_helpers import END, START, Driver, make_settings
from spxdl import engine, storage
from spxdl.ledger import Ledger, RunBook, RunRecordState, Task, TaskState
from spxdl.simulator import Faults


def test_a_run_that_completes_leaves_no_run_record(clean_sim, tmp_path):
    settings = make_settings(tmp_path, clean_sim.url)
    seen = []
    summary = engine.run(engine.plan(settings, START, END), settings,
                         on_event=lambda event: seen.append(storage.run_record_paths(tmp_path)))
    assert summary.complete
    assert seen and all(len(paths) == 1 for paths in seen)  # recorded while it ran
    assert storage.run_record_paths(tmp_path) == []


def test_a_run_stopped_by_sigterm_leaves_its_record_interrupted_with_the_reason_and_every_task(sim, tmp_path):
    sim.set_faults(Faults(latency=0.3))
    try:
        driver = Driver(tmp_path, sim.url, "--workers", "1", "--threads", "1")
        assert driver.wait_for("event task_started"), driver.text()
        os.killpg(driver.process.pid, signal.SIGTERM)
        assert driver.wait(timeout=30) == 128 + signal.SIGTERM, driver.text()
    finally:
        sim.set_faults(Faults())
    [path] = storage.run_record_paths(tmp_path)
    record = json.loads(path.read_text())
    assert record["state"] == RunRecordState.INTERRUPTED and record["reason"] == "stopped by SIGTERM"
    assert record["tasks"] == [f"greeks-1m/SPXW/{START}", f"greeks-1m/SPXW/{END}"]
    assert (record["start"], record["end"]) == (str(START), str(END))
    assert record["selection"] == {"roots": ["SPXW"], "datasets": ["greeks"], "interval": "1m", "min_dte": 0,
                                   "max_dte": 8, "force": False}


def test_resume_plans_each_interrupted_run_with_its_own_selection_then_the_rest_with_the_settings(tmp_path):
    ledger = Ledger(tmp_path)
    book = RunBook(ledger)
    days = [date(2024, 1, 8), date(2024, 1, 9), date(2024, 1, 10)]
    spxw = {"roots": ["SPXW"], "datasets": ["greeks"], "interval": "1m", "min_dte": 0, "max_dte": 5, "force": False}
    both = {**spxw, "roots": ["SPXW", "SPX"], "max_dte": 30}
    first = book.begin(start=days[0], end=days[1], tasks=[Task("greeks-1m", "SPXW", d) for d in days[:2]],
                       selection=spxw)
    second = book.begin(start=days[1], end=days[1], tasks=[Task("greeks-1m", r, days[1]) for r in ("SPXW", "SPX")],
                        selection=both)
    for run_id in (first, second):
        book.end(run_id, reason="stopped by SIGINT")
    leftover = Task("greeks-1m", "SPXW", days[2])
    assert ledger.claim(leftover, min_dte=0, max_dte=2)
    assert ledger.finish(leftover, TaskState.FAILED, min_dte=0, max_dte=2, error="boom")
    settings = make_settings(tmp_path, "http://127.0.0.1:9", max_dte=2)

    plans = engine.resume_plans(settings, book.unfinished(), [leftover])

    assert [(chosen.roots, chosen.max_dte, [t.key for t in plan.tasks], plan.resumes) for chosen, plan in plans] == [
        (("SPXW",), 5, ["greeks-1m/SPXW/2024-01-08", "greeks-1m/SPXW/2024-01-09"], (first,)),
        (("SPXW", "SPX"), 30, ["greeks-1m/SPXW/2024-01-09", "greeks-1m/SPX/2024-01-09"], (second,)),
        (("SPXW",), 2, ["greeks-1m/SPXW/2024-01-10"], ()),
    ]


@pytest.mark.parametrize("force", [False, True])
def test_resume_passes_the_force_of_the_interrupted_run_on(tmp_path, force):
    book = RunBook(Ledger(tmp_path))
    selection = {"roots": ["SPXW"], "datasets": ["greeks"], "interval": "1m", "min_dte": 0, "max_dte": 5, "force": force}
    run_id = book.begin(start=START, end=START, tasks=[Task("greeks-1m", "SPXW", START)], selection=selection)
    book.end(run_id, reason="stopped")
    [(_, plan)] = engine.resume_plans(make_settings(tmp_path, "http://127.0.0.1:9"), book.unfinished(), [])
    assert plan.force is force and [task.trade_date for task in plan.tasks] == [START]
