"""Where things live on disk: the archive's layout, every path and file name, and walking it.

Layout (Hive-style partitions, so DuckDB, pyarrow, Polars and Spark read an archive directory as
one table)::

    <data_dir>/status.json, inventory.json, .spxdl.lock, logs/, runs/
    <data_dir>/greeks-1m/_archive.json
    <data_dir>/greeks-1m/root=SPXW/trade_date=2024-01-15/spxw_exp_20240116.parquet
    <data_dir>/greeks-1m/root=SPXW/trade_date=2024-01-15/_day.json

Everything that is not data starts with ``_`` or ``.``: dataset readers skip those names.
Nothing here writes.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)

DAY_JSON = "_day.json"
ARCHIVE_JSON = "_archive.json"
STATUS_JSON = "status.json"
INVENTORY_JSON = "inventory.json"
LAST_RUN_JSON = "last_run.json"
LOCK_FILE = ".spxdl.lock"
LOGS_DIR = "logs"
RUNS_DIR = "runs"
SPOOL_DIR = "spool"
PARTITION = re.compile(r"^(?P<key>[a-z_]+)=(?P<value>.+)$")


def dataset_dir(data_dir: Path, archive: str) -> Path:
    """The directory of one dataset and interval, e.g. ``<data_dir>/greeks-1m``."""
    return Path(data_dir) / archive


def task_dir(data_dir: Path, archive: str, root: str, trade_date: date) -> Path:
    """The partition directory of one task: ``.../root=SPXW/trade_date=2024-01-15``."""
    return dataset_dir(data_dir, archive) / f"root={root}" / f"trade_date={trade_date.isoformat()}"


def data_file_name(root: str, expiration: date) -> str:
    """The file name of one expiration's data: ``spxw_exp_20240116.parquet``."""
    return f"{root.lower()}_exp_{expiration:%Y%m%d}.parquet"


def day_file_name(root: str, trade_date: date) -> str:
    """The file name of a dataset without expirations (an index), one per trade date: ``spx_20240314.parquet``."""
    return f"{root.lower()}_{trade_date:%Y%m%d}.parquet"


def data_file_path(data_dir: Path, archive: str, root: str, trade_date: date, expiration: date) -> Path:
    """The full path of one expiration's Parquet file."""
    return task_dir(data_dir, archive, root, trade_date) / data_file_name(root, expiration)


def day_file_path(data_dir: Path, archive: str, root: str, trade_date: date) -> Path:
    """The full path of the one Parquet file of a task without expirations (an index)."""
    return task_dir(data_dir, archive, root, trade_date) / day_file_name(root, trade_date)


def expiration_of(path: Path, root: str) -> date | None:
    """The date a data file of ``root`` is recorded under (the inverse of ``data_file_name`` and
    ``day_file_name``: an expiration, or an index file's trade date); None for any other name."""
    name = Path(path).name
    try:
        day = datetime.strptime(name[-16:-8], "%Y%m%d").date()
    except ValueError:
        return None
    return day if name in (data_file_name(root, day), day_file_name(root, day)) else None


def data_files(data_dir: Path, archive: str, root: str, trade_date: date) -> dict[date, Path]:
    """The data files in a task's directory, by expiration (any other file is left out)."""
    paths = task_dir(data_dir, archive, root, trade_date).glob("*.parquet")  # none if the dir is missing
    return {expiration: path for path in paths if (expiration := expiration_of(path, root)) is not None}


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


def last_run_path(data_dir: Path) -> Path:
    """How the latest download ended (``notify``'s memory of a failure)."""
    return Path(data_dir) / LAST_RUN_JSON


def lock_path(data_dir: Path) -> Path:
    """The ledger lock file (``fcntl.flock``)."""
    return Path(data_dir) / LOCK_FILE


def logs_dir(data_dir: Path) -> Path:
    """Where the rotating log and ``metrics.csv`` live."""
    return Path(data_dir) / LOGS_DIR


def run_record_path(data_dir: Path, run_id: str) -> Path:
    """One run's record: its range, selection and tasks (``runs/<id>.json``)."""
    return Path(data_dir) / RUNS_DIR / f"{run_id}.json"


def run_record_paths(data_dir: Path) -> list[Path]:
    """Every run record, oldest first (run ids start with their UTC start time)."""
    return sorted((Path(data_dir) / RUNS_DIR).glob("*.json"))


def spool_dir(ledger_dir: Path) -> Path:
    """Where files bound for an object store are written and verified before their upload."""
    return Path(ledger_dir) / SPOOL_DIR


# ---------------------------------------------------------------------------------------------
# walking the archive


def _partition_value(directory: Path, key: str) -> str | None:
    match = PARTITION.match(directory.name)
    return match.group("value") if match and match.group("key") == key else None


def _visible_dirs(directory: Path) -> list[Path]:
    """Subdirectories that are not hidden (``.``) or internal (``_``), sorted by name."""
    return sorted(
        child for child in directory.iterdir() if child.is_dir() and not child.name.startswith(("_", "."))
    )


def _task_dirs_of(archive_dir: Path) -> Iterator[tuple[str, date, Path]]:
    for root_dir in _visible_dirs(archive_dir):
        root = _partition_value(root_dir, "root")
        if root is None:
            continue
        for day_dir in _visible_dirs(root_dir):
            value = _partition_value(day_dir, "trade_date")
            try:
                trade_date = date.fromisoformat(value) if value else None
            except ValueError:
                trade_date = None
            if trade_date is None:
                log.warning("skipping %s: not a trade_date=YYYY-MM-DD directory", day_dir)
                continue
            yield root, trade_date, day_dir


def iter_task_dirs(data_dir: Path) -> Iterator[tuple[str, str, date, Path]]:
    """Every task directory of every archive: (archive, root, trade_date, path), sorted."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return
    for archive_dir in _visible_dirs(data_dir):
        for root, trade_date, day_dir in _task_dirs_of(archive_dir):
            yield archive_dir.name, root, trade_date, day_dir
