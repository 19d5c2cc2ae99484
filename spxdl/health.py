"""The checks behind ``spxdl health``: is the terminal there and connected, can the archive be written.

Each check returns a ``Check`` (ok or not, and a one-line detail); ``health_report`` gathers them
into a ``HealthReport`` that the CLI renders as text or JSON. Nothing here creates anything on
disk: the data dir is judged by its nearest existing parent.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spxdl.config import Settings
from spxdl.engine.shared import client_for
from spxdl.errors import TerminalError

MIN_FREE_BYTES = 1024**3
PROBE_CONNECT_TIMEOUT = 5.0
PROBE_READ_TIMEOUT = 10.0


@dataclass(frozen=True)
class Check:
    """One health check: whether it passed, and what it saw."""

    ok: bool
    detail: str


@dataclass(frozen=True)
class TerminalCheck:
    """What connecting to the terminal found."""

    ok: bool
    url: str
    status: str
    api: str | None = None
    simulated: bool | None = None
    error: str | None = None  # why it failed (the exception's message)
    exception: TerminalError | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        fields = {"url": self.url, "status": self.status, "api": self.api, "simulated": self.simulated,
                  "error": self.error}
        return {key: value for key, value in fields.items() if value is not None}


@dataclass(frozen=True)
class HealthReport:
    """Every check of ``spxdl health``; healthy when all passed."""

    terminal: TerminalCheck
    data_dir: Check
    disk: Check

    @property
    def healthy(self) -> bool:
        return self.terminal.ok and self.data_dir.ok and self.disk.ok

    def as_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "terminal": self.terminal.as_dict(),
            "data_dir": {"ok": self.data_dir.ok, "detail": self.data_dir.detail},
            "disk": {"ok": self.disk.ok, "detail": self.disk.detail},
        }


def nearest_existing(path: Path) -> Path:
    """``path`` or its closest existing parent (where a new data dir would be created)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_data_dir(data_dir: Path) -> Check:
    """Whether spxdl can write into ``data_dir`` (or create it), without creating anything."""
    existing = nearest_existing(data_dir)
    if not existing.is_dir():
        return Check(False, f"{existing} is not a directory; choose another --data-dir")
    if not os.access(existing, os.W_OK | os.X_OK):
        return Check(False, f"{existing} is not writable; fix its permissions or choose another --data-dir")
    note = "exists" if existing == data_dir.absolute() else f"will be created under {existing}"
    shown = data_dir if data_dir.is_absolute() else f"{data_dir} (= {data_dir.absolute()})"
    return Check(True, f"{shown} is writable ({note})")


def check_disk(data_dir: Path, minimum: int = MIN_FREE_BYTES) -> Check:
    """Whether the data dir's filesystem has ``minimum`` bytes free."""
    free = shutil.disk_usage(nearest_existing(data_dir)).free
    shown = f"{free / 1024**3:.1f} GB free"
    return Check(free >= minimum, shown + ("" if free >= minimum else " (below 1 GB: free some space)"))


def check_terminal(settings: Settings) -> TerminalCheck:
    """Connect once (short timeouts, one retry) and report status, API version and whether it is the simulator."""
    url = settings.terminal_url or "auto (127.0.0.1:25503, then :25510)"
    try:
        with client_for(
            settings,
            threads=1,
            connect_timeout=min(settings.connect_timeout, PROBE_CONNECT_TIMEOUT),
            read_timeout=min(settings.read_timeout, PROBE_READ_TIMEOUT),
            retries=1,
        ) as client:
            client.connect()
            status = client.status()
            return TerminalCheck(status == "CONNECTED", client.base_url, status, client.api, client.simulated)
    except TerminalError as exc:
        return TerminalCheck(False, url, "unreachable", error=str(exc), exception=exc)


def health_report(settings: Settings) -> HealthReport:
    """Every check of ``spxdl health`` for ``settings``."""
    return HealthReport(check_terminal(settings), check_data_dir(settings.data_dir), check_disk(settings.data_dir))
