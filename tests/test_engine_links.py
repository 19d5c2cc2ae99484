"""The link between a run's driver and its workers: the crew's multiprocessing implementation, and
the log records every implementation carries (the Dask one runs in tests/test_engine_dask.py)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import queue
import subprocess
import sys

from spxdl.engine.links import ProcessLink, Switch, send_logs_to
from spxdl.engine.shared import SharedFlag


def test_a_process_link_is_abandoned_once_the_process_that_started_it_is_gone():
    flag = SharedFlag(multiprocessing.get_context("spawn"))
    assert not ProcessLink(flag, None, queue.Queue(), os.getppid()).abandoned()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert ProcessLink(flag, None, queue.Queue(), int(gone.stdout)).abandoned()


ORPHAN = """
import os, time
from spxdl.engine.links import ProcessLink
ready, said = os.pipe()
if os.fork() == 0:  # the worker: its link made while its parent lives, asked again once it is gone
    link = ProcessLink(None, None, None, os.getppid())
    print(link.abandoned(), flush=True)
    os.write(said, b"x")
    while os.getppid() == link.parent_pid:
        time.sleep(0.01)
    print(link.abandoned(), flush=True)
    os._exit(0)
os.read(ready, 1)  # the parent leaves once the worker has answered the first time
"""


def test_an_orphaned_process_sees_its_link_abandoned():
    done = subprocess.run([sys.executable, "-c", ORPHAN], capture_output=True, text=True, timeout=30)
    assert done.stdout.split() == ["False", "True"], done.stderr


def test_the_log_records_a_worker_sends_arrive_whole_and_picklable():
    sink: queue.Queue = queue.Queue()
    logger = logging.getLogger("spxdl")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    try:
        handler = send_logs_to(sink, logging.INFO)
        logging.getLogger("spxdl.engine.worker").info("%s: %d rows", "greeks-1m/SPXW/2024-01-10", 1234)
        logging.getLogger("spxdl.engine.worker").debug("below the level: not sent")
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]
    record = pickle.loads(pickle.dumps(sink.get_nowait()))
    assert record.getMessage() == "greeks-1m/SPXW/2024-01-10: 1234 rows" and record.name == "spxdl.engine.worker"
    assert sink.empty() and handler.level == logging.NOTSET


def test_a_switch_is_a_flag_without_a_lock():
    switch = Switch()
    assert not switch.is_set()
    switch.set()
    assert switch.is_set()
