"""How the latest download into a data dir ended: ``last_run.json``, so that a success right after a failure
is told apart from any other (``[notify] command`` runs after the first one).

One small JSON file beside ``status.json``, replaced atomically under the ledger lock::

    {"version": 1, "ok": false, "exit_code": 75, "command": "update", "at": "2026-11-25T22:30:45.565593+00:00"}
"""

from __future__ import annotations

import logging
from typing import Any

from spxdl import storage
from spxdl.errors import LedgerCorrupt
from spxdl.ledger.core import Ledger
from spxdl.ledger.records import read_json
from spxdl.ledger.task import timestamp, utc_now

log = logging.getLogger(__name__)

OUTCOME_VERSION = 1


def _is_outcome(content: Any) -> bool:
    return isinstance(content, dict) and isinstance(content.get("ok"), bool)


def last_run_failed(ledger: Ledger) -> bool | None:
    """Whether the latest recorded download failed; None before the first (or if its record was corrupt)."""
    with ledger.lock():
        try:
            content = read_json(storage.last_run_path(ledger.data_dir), _is_outcome)
        except LedgerCorrupt as exc:  # moved aside: the next download starts the memory again
            log.warning("%s", exc)
            return None
    return None if content is None else not content["ok"]


def record_run(ledger: Ledger, *, failed: bool, exit_code: int, command: str) -> bool | None:
    """Record how a download ended; whether the one before it failed (None: none recorded)."""
    with ledger.lock():
        before = last_run_failed(ledger)
        outcome = {"version": OUTCOME_VERSION, "ok": not failed, "exit_code": exit_code, "command": command,
                   "at": timestamp(utc_now())}
        storage.write_json_atomic(storage.last_run_path(ledger.data_dir), outcome)
    return before
