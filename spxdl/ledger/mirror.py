"""The ledger's copies next to the data, when the data lives elsewhere (an object store, ``data_dir = s3://...``).

The ledger itself stays in a directory with a working ``flock`` (``ledger_dir``); readers of the
data see what is complete through the copies published here: each task's ``_day.json``,
``status.json`` and ``inventory.json``, at the same paths relative to the data dir as in the
ledger. Publishing goes through the archive's own path (a hidden temp key, checked, moved into
place), and a failure to publish is only logged: the ledger stays right, the next finish, run or
repair publishes again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from spxdl import storage
from spxdl.archive_fs import Archive
from spxdl.errors import StorageError
from spxdl.ledger.records import is_day_of
from spxdl.ledger.task import Task

log = logging.getLogger(__name__)


def publish_copies(ledger_dir: Path, mirror: Archive | None, *paths: Path) -> None:
    """Publish each ledger file in ``paths`` at its place next to the data (nothing without a mirror)."""
    if mirror is None:
        return
    for path in paths:
        try:
            mirror.publish(mirror.at(path.relative_to(ledger_dir)), path.read_bytes())
        except (StorageError, OSError) as exc:
            log.warning("could not publish %s next to the data: %s", path.name, exc)


def publish_changed(ledger_dir: Path, mirror: Archive | None, path: Path) -> None:
    """Publish a ledger file whose copy next to the data is missing or differs (a repair's catching up)."""
    if mirror is None or not path.is_file():
        return
    try:
        same = mirror.read_bytes(mirror.at(path.relative_to(ledger_dir))) == path.read_bytes()
    except (StorageError, OSError) as exc:
        log.warning("could not read the published copy of %s: %s", path.name, exc)
        return
    if not same:
        publish_copies(ledger_dir, mirror, path)


def published_day(ledger_dir: Path, mirror: Archive, task: Task) -> dict[str, Any] | None:
    """The task's ``_day.json`` as published next to the data (for a ledger dir started afresh), if sound."""
    path = storage.day_json_path(ledger_dir, task.archive, task.root, task.trade_date)
    location = mirror.at(path.relative_to(ledger_dir))
    try:
        data = mirror.read_bytes(location)
        day = json.loads(data) if data is not None else None
    except (StorageError, ValueError) as exc:
        log.warning("ignoring the published %s: %s", mirror.show(location), exc)
        return None
    try:
        return day if day is not None and is_day_of(task)(day) else None
    except (KeyError, TypeError, ValueError):
        return None


def tasks_on_disk(ledger_dir: Path, mirror: Archive | None) -> list[Task]:
    """Every task with a directory in the ledger, and in the archive when that lies elsewhere; sorted."""
    tasks = [Task(archive, root, day) for archive, root, day, _ in storage.iter_task_dirs(ledger_dir)]
    if mirror is None:
        return tasks
    return sorted({*tasks, *(Task(archive, root, day) for archive, root, day, _ in mirror.iter_task_dirs())})
