"""A simulated terminal in a process of its own, for benchmarks that must not measure it."""

from __future__ import annotations

import re
import subprocess
import sys
import time

URL = re.compile(r"at (http://127\.0\.0\.1:\d+)")


def start_simulator(profile: str, *extra: str) -> tuple[subprocess.Popen, str]:
    """`spxdl sim --profile PROFILE --port 0 EXTRA...` in its own process; the process and its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "spxdl", "sim", "--profile", profile, "--port", "0", *extra],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = URL.search(process.stderr.readline())
        if match:
            return process, match.group(1)
    process.kill()
    raise SystemExit(f"the {profile} simulator did not start")
