"""An archive on local (or mounted) disk: every operation is ``storage``'s, exactly as before object stores."""

from __future__ import annotations

from datetime import date
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterator

from spxdl import storage
from spxdl.archive_fs.base import Archive, Location

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq


class LocalArchive(Archive):
    """The data dir as a directory: temp file, fsync, ``os.replace``, fsync of the directory."""

    local = True

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def show(self, location: Location) -> str:
        return str(location)

    def location(self, shown: str) -> Location:
        return Path(shown)

    def holds(self, directory: PurePath) -> bool:
        return Path(directory).absolute().resolve() == self.root.absolute().resolve()

    def exists(self, location: Location) -> bool:
        return Path(location).exists()

    def names(self, directory: Location) -> list[str]:
        directory = Path(directory)
        return sorted(child.name for child in directory.iterdir()) if directory.is_dir() else []

    def data_files(self, archive: str, root: str, trade_date: date) -> dict[date, Location]:
        return dict(storage.data_files(self.root, archive, root, trade_date))

    def iter_task_dirs(self) -> Iterator[tuple[str, str, date, Location]]:
        return storage.iter_task_dirs(self.root)

    def verify_parquet(self, location: Location, expected_rows: int | None = None) -> storage.FileInfo:
        return storage.verify_parquet(Path(location), expected_rows)

    def parquet_metadata(self, location: Location) -> pq.FileMetaData:
        import pyarrow.parquet as pq  # here: the ledger and a run with nothing to do never load Parquet

        return pq.read_metadata(Path(location))

    def open_input(self, location: Location) -> pa.NativeFile:
        import pyarrow as pa

        return pa.OSFile(str(location), "r")

    def read_bytes(self, location: Location) -> bytes | None:
        path = Path(location)
        return path.read_bytes() if path.is_file() else None

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def write_verified_parquet(self, location: Location, write: Callable[[BinaryIO], int]) -> storage.FileInfo:
        return storage.write_verified_parquet(Path(location), write)

    def publish(self, location: Location, data: bytes) -> None:
        storage.write_bytes_atomic(Path(location), data)

    def move_aside(self, location: Location, *, hidden: bool) -> Location:
        return storage.move_aside(Path(location), hidden=hidden)

    def sweep_temp_files(self) -> list[Location]:
        return list(storage.sweep_temp_files(self.root))
