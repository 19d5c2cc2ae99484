"""A simulated terminal in a process of its own, for benchmarks that must not measure it."""

from __future__ import annotations

import re
import subprocess
import sys
import time

URL = re.compile(r"at (http://127\.0\.0\.1:\d+)")


def start_simulator(profile: str, *extra: str, port: int = 0) -> tuple[subprocess.Popen, str]:
    """`spxdl sim --profile PROFILE --port PORT EXTRA...` in its own process; the process and its URL.

    ``port`` 0 picks a free one; a given port brings a stopped simulator back where it was.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "spxdl", "sim", "--profile", profile, "--port", str(port), *extra],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = URL.search(process.stderr.readline())
        if match:
            return process, match.group(1)
    process.kill()
    raise SystemExit(f"the {profile} simulator did not start")
