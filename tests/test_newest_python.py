"""``bin/newest-python``: make install's choice of interpreter, the newest Python 3.10+ it finds.

Interpreters that answer as Python 3.9, 3.10 and 3.12 would, and one that fails (a pyenv shim of a
version not selected), stand on PATH; the script must pick 3.12, whatever their order.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bin" / "newest-python"


def fake_python(directory: Path, name: str, rank: int | None) -> Path:
    """An executable that answers the script's version question with ``rank`` (3012 for 3.12), or fails."""
    path = directory / name
    body = f"echo {rank}" if rank is not None else "echo 'pyenv: command not found' >&2; exit 127"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def newest(path_dirs: list[Path], home: Path) -> str:
    env = {"PATH": os.pathsep.join(str(d) for d in path_dirs), "HOME": str(home), "PYENV_ROOT": str(home / "none")}
    return subprocess.run(["/bin/sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60).stdout.strip()


def test_the_newest_python_310_or_later_is_picked(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    fake_python(first, "python3", 3010)
    fake_python(first, "python3.13", None)  # a shim of a version pyenv has not selected
    newest_one = fake_python(second, "python3.12", 3012)
    fake_python(second, "python3.11", 0)  # answers as a Python below 3.10 would
    assert newest([first, second], tmp_path) == str(newest_one)


def test_nothing_is_printed_when_no_python_310_is_found(tmp_path):
    fake_python(tmp_path, "python3", 0)
    assert newest([tmp_path], tmp_path) == ""
