"""A worker process's own bookkeeping, driven in this process: heartbeats against tasks that finish."""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
from datetime import date, timedelta


from spxdl.config import Settings
from spxdl.engine.links import ProcessLink
from spxdl.engine.shared import SharedFlag
from spxdl.engine.worker import Worker
from spxdl.ledger import Ledger, Task


def test_a_task_that_finishes_is_never_taken_for_taken_over_by_its_own_heartbeats(tmp_path, caplog):
    # finish() drops the claim; a heartbeat landing between that and the task leaving `active`
    # found no claim and abandoned the task as "taken over by another run"
    caplog.set_level(logging.WARNING, logger="spxdl")
    worker = Worker(Settings(data_dir=tmp_path), ProcessLink(SharedFlag(multiprocessing.get_context("spawn")), None,
                                                         queue.Queue(), os.getppid()))
    done = threading.Event()

    def beat() -> None:
        while not done.is_set():
            worker.heartbeat()
            time.sleep(0.0005)  # beats as often as can be, yet the task's own ledger calls get the lock

    beater = threading.Thread(target=beat)
    beater.start()
    try:
        for offset in range(15):
            task = Task("greeks-1m", "SPXW", date(2024, 1, 1) + timedelta(days=offset))
            assert worker.ledger.claim(task, min_dte=0, max_dte=0)
            with worker.lock:
                worker.active.add(task)
            result = worker.finish(task, [], 0, 0, 0.0)
            with worker.lock:
                worker.active.discard(task)  # as the task's thread does once it returns
            assert result.state == "success"
    finally:
        done.set()
        beater.join()
    assert worker.lost == set()
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert all(not Ledger(tmp_path).is_held(task) for task, _ in Ledger(tmp_path).tasks())


def test_a_helper_stops_helping_once_the_owners_claim_is_gone(tmp_path):
    worker = Worker(Settings(data_dir=tmp_path), ProcessLink(SharedFlag(multiprocessing.get_context("spawn")), None,
                                                         queue.Queue(), os.getppid()))
    task = Task("greeks-1m", "SPXW", date(2024, 1, 10))
    ledger = Ledger(tmp_path)
    assert ledger.claim(task, min_dte=0, max_dte=0)  # this process plays the owner
    worker.helping[task] = os.getpid()
    worker.heartbeat()
    assert worker.lost == set()  # the owner still holds it
    worker.helping[task] = os.getpid() + 1  # another owner: the claim is no longer the one helped
    worker.heartbeat()
    assert worker.lost == {task}
    worker.lost.clear()
    worker.helping[task] = os.getpid()
    assert ledger.release(task)  # released (a stop): nothing left to help with
    worker.heartbeat()
    assert worker.lost == {task}
