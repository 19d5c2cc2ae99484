"""The single checks: is the terminal there and connected, can the archive be written, and how a finding reads.

Each check returns a ``Check`` (ok or not, and a one-line detail); ``report.py`` gathers them for
``spxdl health``, ``doctor.py`` adds the checks of ``spxdl doctor`` as ``Finding`` lines. Nothing
here creates anything on disk: the data dir is judged by its nearest existing parent.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spxdl.config import Settings
from spxdl.engine.shared import archive_for, client_for
from spxdl.errors import ObjectStoreError, TerminalError
from spxdl.terminal import TerminalClient

MIN_FREE_BYTES = 1024**3
PROBE_CONNECT_TIMEOUT = 5.0
PROBE_READ_TIMEOUT = 10.0


@dataclass(frozen=True)
class Check:
    """One health check: whether it passed, and what it saw."""

    ok: bool
    detail: str


class Verdict:
    """What a doctor finding says about one check (the JSON spelling; ``SHOWN`` is the text's)."""

    OK = "ok"
    DIFFERS = "differs"  # spxdl needs it otherwise: exit 1
    TOLERATED = "tolerated"  # differs from the documented wire, and spxdl reads it all the same
    NO_SUBSCRIPTION = "no_subscription"
    NOT_SERVED = "not_served"  # this API version has no such endpoint
    SHOWN = {OK: "ok", DIFFERS: "differs", TOLERATED: "tolerated", NO_SUBSCRIPTION: "not in your subscription",
             NOT_SERVED: "not served"}


@dataclass(frozen=True)
class Finding:
    """One line of ``spxdl doctor``: which check, its verdict, and what was seen (and how it differs)."""

    check: str
    verdict: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "verdict": self.verdict, "detail": self.detail}


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
    detail: str | None = None  # the direct source: where the credentials came from, the account's tiers

    def as_dict(self) -> dict[str, Any]:
        fields = {"url": self.url, "status": self.status, "api": self.api, "simulated": self.simulated,
                  "error": self.error, "detail": self.detail}
        return {key: value for key, value in fields.items() if value is not None}


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


def check_archive(settings: Settings) -> Check:
    """Whether spxdl can write the archive: its data dir; or, for an object store, the store answers, the
    bucket is there and the ledger dir is writable (nothing is created)."""
    if settings.data_is_local and settings.ledger_dir is None:
        return check_data_dir(settings.data_dir)
    ledger = check_data_dir(settings.ledger_path)
    if settings.data_is_local:
        data = check_data_dir(settings.data_dir)
        return Check(data.ok and ledger.ok, f"{data.detail}; ledger: {ledger.detail}")
    archive = archive_for(settings)
    try:
        archive.check()
    except ObjectStoreError as exc:
        return Check(False, f"{exc}; ledger: {ledger.detail}")
    return Check(ledger.ok, f"{archive} answers, its bucket is there; ledger: {ledger.detail}")


def check_disk(data_dir: Path, minimum: int = MIN_FREE_BYTES) -> Check:
    """Whether the data dir's filesystem has ``minimum`` bytes free."""
    free = shutil.disk_usage(nearest_existing(data_dir)).free
    shown = f"{free / 1024**3:.1f} GB free"
    return Check(free >= minimum, shown + ("" if free >= minimum else " (below 1 GB: free some space)"))


def probe_client(settings: Settings, **overrides: Any) -> TerminalClient:
    """A client of ``settings``' terminal for checks: one thread, short timeouts, one retry."""
    options: dict[str, Any] = {
        "threads": 1,
        "connect_timeout": min(settings.connect_timeout, PROBE_CONNECT_TIMEOUT),
        "read_timeout": min(settings.read_timeout, PROBE_READ_TIMEOUT),
        "retries": 1,
    }
    return client_for(settings, **{**options, **overrides})


def check_terminal(settings: Settings, client: TerminalClient) -> TerminalCheck:
    """Connect once and report status, API version and whether it is the simulator."""
    url = settings.terminal_url or "auto (127.0.0.1:25503, then :25510)"
    try:
        client.connect()
        status = client.status()
        return TerminalCheck(status == "CONNECTED", client.base_url, status, client.api, client.simulated)
    except TerminalError as exc:
        return TerminalCheck(False, url, "unreachable", error=str(exc), exception=exc)
