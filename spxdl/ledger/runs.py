"""Run records: what each run set out to do, so that ``spxdl resume`` can finish an interrupted one.

A run writes ``<data_dir>/runs/<id>.json`` before any worker starts: its date range, its
selection (roots, datasets, interval, DTE window, force) and the key of every task it planned,
started or not. A run that tried every task removes its record at the end (what failed is in
the tasks' own records); one that stopped early (a signal, a full disk, a terminal gone, an
answer that stops every request) marks it ``interrupted`` with the reason; one that was killed
leaves it ``running`` with a process that no longer exists. A record is finished, and removed
by the next run that ends, once every task it names is done.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Collection, Iterable, Mapping

from spxdl import procs, storage
from spxdl.errors import LedgerCorrupt
from spxdl.ledger.core import Ledger
from spxdl.ledger.records import read_json, window_covered
from spxdl.ledger.task import RUN_RECORD_STATES, RunRecordState, Task, TaskState, parse_timestamp, timestamp, utc_now

log = logging.getLogger(__name__)

RECORD_VERSION = 1
SELECTION_KEYS = ("roots", "datasets", "interval")


@dataclass(frozen=True)
class RunView:
    """A run record as read now: its state (``running``, ``interrupted`` or ``killed``) and tasks left."""

    record: Mapping[str, Any]
    state: str
    remaining: tuple[Task, ...]

    @property
    def id(self) -> str:
        return str(self.record["id"])

    @property
    def selection(self) -> Mapping[str, Any]:
        """roots, datasets, interval, min_dte, max_dte and force, as the run had them."""
        return self.record["selection"]

    def as_dict(self) -> dict[str, Any]:
        """The record without its task list, with ``state``, ``tasks`` and ``remaining`` counts."""
        shown = {key: value for key, value in self.record.items() if key != "tasks"}
        return {**shown, "state": self.state, "tasks": len(self.record["tasks"]), "remaining": len(self.remaining)}


def is_run_record(content: Any) -> bool:
    """Whether parsed JSON is a run record (raises on malformed parts; ``read_json`` counts that as corrupt)."""
    selection = content["selection"]
    date.fromisoformat(content["start"])
    date.fromisoformat(content["end"])
    parse_timestamp(content["started_at"])
    return (
        content.get("version") == RECORD_VERSION
        and isinstance(content.get("id"), str)
        and content.get("state") in RUN_RECORD_STATES
        and isinstance(content.get("pid"), int)
        and all(isinstance(selection.get(name), int) for name in ("min_dte", "max_dte"))
        and isinstance(selection.get("force"), bool)
        and all(name in selection for name in SELECTION_KEYS)
        and isinstance(content.get("tasks"), list)
        and all(Task.from_key(key) for key in content["tasks"])
    )


class RunBook:
    """The run records of one data dir, written under its ledger's lock."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def begin(self, *, start: date, end: date, tasks: Iterable[Task], selection: Mapping[str, Any]) -> str:
        """Record a run about to start (``selection``: roots, datasets, interval, min_dte, max_dte, force); its id."""
        now = utc_now()
        run_id = f"{now:%Y%m%dT%H%M%S.%fZ}-{os.getpid()}"
        record = {
            "version": RECORD_VERSION,
            "id": run_id,
            "state": RunRecordState.RUNNING,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": timestamp(now),
            "ended_at": None,
            "reason": None,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "selection": dict(selection),
            "tasks": [task.key for task in tasks],
        }
        with self.ledger.lock():
            storage.write_json_atomic(storage.run_record_path(self.ledger.data_dir, run_id), record)
        return run_id

    def end(self, run_id: str, *, reason: str | None, finishes: Collection[str] = ()) -> None:
        """Close our run: ``reason`` None (every task tried) removes its record and those of ``finishes``
        (the interrupted runs it resumed); otherwise it stays, ``interrupted`` with the reason.
        Records of ended runs whose tasks are all done go too."""
        path = storage.run_record_path(self.ledger.data_dir, run_id)
        with self.ledger.lock():
            if reason is None:
                for finished in (run_id, *finishes):
                    storage.run_record_path(self.ledger.data_dir, finished).unlink(missing_ok=True)
            else:
                record = self._read(path)
                if record is not None:
                    record.update(state=RunRecordState.INTERRUPTED, ended_at=timestamp(utc_now()), reason=reason)
                    storage.write_json_atomic(path, record)
            self.prune()

    def prune(self) -> list[str]:
        """Remove the records of ended runs whose every task is done; their ids."""
        removed = []
        with self.ledger.lock():
            for view in self.views():
                if view.state != RunRecordState.RUNNING and not view.remaining:
                    storage.run_record_path(self.ledger.data_dir, view.id).unlink(missing_ok=True)
                    removed.append(view.id)
        return removed

    def views(self) -> list[RunView]:
        """Every readable record, oldest first, with its state now and the tasks it still lacks."""
        records = [record for path in storage.run_record_paths(self.ledger.data_dir) if (record := self._read(path))]
        if not records:
            return []
        entries = self.ledger.status()["tasks"]
        return [RunView(record, _state_now(record), _remaining(record, entries)) for record in records]

    def unfinished(self) -> list[RunView]:
        """Runs that ended (stopped or killed) before every task they planned was done."""
        return [view for view in self.views() if view.state != RunRecordState.RUNNING and view.remaining]

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            return read_json(path, is_run_record)
        except LedgerCorrupt as exc:  # moved aside: its never-started days are forgotten, the rest is in the ledger
            log.warning("%s; the tasks it started are still resumed from their own records", exc)
            return None


def _state_now(record: Mapping[str, Any]) -> str:
    """``running`` while its process lives (a run on another host counts as running), else as stored or ``killed``."""
    if record["state"] != RunRecordState.RUNNING:
        return record["state"]
    if record.get("host") != socket.gethostname():
        return RunRecordState.RUNNING
    alive = procs.process_alive(record["pid"], parse_timestamp(record["started_at"]))
    return RunRecordState.RUNNING if alive else RunRecordState.KILLED


def _remaining(record: Mapping[str, Any], entries: Mapping[str, Mapping[str, Any]]) -> tuple[Task, ...]:
    """The record's tasks not yet done for its DTE window (for a forced run: not finished since it began)."""
    selection = record["selection"]
    began = parse_timestamp(record["started_at"])
    left = []
    for key in record["tasks"]:
        entry = entries.get(key)
        finished = entry.get("finished_at") if entry else None
        done = (
            entry is not None
            and entry.get("state") == TaskState.SUCCESS
            and window_covered(entry.get("covered") or [], selection["min_dte"], selection["max_dte"])
            and (not selection["force"] or (finished is not None and parse_timestamp(finished) >= began))
        )
        if not done:
            left.append(Task.from_key(key))
    return tuple(left)
