"""What `make soak` looks at: archives on disk, simulators in their own processes, spxdl runs.

Everything talks to 127.0.0.1 only. An expiration is named by its key (root, trade date,
expiration), in ISO dates, both for the files on disk and for what the simulator served.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from sim_process import start_simulator  # bench/ is on sys.path when run as a script
from spxdl import storage

SPXDL = [sys.executable, "-m", "spxdl"]
RUN_TIMEOUT = 300  # seconds: no run of the soak may take longer
Key = tuple[str, str, str]  # root, trade date, expiration


# ------------------------------------------------------------------ the archive


def data_files(data_dir: Path) -> dict[Key, Path]:
    """Every data file in place (temp files and files moved aside are hidden), by key."""
    found = {}
    for path in Path(data_dir).glob("*/root=*/trade_date=*/*.parquet"):
        root = path.parent.parent.name.split("=", 1)[1]
        expiration = storage.expiration_of(path, root)
        if expiration is not None:
            found[(root, path.parent.name.split("=", 1)[1], expiration.isoformat())] = path
    return found


def rows_of(path: Path) -> int | None:
    """The rows in a data file's footer; None if it does not read back."""
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # noqa: BLE001 - any failure to read is what is being counted
        return None


def whole_files(data_dir: Path) -> set[Key]:
    """The expirations whose file stands in place and reads back whole."""
    return {key for key, path in data_files(data_dir).items() if rows_of(path) is not None}


def digest(data_dir: Path) -> dict[Key, str]:
    return {key: hashlib.sha256(path.read_bytes()).hexdigest() for key, path in data_files(data_dir).items()}


def temp_files(data_dir: Path) -> list[Path]:
    return [path for path in Path(data_dir).rglob("*") if storage.temp_file_pid(path.name) is not None]


def verify_problems(data_dir: Path) -> int:
    """How many problems `spxdl verify` finds."""
    done = subprocess.run([*SPXDL, "verify", "--json", "--data-dir", str(data_dir)], capture_output=True, text=True,
                          env=clean_env(), timeout=RUN_TIMEOUT)
    return len(json.loads(done.stdout)["problems"])


# ------------------------------------------------------------------ simulators


class Sim:
    """A tiny-profile simulator in its own process; stopping it drops its connections, like a terminal."""

    def __init__(self, *faults: str, port: int = 0) -> None:
        self.faults = faults
        self.process, self.url = start_simulator("tiny", *faults, port=port)
        self.port = int(self.url.rsplit(":", 1)[1])

    def counters(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/sim/counters", timeout=10) as answer:
            return json.load(answer)

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/sim/reset", data=b"", method="POST"), timeout=10).close()

    def served(self) -> dict[Key, int]:
        """Rows served per expiration in complete history answers since the last reset."""
        served = {}
        for key, rows in self.counters()["rows_by_request"].items():
            _api, _dataset, root, expiration, days = key.split()[:5]
            served[(root, days.split("..")[0], expiration)] = rows
        return served

    def faults_served(self) -> int:
        """429s, errors and cut bodies since the last reset."""
        counters = self.counters()
        refused = sum(count for statuses in counters["requests"].values()
                      for status, count in statuses.items() if status not in ("200", "472"))
        return refused + counters["cut"]["responses"]

    def stop(self) -> None:
        """SIGKILL: the terminal vanishes mid-answer."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)

    def restart(self) -> "Sim":
        """The same simulator back on the same port."""
        return Sim(*self.faults, port=self.port)


# ------------------------------------------------------------------ spxdl runs


def clean_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SPXDL_")}
    return {**env, **extra}


def launch(*args: str, limit: int | None = None, capture: bool = False, **env: str) -> subprocess.Popen:
    """`spxdl --quiet ARGS` in a session of its own; ``limit`` is its file-size limit (ulimit -f) in bytes."""

    def lower_the_file_size_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    return subprocess.Popen([*SPXDL, "--quiet", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE if capture else subprocess.DEVNULL, text=True,
                            env=clean_env(**env), start_new_session=True,
                            preexec_fn=lower_the_file_size_limit if limit else None)


def kill_group(process: subprocess.Popen) -> bool:
    """SIGKILL the whole process group if it still runs; whether it did."""
    if process.poll() is not None:
        return False
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    process.wait(timeout=30)
    return True


@dataclass
class Finished:
    """One spxdl run: its exit code, what it printed, and what it fetched that was already whole on disk."""

    code: int
    stderr: str
    duplicates: int


def run_once(sim: Sim, data_dir: Path, *args: str, limit: int | None = None, **env: str) -> Finished:
    """Run spxdl to its end; counts expirations fetched again though their file stood whole in place."""
    before = whole_files(data_dir)
    sim.reset()
    process = launch(*args, limit=limit, capture=True, **env)
    _, stderr = process.communicate(timeout=RUN_TIMEOUT)
    return Finished(process.returncode, stderr, len(before & set(sim.served())))
