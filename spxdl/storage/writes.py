"""How files get there: atomically, durably, never half-written; and what is left when a write dies.

A file appears whole or not at all: written into a hidden temp file next to it (named with the
writer's pid), flushed and fsynced, then renamed into place and its directory fsynced. A write
that finds no room is DiskFull. Appends (``metrics.csv``) go under an exclusive flock. Bad files
are moved aside under a ``.corrupt-`` name, never deleted; temp files of dead processes are swept.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import io
import json
import logging
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping, Sequence

from spxdl import procs
from spxdl.errors import DiskFull

log = logging.getLogger(__name__)

TEMP_MARKER = ".tmp-"
# ".<target name>.tmp-<pid>-<random>", as made by temp_prefix + tempfile.mkstemp
TEMP_NAME = re.compile(r"^\..+" + re.escape(TEMP_MARKER) + r"(?P<pid>\d+)-[^/]*$")
MOVE_ASIDE = "move it aside or use another data dir"
CORRUPT_MARKER = ".corrupt-"
# A write that fails with one of these finds no room: every later write would fail too.
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


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
