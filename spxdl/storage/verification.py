"""Files checked once written: a Parquet footer read back, its rows counted, the file's sha256.

``write_verified_parquet`` puts a Parquet file in place only once its footer holds the rows
written; ``verify_parquet`` checks a stored one (the ledger's rebuild, ``spxdl verify``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, BinaryIO, Callable

from spxdl.errors import StorageError
from spxdl.storage.writes import atomic_output

HASH_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class FileInfo:
    """A data file as verified on disk."""

    path: Path
    rows: int
    bytes: int
    sha256: str


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
