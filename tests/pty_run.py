"""A command run on a real pseudo-terminal, for the tests where a TTY is the point."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path


def run_on_a_pty(command: list[str], cwd: Path, env: dict[str, str], *, columns: int | None = None,
                 answer: bytes | None = None, timeout: float = 60) -> tuple[int, str]:
    """``command`` with stdin, stdout and stderr on a pseudo-terminal (``columns`` wide when given);
    ``answer`` is typed once a question ends in ``]: ``. Returns the exit code and all it showed."""
    leader, follower = pty.openpty()
    if columns is not None:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    process = subprocess.Popen(command, cwd=cwd, env=env, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the process closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if answer is not None and re.search(rb"\]: *$", shown):
                os.write(leader, answer)
                answer = None
        elif process.poll() is not None:
            break
    code = process.wait(timeout=10)
    os.close(leader)
    return code, shown.decode("utf-8", "replace")
