"""The fork server the workers come from: started by the entry point before the command line loads,
for the commands that download only; killed at exit when no run used it, asked to stop when one did."""

from __future__ import annotations

import subprocess
import sys

import pytest

from spxdl.engine.forking import downloads


@pytest.mark.parametrize("arguments, expected", [
    (["run", "--date", "2024-03-14"], True),
    (["--quiet", "backfill"], True),
    (["-v", "update", "--lookback", "2"], True),
    (["resume", "--yes"], True),
    (["download", "--start", "2024-03-11"], True),
    (["status"], False),
    (["gaps", "--start", "2024-03-11"], False),
    (["sim", "--port", "0"], False),
    (["run", "--help"], False),
    (["backfill", "--dry-run"], False),
    (["--version"], False),
    ([], False),
])
def test_only_a_command_that_downloads_starts_the_fork_server_early(arguments, expected):
    assert downloads(arguments) is expected


# The entry point as the console script runs it, with start_early watched: it must be called first,
# with the command line, before the command line's own modules load.
ENTRY_PROBE = """
import sys
from spxdl.engine import forking

started = forking.start_early
def watched(arguments):
    result = started(arguments)
    print("early", list(arguments), result, "spxdl.cli" in sys.modules, flush=True)
    return result
forking.start_early = watched
sys.argv = ["spxdl", *sys.argv[1:]]
from spxdl.__main__ import main
main()
"""


def test_the_entry_point_starts_the_fork_server_before_it_loads_the_command_line(tmp_path):
    args = ["run", "--date", "2024-03-16", "--data-dir", str(tmp_path / "data")]  # a Saturday: refused, exit 2
    done = subprocess.run([sys.executable, "-c", ENTRY_PROBE, *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stdout.splitlines() == [f"early {args} True False"], done.stdout + done.stderr


# How the fork server ended, as release_at_exit reaped it: killed (SIGKILL) or exited by itself.
EXIT_PROBE = """
import os, signal, sys, time
from multiprocessing import forkserver
from spxdl.engine import forking

forking.start_early(["run"])
if sys.argv[1] == "used":
    worker = forking.context().Process(target=time.sleep, args=(0,))
    worker.start()
    worker.join()
pid = forkserver._forkserver._forkserver_pid
statuses = {}
waitpid = os.waitpid
def watched(waited, options):
    answer = waitpid(waited, options)
    statuses[waited] = answer[1]
    return answer
os.waitpid = watched
forking.release_at_exit(reap=True)
status = statuses[pid]
print("killed" if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL else f"exit {os.waitstatus_to_exitcode(status)}")
"""


@pytest.mark.parametrize("use, ended", [("unused", "killed"), ("used", "exit 0")])
def test_an_unused_fork_server_is_killed_at_exit_and_a_used_one_stops_by_itself(use, ended, tmp_path):
    # killed: one started early may still be loading, and asked to stop it would first finish (a
    # third of a second added to a run with nothing to do). One that forked workers is asked, so
    # that it reaps them first and their CPU time counts as the run's.
    done = subprocess.run([sys.executable, "-c", EXIT_PROBE, use], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == ended, done.stdout + done.stderr


# The signals a fork server started early holds blocked (SigBlk of /proc/<pid>/status, a hex mask).
MASK_PROBE = """
import signal
from multiprocessing import forkserver
from spxdl.engine import forking

forking.start_early(["run"])
pid = forkserver._forkserver._forkserver_pid
with open(f"/proc/{pid}/status") as status:
    mask = int(next(line for line in status if line.startswith("SigBlk:")).split()[1], 16)
print(sorted(signal.Signals(number).name for number in (signal.SIGINT, signal.SIGTERM) if mask >> (number - 1) & 1))
forking.release_at_exit(reap=True)
"""


def test_a_fork_server_started_early_holds_the_stop_signals_blocked(tmp_path):
    # a SIGTERM to the run's process group (systemd stopping the unit) must not kill the server: the
    # parent would read its workers' status pipes as their deaths (exit 255) and fail their tasks
    done = subprocess.run([sys.executable, "-c", MASK_PROBE], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "['SIGINT', 'SIGTERM']", done.stdout + done.stderr
