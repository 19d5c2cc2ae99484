"""Process liveness: running, gone, zombie, and a pid reused by a newer process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from spxdl import procs

LINUX_PROC = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def zombie():
    """A child that has exited but is not reaped yet."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while (procs.process_facts(child.pid) or procs.ProcessFacts("?", 0)).state != "Z":
        assert time.monotonic() < deadline, "the child never became a zombie"
        time.sleep(0.01)
    yield child.pid
    child.wait()


def test_this_process_is_alive_and_an_exited_one_is_not():
    assert procs.pid_alive(os.getpid())
    assert not procs.pid_alive(dead_pid())


@pytest.mark.parametrize("pid", [0, -1])
def test_no_pid_at_or_below_zero_is_alive(pid):
    assert not procs.pid_alive(pid)


@LINUX_PROC
def test_a_zombie_is_not_alive(zombie):
    assert not procs.pid_alive(zombie)
    assert not procs.process_alive(zombie, datetime.now(timezone.utc))


@LINUX_PROC
def test_process_facts_give_state_and_a_start_time_since_boot():
    facts = procs.process_facts(os.getpid())
    assert facts is not None
    assert facts.state in ("R", "S", "D")
    assert procs.boot_time() <= facts.started <= time.time()
    assert procs.process_facts(dead_pid()) is None


def test_process_alive_needs_a_running_process_that_existed_then():
    now = datetime.now(timezone.utc)
    assert procs.process_alive(os.getpid(), now)
    assert not procs.process_alive(dead_pid(), now)
    assert not procs.process_alive(None, now)  # type: ignore[arg-type]  # a claim without a pid
    assert not procs.process_alive("123", now)  # type: ignore[arg-type]


@LINUX_PROC
def test_a_process_that_started_after_the_moment_holds_a_reused_pid():
    before_we_started = datetime.now(timezone.utc) - timedelta(days=3650)
    assert not procs.process_alive(os.getpid(), before_we_started)
    slack = timedelta(seconds=procs.PID_START_SLACK / 2)
    started = datetime.fromtimestamp(procs.process_facts(os.getpid()).started, timezone.utc)
    assert procs.process_alive(os.getpid(), started - slack), "start times are known only to about a second"
