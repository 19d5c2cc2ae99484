"""What every place an archive's data can live offers: its layout, reading, and writing only complete files.

A location is a ``PurePath``: a ``Path`` on local disk, a ``PurePosixPath`` (``bucket/prefix/...``)
inside an object store. Callers join locations with ``/`` and read ``.name``; every look at the
files themselves goes through the archive, so no caller branches on where the archive lives.
"""

from __future__ import annotations

import abc
from datetime import date
from pathlib import PurePath
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterator

from spxdl import storage

if TYPE_CHECKING:  # a run with nothing to do never loads Parquet: each backend imports it where it reads
    import pyarrow as pa
    import pyarrow.parquet as pq

Location = PurePath


class Archive(abc.ABC):
    """The data files of one data dir (Parquet, and the ledger's published copies) wherever they live."""

    root: Location
    local: bool

    # -- layout (no I/O) ------------------------------------------------------------------------

    def at(self, relative: PurePath | str) -> Location:
        """The location of ``relative`` (a path inside the data dir, e.g. ``greeks-1m/_archive.json``)."""
        return self.root.joinpath(*PurePath(relative).parts)

    def task_dir(self, archive: str, root: str, trade_date: date) -> Location:
        """A task's partition directory: ``greeks-1m/root=SPXW/trade_date=2024-01-15``."""
        return self.at(storage.task_dir(PurePath(), archive, root, trade_date))

    def data_file(self, archive: str, root: str, trade_date: date, expiration: date) -> Location:
        """One expiration's Parquet file."""
        return self.task_dir(archive, root, trade_date) / storage.data_file_name(root, expiration)

    def day_file(self, archive: str, root: str, trade_date: date) -> Location:
        """The one Parquet file of a task without expirations (an index)."""
        return self.task_dir(archive, root, trade_date) / storage.day_file_name(root, trade_date)

    def data_files(self, archive: str, root: str, trade_date: date) -> dict[date, Location]:
        """The data files in a task's directory, by expiration (any other name is left out)."""
        directory = self.task_dir(archive, root, trade_date)
        found = {}
        for name in self.names(directory):
            expiration = storage.expiration_of(PurePath(name), root)
            if name.endswith(".parquet") and expiration is not None:
                found[expiration] = directory / name
        return found

    @abc.abstractmethod
    def show(self, location: Location) -> str:
        """``location`` as messages and reports show it (a URI without credentials for an object store)."""

    @abc.abstractmethod
    def location(self, shown: str) -> Location:
        """The location ``show`` turned into ``shown``."""

    @abc.abstractmethod
    def holds(self, directory: PurePath) -> bool:
        """Whether the local ``directory`` is this archive's own root (the ledger then needs no published copies)."""

    def __str__(self) -> str:
        return self.show(self.root)

    # -- reading --------------------------------------------------------------------------------

    @abc.abstractmethod
    def exists(self, location: Location) -> bool:
        """Whether a file stands at ``location``."""

    @abc.abstractmethod
    def names(self, directory: Location) -> list[str]:
        """The names in one directory, sorted (none if it does not exist)."""

    @abc.abstractmethod
    def iter_task_dirs(self) -> Iterator[tuple[str, str, date, Location]]:
        """Every task directory of every archive: (archive, root, trade_date, location), sorted."""

    @abc.abstractmethod
    def verify_parquet(self, location: Location, expected_rows: int | None = None) -> storage.FileInfo:
        """The file's rows (footer), size and sha256; StorageError if unreadable or not ``expected_rows``."""

    @abc.abstractmethod
    def parquet_metadata(self, location: Location) -> pq.FileMetaData:
        """The footer of a Parquet file."""

    @abc.abstractmethod
    def open_input(self, location: Location) -> pa.NativeFile:
        """A random-access reader of one file (its rows read back by ``verify --content``); close it (``with``)."""

    @abc.abstractmethod
    def read_bytes(self, location: Location) -> bytes | None:
        """A (small) file's bytes; None if there is none."""

    # -- writing: a file appears complete or not at all -------------------------------------------

    @abc.abstractmethod
    def prepare(self) -> None:
        """Make the archive ready to take files (create the directory; reach the store, find the bucket)."""

    def check(self) -> None:
        """Raise what writing would meet before any write (an object store that does not answer); creates nothing."""

    @abc.abstractmethod
    def write_verified_parquet(self, location: Location, write: Callable[[BinaryIO], int]) -> storage.FileInfo:
        """Put a Parquet file at ``location`` only once its footer read back with the rows ``write`` wrote."""

    @abc.abstractmethod
    def publish(self, location: Location, data: bytes) -> None:
        """Replace the file at ``location`` with ``data`` (the ledger's summaries), complete or not at all."""

    @abc.abstractmethod
    def move_aside(self, location: Location, *, hidden: bool) -> Location:
        """Rename a bad file to ``[.]<name>.corrupt-<UTC time>`` next to it; its new location."""

    @abc.abstractmethod
    def sweep_temp_files(self) -> list[Location]:
        """Remove temp files whose writer is gone; the removed locations."""
