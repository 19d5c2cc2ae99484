"""Where things live on disk, and how files get there: atomically, verified, never half-written.

Layout (Hive-style partitions, so DuckDB, pyarrow, Polars and Spark read an archive directory as
one table)::

    <data_dir>/status.json, inventory.json, .spxdl.lock, logs/
    <data_dir>/greeks-1m/_archive.json
    <data_dir>/greeks-1m/root=SPXW/trade_date=2024-01-15/spxw_exp_20240116.parquet
    <data_dir>/greeks-1m/root=SPXW/trade_date=2024-01-15/_day.json

Everything that is not data starts with ``_`` or ``.``: dataset readers skip those names.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO, Iterator

log = logging.getLogger(__name__)

DAY_JSON = "_day.json"
ARCHIVE_JSON = "_archive.json"
STATUS_JSON = "status.json"
INVENTORY_JSON = "inventory.json"
LOCK_FILE = ".spxdl.lock"
LOGS_DIR = "logs"
TEMP_MARKER = ".tmp-"


def dataset_dir(data_dir: Path, archive: str) -> Path:
    """The directory of one dataset and interval, e.g. ``<data_dir>/greeks-1m``."""
    return Path(data_dir) / archive


def task_dir(data_dir: Path, archive: str, root: str, trade_date: date) -> Path:
    """The partition directory of one task: ``.../root=SPXW/trade_date=2024-01-15``."""
    return dataset_dir(data_dir, archive) / f"root={root}" / f"trade_date={trade_date.isoformat()}"


def data_file_name(root: str, expiration: date) -> str:
    """The file name of one expiration's data: ``spxw_exp_20240116.parquet``."""
    return f"{root.lower()}_exp_{expiration:%Y%m%d}.parquet"


def data_file_path(data_dir: Path, archive: str, root: str, trade_date: date, expiration: date) -> Path:
    """The full path of one expiration's Parquet file."""
    return task_dir(data_dir, archive, root, trade_date) / data_file_name(root, expiration)


def day_json_path(data_dir: Path, archive: str, root: str, trade_date: date) -> Path:
    """The task's own ledger file (claim, per-expiration state, file inventory)."""
    return task_dir(data_dir, archive, root, trade_date) / DAY_JSON


def archive_json_path(data_dir: Path, archive: str) -> Path:
    """The file recording what shapes the data of one archive directory."""
    return dataset_dir(data_dir, archive) / ARCHIVE_JSON


def status_path(data_dir: Path) -> Path:
    """Run and task level status summary."""
    return Path(data_dir) / STATUS_JSON


def inventory_path(data_dir: Path) -> Path:
    """Totals and per-task file counts, bytes and rows."""
    return Path(data_dir) / INVENTORY_JSON


def lock_path(data_dir: Path) -> Path:
    """The ledger lock file (``fcntl.flock``)."""
    return Path(data_dir) / LOCK_FILE


def logs_dir(data_dir: Path) -> Path:
    """Where the rotating log and ``metrics.csv`` live."""
    return Path(data_dir) / LOGS_DIR


def temp_prefix(target: Path) -> str:
    """The temp-file prefix for ``target``: hidden, and carrying our pid so a sweep can tell dead ones."""
    return f".{target.name}{TEMP_MARKER}{os.getpid()}-"


def fsync_dir(directory: Path) -> None:
    """Make a rename inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` only if the block finishes without an exception.

    The temp file lives in the target's directory (so the rename is atomic), is flushed and
    fsynced before ``os.replace``, and the directory is fsynced after it. On any exception the
    temp file is removed and the previous ``path``, if any, is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path))
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    with atomic_output(path) as handle:
        handle.write(data)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Replace ``path`` with ``obj`` as JSON (sorted keys, one-space indent, final newline)."""
    text = json.dumps(obj, sort_keys=True, indent=1, default=str) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))
