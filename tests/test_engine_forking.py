"""The fork server the workers come from: started with the stop signals blocked, and ended with
everything else multiprocessing started when the command line leaves at once."""

from __future__ import annotations

import subprocess
import sys

# The signals a crew's fork server holds blocked (SigBlk of /proc/<pid>/status, a hex mask), and
# whether its helper processes are gone once release_at_exit has run.
MASK_PROBE = """
import signal, time
from multiprocessing import forkserver
from spxdl.config import Settings
from spxdl.engine import forking
from spxdl.engine.processes import Crew
from spxdl.engine.shared import SharedFlag

context = forking.context()
crew = Crew(context, Settings(), SharedFlag(context), 1, 20)
pid = forkserver._forkserver._forkserver_pid
with open(f"/proc/{pid}/status") as status:
    mask = int(next(line for line in status if line.startswith("SigBlk:")).split()[1], 16)
print(sorted(signal.Signals(number).name for number in (signal.SIGINT, signal.SIGTERM) if mask >> (number - 1) & 1))
crew.discard()
forking.release_at_exit(reap=True)
print(forkserver._forkserver._forkserver_pid)
"""


def test_a_crews_fork_server_holds_the_stop_signals_blocked_and_is_reaped_at_exit(tmp_path):
    # a SIGTERM to the run's process group (systemd stopping the unit) must not kill the server: the
    # parent would read its workers' status pipes as their deaths (exit 255) and fail their tasks
    done = subprocess.run([sys.executable, "-c", MASK_PROBE], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines() == ["['SIGINT', 'SIGTERM']", "None"], done.stdout + done.stderr
