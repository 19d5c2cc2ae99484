"""spxdl.logs: the log file drops what a full disk refuses instead of printing tracebacks."""

from __future__ import annotations

import subprocess
import sys

# A real kernel limit: the log file already holds more than the child's file-size limit, so every
# record the handler writes fails with EFBIG, as on a full disk with ENOSPC.
LOG_PAST_THE_LIMIT = """
import logging, resource, signal, sys
from pathlib import Path
from spxdl import logs
path = Path(sys.argv[1])
path.write_bytes(b"x" * 20_000)
assert signal.getsignal(signal.SIGXFSZ) == signal.SIG_IGN  # CPython's own: the write fails, nothing dies
resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
logs.configure(level="INFO", log_file=path)
log = logging.getLogger("spxdl.test")
for number in range(3):
    log.warning("record %d", number)
print("done", flush=True)
"""


def test_the_log_file_on_a_full_disk_drops_records_without_a_traceback_and_the_console_keeps_them(tmp_path):
    done = subprocess.run([sys.executable, "-c", LOG_PAST_THE_LIMIT, str(tmp_path / "spxdl.log")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "done\n", done.stderr
    assert "Logging error" not in done.stderr and "Traceback" not in done.stderr
    assert [line.split(" ", 2)[2] for line in done.stderr.splitlines()] == [f"record {n}" for n in range(3)]
    assert (tmp_path / "spxdl.log").stat().st_size == 20_000
