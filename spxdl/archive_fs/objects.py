"""An archive in an object store (``data_dir = s3://bucket/prefix``, or another store pyarrow.fs resolves).

A data file is written and verified in a local spool file first (the ledger dir's ``spool/``),
then uploaded through a hidden temp key and moved into place (``remote.upload``): readers only
ever see whole objects. Temp keys left by a killed writer are swept by age, since whether a pid
lives means nothing on another host.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from datetime import date, datetime, timezone
from pathlib import Path, PurePath, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterator

import pyarrow.fs as pafs

from spxdl import storage
from spxdl.archive_fs import remote
from spxdl.archive_fs.base import Archive, Location
from spxdl.errors import BucketMissing, StorageError
from spxdl.urls import redact, uri_scheme

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

log = logging.getLogger(__name__)

# A temp object older than this has no writer left: an upload moves its temp key into place
# within seconds of completing it (docs/storage.md).
TEMP_MAX_AGE_SECONDS = 3600.0


class ObjectArchive(Archive):
    """The data dir as a prefix of a bucket; locations are ``PurePosixPath('bucket/prefix/...')``."""

    local = False

    def __init__(self, uri: str, spool: Path) -> None:
        self.uri = uri
        self.scheme = uri_scheme(uri) or "s3"
        self.spool = Path(spool)

    @property
    def filesystem(self) -> pafs.FileSystem:
        """The store's filesystem, resolved on first use (once per process)."""
        return remote.resolve(self.uri)[0]

    @property
    def root(self) -> Location:  # type: ignore[override]
        """The data dir inside the store as pyarrow resolves it (``bucket/prefix``)."""
        return PurePosixPath(remote.resolve(self.uri)[1])

    def show(self, location: Location) -> str:
        return f"{self.scheme}://{PurePosixPath(location)}"

    def location(self, shown: str) -> Location:
        return PurePosixPath(shown.partition("://")[2] if "://" in shown else shown)

    def holds(self, directory: PurePath) -> bool:
        return False

    def __repr__(self) -> str:
        return f"ObjectArchive({redact(self.uri)!r})"

    # -- reading --------------------------------------------------------------------------------

    def _info(self, location: Location) -> pafs.FileInfo:
        with remote.store_errors(self.show(location), "looking at"):
            return self.filesystem.get_file_info(str(location))

    def exists(self, location: Location) -> bool:
        return self._info(location).type == pafs.FileType.File

    def names(self, directory: Location) -> list[str]:
        with remote.store_errors(self.show(directory), "listing"):
            found = self.filesystem.get_file_info(pafs.FileSelector(str(directory), allow_not_found=True))
        return sorted(info.base_name for info in found)

    def iter_task_dirs(self) -> Iterator[tuple[str, str, date, Location]]:
        with remote.store_errors(str(self), "listing"):
            files = remote.files_under(self.filesystem, str(self.root), recursive=True)
        found = set()
        for info in files:
            parts = PurePosixPath(info.path).relative_to(self.root).parts
            task = _task_of(parts)
            if task is not None:
                found.add(task)
        for archive, root, trade_date in sorted(found):
            yield archive, root, trade_date, self.task_dir(archive, root, trade_date)

    def verify_parquet(self, location: Location, expected_rows: int | None = None) -> storage.FileInfo:
        shown = self.show(location)
        info = self._info(location)
        if info.type != pafs.FileType.File:
            raise StorageError(f"{shown} is not there", path=shown)
        rows = remote.parquet_rows(self.filesystem, str(location), shown)
        if expected_rows is not None and rows != expected_rows:
            raise StorageError(f"{shown} holds {rows} rows where {expected_rows} were written", path=shown)
        with remote.store_errors(shown, "reading"):
            digest = remote.sha256_object(self.filesystem, str(location))
        return storage.FileInfo(path=Path(location), rows=rows, bytes=info.size, sha256=digest)

    def parquet_metadata(self, location: Location) -> pq.FileMetaData:
        import pyarrow.parquet as pq  # here, as in remote.parquet_rows

        with remote.store_errors(self.show(location), "reading"), self.filesystem.open_input_file(str(location)) as f:
            return pq.read_metadata(f)

    def open_input(self, location: Location) -> pa.NativeFile:
        with remote.store_errors(self.show(location), "reading"):
            return self.filesystem.open_input_file(str(location))

    def read_bytes(self, location: Location) -> bytes | None:
        if not self.exists(location):
            return None
        with remote.store_errors(self.show(location), "reading"), \
                self.filesystem.open_input_stream(str(location)) as handle:
            return handle.read()

    # -- writing --------------------------------------------------------------------------------

    def prepare(self) -> None:
        self.check()
        self.spool.mkdir(parents=True, exist_ok=True)

    def check(self) -> None:
        """Reach the store and find the bucket: BucketMissing, ObjectStoreDenied or ObjectStoreUnreachable if not."""
        bucket = self.root.parts[0]
        with remote.store_errors(str(self), "reaching the bucket"):
            kind = self.filesystem.get_file_info(bucket).type
        if kind == pafs.FileType.NotFound:
            raise BucketMissing(f"the bucket {bucket} of {self} does not exist; create it, or fix "
                                "[storage] data_dir", path=str(self))

    def write_verified_parquet(self, location: Location, write: Callable[[BinaryIO], int]) -> storage.FileInfo:
        """Write and verify in the spool, upload through a temp key, check the footer there, move into place."""
        shown = self.show(location)
        with storage.no_space_is_disk_full(self.spool / location.name):
            self.spool.mkdir(parents=True, exist_ok=True)
            fd, spooled = storage.make_temp(self.spool / location.name)
        try:
            with storage.no_space_is_disk_full(spooled), os.fdopen(fd, "wb") as handle:
                rows = write(handle)
            info = storage.verify_parquet(spooled, rows)

            def check(temp: str) -> None:
                remote.parquet_rows(self.filesystem, temp, shown)

            remote.upload(self.filesystem, str(location), remote.copy_from(spooled), info.bytes, shown=shown,
                          check=check)
        finally:
            with contextlib.suppress(OSError):
                spooled.unlink()
        return storage.FileInfo(path=Path(location), rows=info.rows, bytes=info.bytes, sha256=info.sha256)

    def publish(self, location: Location, data: bytes) -> None:
        remote.upload(self.filesystem, str(location), lambda stream: stream.write(data), len(data),
                      shown=self.show(location))

    def move_aside(self, location: Location, *, hidden: bool) -> Location:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        target = location.with_name(f"{'.' if hidden else ''}{location.name}{storage.CORRUPT_MARKER}{stamp}")
        with remote.store_errors(self.show(location), "moving aside"):
            self.filesystem.move(str(location), str(target))
        return target

    def sweep_temp_files(self, older_than: float = TEMP_MAX_AGE_SECONDS) -> list[Location]:
        """Remove temp objects older than ``older_than`` seconds (a live upload moves its own within seconds)."""
        cutoff = time.time() - older_than
        removed: list[Location] = []
        with remote.store_errors(str(self), "listing"):
            files = remote.files_under(self.filesystem, str(self.root), recursive=True)
        for info in files:
            if storage.temp_file_pid(info.base_name) is None or info.mtime is None or info.mtime.timestamp() > cutoff:
                continue
            location = PurePosixPath(info.path)
            with contextlib.suppress(FileNotFoundError), remote.store_errors(self.show(location), "removing"):
                self.filesystem.delete_file(info.path)
                removed.append(location)
                log.info("removed stale temp object %s (%s old)", self.show(location), _age(info.mtime))
        return removed


def _age(mtime: datetime) -> str:
    return f"{(datetime.now(timezone.utc) - mtime).total_seconds() / 3600:.1f} h"


def _task_of(parts: tuple[str, ...]) -> tuple[str, str, date] | None:
    """(archive, root, trade_date) of a data file's path inside the data dir, or None."""
    if len(parts) != 4 or any(part.startswith(("_", ".")) for part in parts[:3]):
        return None
    root, day = storage.PARTITION.match(parts[1]), storage.PARTITION.match(parts[2])
    if not (root and day and root.group("key") == "root" and day.group("key") == "trade_date"):
        return None
    try:
        return parts[0], root.group("value"), date.fromisoformat(day.group("value"))
    except ValueError:
        log.warning("skipping %s: not a trade_date=YYYY-MM-DD directory", "/".join(parts[:3]))
        return None
