"""A stored file's rows checked again: the counts ``spxdl verify --content`` compares with the ledger's.

The file is read back batch by batch and handed to a ``Converter`` set up as its metadata says it
was written (API, root, trade date, expiration, window, interval; the early close from the
caller's calendar), in ``flag`` mode, so every check counts the stored rows exactly as the
converter counted the rows it received. What a stored file cannot tell is left out
(``Recount.not_rechecked``): v2 sends a row's date apart from its time, and only the trade date's
instant is stored, so ``date_mismatch`` of a v2 file cannot be counted again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spxdl.convert.reader import Converter
from spxdl.convert.spec import ConvertSpec
from spxdl.datasets import Dataset
from spxdl.errors import StorageError

BATCH_ROWS = 1 << 16
NOT_RECHECKED_V2 = ("date_mismatch",)


@dataclass(frozen=True)
class Recount:
    """What a stored file's rows come to, check by check, and the mode the file was written in (None: not named)."""

    counts: dict[str, int]
    validation: str | None
    not_rechecked: tuple[str, ...] = field(default_factory=tuple)


def file_metadata(source: Path | pa.NativeFile, shown: str | None = None) -> dict[str, str]:
    """The key-value metadata spxdl wrote into a data file (StorageError if it cannot be read)."""
    return _metadata_of(_open(source, shown or str(source)))


def _open(source: Path | pa.NativeFile, shown: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(source)
    except (OSError, ValueError) as exc:
        raise StorageError(f"{shown} is not a readable Parquet file: {exc}", path=shown) from exc


def _metadata_of(parquet: pq.ParquetFile) -> dict[str, str]:
    raw = parquet.metadata.metadata or {}
    return {key.decode(): value.decode() for key, value in raw.items()}


def spec_of(dataset: Dataset, metadata: dict[str, str], early_close_ms: int | None) -> ConvertSpec:
    """The conversion a file's metadata describes, in ``flag`` mode."""
    expiration = metadata.get("expiration")
    interval = metadata.get("interval_ms")
    return ConvertSpec(
        dataset=dataset,
        api=metadata["api"],
        root=metadata["root"],
        expiration=date.fromisoformat(expiration) if expiration else None,
        trade_date=date.fromisoformat(metadata["trade_date"]),
        start_ms=int(metadata["start_ms"]),
        end_ms=int(metadata["end_ms"]),
        interval_ms=int(interval) if interval else None,
        early_close_ms=early_close_ms,
    )


def recount(source: Path | pa.NativeFile, dataset: Dataset, early_close_ms: int | None = None, *,
            shown: str | None = None) -> Recount:
    """Every check counted again on the rows of a data file written by spxdl for ``dataset``: a local path, or
    a random-access file an archive opened (an object store's), named ``shown`` in errors."""
    shown = shown or str(source)
    parquet = _open(source, shown)
    metadata = _metadata_of(parquet)
    try:
        spec = spec_of(dataset, metadata, early_close_ms)
    except (KeyError, ValueError) as exc:
        raise StorageError(f"{shown}: its metadata does not say how it was written ({exc})", path=shown) from exc
    converter = Converter(spec)
    try:
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, use_threads=False):
            converter.check(_with_dates(batch))
    except (OSError, ValueError, KeyError) as exc:
        raise StorageError(f"{shown} cannot be read back: {exc}", path=shown) from exc
    converter.check_contracts()
    skipped = NOT_RECHECKED_V2 if spec.api == "v2" else ()
    counts = {name: count for name, count in converter.checks.items() if name not in skipped}
    return Recount(counts, metadata.get("validation"), skipped)


def _with_dates(batch: pa.RecordBatch) -> dict[str, pa.Array]:
    """A stored batch's columns plus each row's own New York date, as the converter's checks expect."""
    columns = dict(zip(batch.schema.names, batch.columns))
    columns["date"] = pc.cast(pc.local_timestamp(columns["timestamp"]), pa.date32())
    return columns
