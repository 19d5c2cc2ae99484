"""What the ledger speaks of: tasks, their states and expirations' states, and its timestamps.

State names are plain ``str`` constants on namespaces, ``TaskState``, ``ExpirationState`` and
``RunRecordState`` (not an ``Enum``): they are exactly what the JSON files hold, so a value read back from disk
compares equal to them, and they serialize and format as themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Final, Mapping


class TaskState:
    """The states of a task, as stored in ``_day.json`` and ``status.json``."""

    QUEUED: Final = "queued"  # known, never started (or rebuilt without files)
    IN_PROGRESS: Final = "in_progress"  # claimed; also what an interrupted task keeps once released
    SUCCESS: Final = "success"
    PARTIAL: Final = "partial"  # some expirations failed, or the state was lost and rebuilt from files
    FAILED: Final = "failed"
    NO_DATA: Final = "no_data"  # no data for the whole day: a gap later runs try again
    # Never stored: what status shows for an in_progress task no live run holds (its run was stopped or killed).
    INTERRUPTED: Final = "interrupted"


class ExpirationState:
    """The states of one expiration of a task, as stored in its ``_day.json``."""

    PENDING: Final = "pending"
    DOWNLOADING: Final = "downloading"
    COMPLETE: Final = "complete"  # a verified file is recorded
    FAILED: Final = "failed"
    NO_DATA: Final = "no_data"  # one expiration without data is normal


TASK_STATES: Final = (
    TaskState.QUEUED,
    TaskState.IN_PROGRESS,
    TaskState.SUCCESS,
    TaskState.PARTIAL,
    TaskState.FAILED,
    TaskState.NO_DATA,
)
FINAL_STATES: Final = (TaskState.SUCCESS, TaskState.PARTIAL, TaskState.FAILED, TaskState.NO_DATA)


class RunRecordState:
    """The states of a run record (``runs/<id>.json``): what each run set out to do."""

    RUNNING: Final = "running"  # stored when the run begins
    INTERRUPTED: Final = "interrupted"  # stored when it stopped before it tried every task
    KILLED: Final = "killed"  # never stored: a running record whose process is gone


RUN_RECORD_STATES: Final = (RunRecordState.RUNNING, RunRecordState.INTERRUPTED)
EXPIRATION_STATES: Final = (
    ExpirationState.PENDING,
    ExpirationState.DOWNLOADING,
    ExpirationState.COMPLETE,
    ExpirationState.FAILED,
    ExpirationState.NO_DATA,
)


@dataclass(frozen=True, order=True)
class Task:
    """One unit of work: one trade date of one root in one archive (dataset and interval)."""

    archive: str
    root: str
    trade_date: date

    @property
    def key(self) -> str:
        """The task's name in the ledger, e.g. ``greeks-1m/SPXW/2024-01-15``."""
        return f"{self.archive}/{self.root}/{self.trade_date.isoformat()}"

    @classmethod
    def from_key(cls, key: str) -> Task:
        """The task named by ``key``; ValueError if it is not ``archive/root/YYYY-MM-DD``."""
        archive, root, trade_date = key.split("/")
        return cls(archive, root, date.fromisoformat(trade_date))

    def identity(self) -> dict[str, str]:
        """The fields that name this task inside its ``_day.json``."""
        return {"archive": self.archive, "root": self.root, "trade_date": self.trade_date.isoformat()}

    @classmethod
    def from_identity(cls, fields: Mapping[str, Any]) -> Task:
        """The task a ``_day.json`` (or any mapping with its identity fields) belongs to."""
        return cls(str(fields["archive"]), str(fields["root"]), date.fromisoformat(fields["trade_date"]))


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)


def timestamp(moment: datetime) -> str:
    """``moment`` as the ISO text the ledger stores (UTC, microseconds, ``+00:00``)."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def parse_timestamp(text: str) -> datetime:
    """The instant of a stored timestamp."""
    return datetime.fromisoformat(text)
