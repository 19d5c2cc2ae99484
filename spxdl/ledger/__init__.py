"""The ledger: which tasks are done, who is working on which, and what lies on disk.

- ``task``: ``Task``, the task and expiration state names (``TaskState``, ``ExpirationState``),
  the ledger's timestamps.
- ``lock``: ``LedgerLock``, the flock-based lock every ledger file is written under.
- ``records``: pure functions on the content of ``_day.json``, ``status.json`` and
  ``inventory.json``, their shape checks, and ``read_json``.
- ``claims``: who holds a task, and whether that process is still there.
- ``store``: ``LedgerStore``, the base of ``Ledger``: the files of one data dir read, written and rebuilt.
- ``core``: ``Ledger``, the ledger of one data dir: claims, records, outcomes, rebuild.
- ``runs``: ``RunBook``, the record each run keeps of its range and tasks (what ``resume`` finishes).

``docs/ledger.md`` describes the files and the rules. Everything importable from ``spxdl.ledger``
before it became a package still is.
"""

from spxdl.ledger.core import Ledger
from spxdl.ledger.lock import LedgerLock
from spxdl.ledger.runs import RunBook, RunView
from spxdl.ledger.records import (
    FORMAT_VERSION,
    day_from_files,
    file_totals,
    merge_windows,
    new_day,
    new_expiration_entry,
    read_json,
    reconcile_day,
    reset_downloading,
    set_file,
    task_summary,
    window_covered,
)
from spxdl.ledger.task import (
    EXPIRATION_STATES,
    FINAL_STATES,
    RUN_RECORD_STATES,
    TASK_STATES,
    ExpirationState,
    RunRecordState,
    Task,
    TaskState,
    parse_timestamp,
    timestamp,
    utc_now,
)

__all__ = [
    "EXPIRATION_STATES",
    "FINAL_STATES",
    "FORMAT_VERSION",
    "RUN_RECORD_STATES",
    "TASK_STATES",
    "ExpirationState",
    "Ledger",
    "LedgerLock",
    "RunBook",
    "RunRecordState",
    "RunView",
    "Task",
    "TaskState",
    "day_from_files",
    "file_totals",
    "merge_windows",
    "new_day",
    "new_expiration_entry",
    "parse_timestamp",
    "read_json",
    "reconcile_day",
    "reset_downloading",
    "set_file",
    "task_summary",
    "timestamp",
    "utc_now",
    "window_covered",
]
