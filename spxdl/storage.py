"""Where things live on disk, and how files get there: atomically, verified, never half-written.

Layout (Hive-style partitions, so DuckDB, pyarrow, Polars and Spark read an archive directory as
one table)::

    <data_dir>/status.json, inventory.json, .spxdl.lock, logs/, runs/
    <data_dir>/greeks-1m/_archive.json
    <data_dir>/greeks-1m/root=SPXW/trade_date=2024-01-15/spxw_exp_20240116.parquet
    <data_dir>/greeks-1m/root=SPXW/trade_date=2024-01-15/_day.json

Everything that is not data starts with ``_`` or ``.``: dataset readers skip those names.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import fcntl
import hashlib
import io
import json
import logging
import os
import re
import tempfile
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping, Sequence

from spxdl import procs
from spxdl.errors import DiskFull, StorageError

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
TEMP_MARKER = ".tmp-"
HASH_CHUNK = 1 << 20
# ".<target name>.tmp-<pid>-<random>", as made by temp_prefix + tempfile.mkstemp
TEMP_NAME = re.compile(r"^\..+" + re.escape(TEMP_MARKER) + r"(?P<pid>\d+)-[^/]*$")
MOVE_ASIDE = "move it aside or use another data dir"
PARTITION = re.compile(r"^(?P<key>[a-z_]+)=(?P<value>.+)$")
CORRUPT_MARKER = ".corrupt-"
# A write that fails with one of these finds no room: every later write would fail too.
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


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


def _current_umask() -> int:
    # os.umask can only be read by setting it; done once, at import, before any thread starts.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _current_umask()


def make_temp(path: Path) -> tuple[int, Path]:
    """A new temp file next to ``path`` (hidden, with our pid), readable as the umask allows.

    ``mkstemp`` makes files 0600; an archive is read by other users and services too.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path))
    os.fchmod(fd, 0o666 & ~UMASK)
    return fd, Path(tmp_name)


@contextlib.contextmanager
def no_space_is_disk_full(path: Path) -> Iterator[None]:
    """Turn an OSError saying there is no room (full disk or quota, file-size limit) into DiskFull."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in NO_SPACE_ERRNOS:
            raise
        if exc.errno == errno.EFBIG:
            why = "the file-size limit (ulimit -f) or the file system's largest file size was reached"
        else:
            why = os.strerror(exc.errno).lower()
        raise DiskFull(f"cannot write {path}: {why}; nothing partial was kept.", path=str(path)) from exc


@contextlib.contextmanager
def atomic_output(path: Path, check: Callable[[Path], None] | None = None) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` only if the block finishes without an exception.

    The temp file lives in the target's directory (so the rename is atomic), is flushed and
    fsynced, then given to ``check`` (which raises if it is not right) before ``os.replace``; the
    directory is fsynced after it. On any exception the temp file is removed and the previous
    ``path``, if any, is untouched; a write that finds no room raises DiskFull.
    """
    path = Path(path)
    with no_space_is_disk_full(path):
        fd, tmp = make_temp(path)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            if check is not None:
                check(tmp)
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


def json_bytes(obj: Any, compact: bool = False) -> bytes:
    # indent makes json fall back to its pure-Python encoder: 3-4x slower on a 2 MB status.json
    options = {"separators": (",", ":")} if compact else {"indent": 1}
    return (json.dumps(obj, sort_keys=True, default=str, **options) + "\n").encode("utf-8")


def write_json_atomic(path: Path, obj: Any, *, compact: bool = False) -> None:
    """Replace ``path`` with ``obj`` as JSON (sorted keys, final newline).

    One-space indent for files people read; ``compact`` for large summaries rewritten often.
    """
    write_bytes_atomic(path, json_bytes(obj, compact))


def discard(path: Path) -> None:
    """Remove ``path`` if it is there (a capture given up)."""
    Path(path).unlink(missing_ok=True)


def create_bytes_once(path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data`` unless it exists; True if this call created it.

    The complete temp file is hard-linked into place, so a concurrent reader never sees a
    partial file and of two concurrent creators exactly one wins.
    """
    path = Path(path)
    with no_space_is_disk_full(path):
        fd, tmp = make_temp(path)
        tmp_name = str(tmp)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp_name, path)
            except FileExistsError:
                return False
            fsync_dir(path.parent)
            return True
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


# ---------------------------------------------------------------------------------------------
# verification


@dataclasses.dataclass(frozen=True)
class FileInfo:
    """A data file as verified on disk."""

    path: Path
    rows: int
    bytes: int
    sha256: str


def append_csv_rows(path: Path, rows: Sequence[Mapping[str, object]], fields: Sequence[str]) -> None:
    """Append ``rows`` to the CSV file ``path`` under an exclusive flock, with a header of ``fields`` if new.

    Concurrent writers (a run's parent and another run) never interleave their lines. A file whose
    header lacks some of ``fields`` (an older spxdl's) is first rewritten, atomically under the
    same flock, with those columns added at the end and its rows padded; rows always follow the
    file's own header. A writer that waited on the file a rewrite replaced appends to the new one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                continue  # replaced by a rewrite while we waited: append to the new file
            with open(path, encoding="utf-8", newline="") as handle:
                first = handle.readline()
            header = next(csv.reader([first]), None) or list(fields)
            missing = [name for name in fields if name not in header]
            if missing:
                with open(path, encoding="utf-8", newline="") as handle:
                    widened = _csv_text([*header, *missing], csv.DictReader(handle), header=True)
                write_bytes_atomic(path, widened.encode("utf-8"))
                continue
            os.write(fd, _csv_text(header, rows, header=not first).encode("utf-8"))
            return
        finally:
            os.close(fd)  # closing drops the flock


def _csv_text(fields: Sequence[str], rows: Iterable[Mapping[str, object]], *, header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), restval="", extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def sha256_file(path: Path) -> str:
    """Hex sha256 of the file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parquet_rows(path: Path) -> int:
    """The row count in the Parquet footer; StorageError if the file is not readable Parquet."""
    import pyarrow.parquet as pq  # here: the ledger and a run with nothing to do never load Arrow

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise StorageError(f"{path} is not a readable Parquet file: {exc}", path=str(path)) from exc


def write_verified_parquet(path: Path, write: Callable[[BinaryIO], int]) -> FileInfo:
    """Put a Parquet file at ``path`` only once its footer was read back and holds the rows written.

    ``write`` writes the file into the handle it is given and returns how many rows it wrote.
    Until the check passes the file is a hidden temp file: no reader ever sees it, and a previous
    ``path`` stays as it was. StorageError if the check fails.
    """
    written: dict[str, Any] = {}

    def check(tmp: Path) -> None:
        written["info"] = verify_parquet(tmp, written["rows"])

    with atomic_output(path, check=check) as handle:
        written["rows"] = write(handle)
    return dataclasses.replace(written["info"], path=Path(path))


def verify_parquet(path: Path, expected_rows: int | None = None) -> FileInfo:
    """Re-read the footer of ``path``; its rows, size and sha256. StorageError if it is bad.

    A footer that cannot be read, or a row count other than ``expected_rows``, is an error.
    """
    path = Path(path)
    rows = parquet_rows(path)
    if expected_rows is not None and rows != expected_rows:
        raise StorageError(f"{path} holds {rows} rows where {expected_rows} were written", path=str(path))
    return FileInfo(path=path, rows=rows, bytes=path.stat().st_size, sha256=sha256_file(path))


# ---------------------------------------------------------------------------------------------
# stale temp files, bad files


def move_aside(path: Path, *, hidden: bool) -> Path:
    """Rename ``path`` to ``<name>.corrupt-<UTC time>`` next to it, never over an earlier copy; the new path.

    ``hidden`` makes it ``.<name>.corrupt-<UTC time>``, which dataset readers skip.
    """
    path = Path(path)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    name = f"{'.' if hidden else ''}{path.name}{CORRUPT_MARKER}{stamp}"
    target, copies = path.with_name(name), 0
    while target.exists():  # a second copy within the same microsecond gets a counter
        copies += 1
        target = path.with_name(f"{name}-{copies}")
    os.rename(path, target)
    return target


def temp_file_pid(name: str) -> int | None:
    """The pid in a temp-file name made by ``temp_prefix``; None for any other name."""
    match = TEMP_NAME.match(name)
    return int(match.group("pid")) if match else None


def sweep_temp_files(root: Path) -> list[Path]:
    """Remove temp files under ``root`` left by processes no longer alive on this host.

    Temp files of live processes (a write in progress, possibly another run's) are kept.
    Returns the removed paths.
    """
    removed = []
    for directory, _subdirs, names in os.walk(root):
        for name in names:
            pid = temp_file_pid(name)
            if pid is None or procs.pid_alive(pid):
                continue
            path = Path(directory) / name
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
                log.info("removed stale temp file %s (pid %d is gone)", path, pid)
    return removed


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
