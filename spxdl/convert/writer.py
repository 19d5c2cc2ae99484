"""Checked batches -> one Parquet file: row groups of an exact size, metadata without wall-clock time."""

from __future__ import annotations

import json
import logging
from typing import BinaryIO, Callable, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from spxdl import __version__
from spxdl.convert.reader import Converter, SourcePage
from spxdl.convert.spec import ConvertResult, ConvertSpec
from spxdl.urls import without_host

log = logging.getLogger(__name__)

# Low-cardinality columns where a Parquet dictionary pays. Floats are left plain, and so are the
# time columns: zstd packs those as well as a dictionary does, and faster (docs/storage.md).
DICTIONARY_COLUMNS = (
    "expiration",
    "strike",
    "right",
    "bid_exchange",
    "bid_condition",
    "ask_exchange",
    "ask_condition",
)
# Min/max statistics where readers filter and prune row groups: the contract and time columns.
# On the prices and greeks (every value in every row group) they would cost a writer about a
# twentieth of its time for nothing (bench/convert_rate.py).
STATISTICS_COLUMNS = ("expiration", "strike", "right", "timestamp", "ms_of_day")


class RowGroupBuffer:
    """Collects batches and hands out tables of exactly ``rows`` rows; never holds more than that."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self._batches: list[pa.RecordBatch] = []
        self.buffered_rows = 0
        self.max_buffered_rows = 0

    def add(self, batch: pa.RecordBatch) -> Iterable[pa.Table]:
        """Buffer ``batch``, yielding each row group it completes (split across groups if needed)."""
        while batch.num_rows:
            take = min(batch.num_rows, self.rows - self.buffered_rows)
            self._batches.append(batch.slice(0, take))
            self.buffered_rows += take
            self.max_buffered_rows = max(self.max_buffered_rows, self.buffered_rows)
            batch = batch.slice(take)
            if self.buffered_rows == self.rows:
                yield self.flush()

    def flush(self) -> pa.Table | None:
        """Everything buffered, as one table; the buffer is empty afterwards."""
        table = pa.Table.from_batches(self._batches) if self._batches else None
        self._batches = []
        self.buffered_rows = 0
        return table


def _metadata_text(value: object) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return without_host(str(value))


def file_metadata(spec: ConvertSpec) -> dict[str, str]:
    """The key-value metadata of a file: what it holds and where it came from, never a time of day.

    An index file has no ``expiration``.
    """
    metadata = {
        "spxdl_version": __version__,
        "dataset": spec.dataset.name,
        "schema_version": str(spec.dataset.schema_version),
        "api": spec.api,
        "root": spec.root,
        "trade_date": spec.trade_date.isoformat(),
        "expiration": None if spec.expiration is None else spec.expiration.isoformat(),
        "endpoint": spec.dataset.path(spec.api) or "",
        "start_ms": str(spec.start_ms),
        "end_ms": str(spec.end_ms),
        "interval_ms": "" if spec.interval_ms is None else str(spec.interval_ms),
        "validation": spec.validation,
    }
    metadata.update({str(key): _metadata_text(value) for key, value in spec.metadata.items() if value is not None})
    return {key: value for key, value in metadata.items() if value is not None}


def writer_options(spec: ConvertSpec) -> dict[str, object]:
    """ParquetWriter options: compression, dictionaries and statistics where they pay."""
    names = spec.dataset.schema.names
    return {
        "compression": spec.compression,
        "compression_level": spec.compression_level,
        "use_dictionary": [name for name in DICTIONARY_COLUMNS if name in names],
        "write_statistics": [name for name in STATISTICS_COLUMNS if name in names],
    }


def write_batches(
    batches: Iterable[pa.RecordBatch], sink: BinaryIO, spec: ConvertSpec, converter: Converter
) -> ConvertResult:
    """Write checked ``batches`` (made by ``converter``) as one Parquet file on ``sink``.

    Row groups hold exactly ``row_group_rows`` rows (the last one fewer). The caller makes the
    write atomic (storage.atomic_output): on an exception ``sink`` holds garbage.
    """
    buffer = RowGroupBuffer(spec.row_group_rows)
    schema = spec.dataset.schema.with_metadata(file_metadata(spec))
    row_groups = 0
    with pq.ParquetWriter(sink, schema, **writer_options(spec)) as writer:
        for batch in batches:
            for table in buffer.add(batch):
                writer.write_table(table, row_group_size=spec.row_group_rows)
                row_groups += 1
        rest = buffer.flush()
        if rest is not None:
            writer.write_table(rest, row_group_size=spec.row_group_rows)
            row_groups += 1
        if converter.extra_columns:  # known only once the headers were read
            writer.add_key_value_metadata({"extra_columns": ",".join(converter.extra_columns)})
    result = converter.result(row_groups)
    result.max_buffered_rows = buffer.max_buffered_rows
    log.debug("converted %s %s %s exp %s: %s",
              spec.dataset.name, spec.root, spec.trade_date, spec.expiration, result)
    return result


def write_parquet(
    pages: Iterable[SourcePage], sink: BinaryIO, spec: ConvertSpec, on_rows: Callable[[int], None] | None = None
) -> ConvertResult:
    """Convert ``pages`` into one Parquet file on ``sink``; row groups of exactly ``row_group_rows``.
    ``on_rows`` is told the rows of each batch as it is parsed (progress).

    The caller makes the write atomic (storage.atomic_output): on an exception ``sink`` holds garbage.
    """
    converter = Converter(spec, on_rows)
    return write_batches(converter.batches(pages), sink, spec, converter)
