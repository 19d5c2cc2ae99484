"""CSV pages -> Arrow record batches -> Parquet row groups, streaming, with checks counted per file.

Each page is a file-like body carrying its own CSV header line. The header must hold every pinned
wire column (extra columns are left out and reported; a missing one, or an answer that is not CSV
at all, is a SchemaMismatch that stops the run); then pyarrow's streaming CSV reader parses the
rest with the pinned wire types (never inferred). The reader's small batches (one per block) are
gathered into batches of about ``GROUP_ROWS`` rows, so that each step below is one call per
gathered batch rather than one per block; those are normalised to the output schema with
``pyarrow.compute`` only (no Python loop over rows), checked (``checks.py``), and collected into
row groups of an exact row count, so that at most one row group's worth of rows is held whatever
the size of the chain.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date
from typing import BinaryIO, Callable, Iterable, Iterator, Mapping
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from spxdl import __version__, checks
from spxdl.csvpages import PageBody, check_header, page_failure
from spxdl.instants import TradeDay, instants, wall_ms_of_day
from spxdl.datasets import Dataset, output_name
from spxdl.errors import ConfigError, ValidationFailed

log = logging.getLogger(__name__)

VALIDATION_MODES = ("flag", "drop", "fail")
# pyarrow's streaming CSV reader reads a few dozen blocks ahead of the parser. 512 KiB blocks keep
# a worker converting chains of 4x the usual strikes near 250 MB peak (1 MiB: about 280 MB;
# bench/worker_memory.py), at the price of a slower parse (bench/convert_rate.py).
BLOCK_SIZE = 1 << 19
NULL_VALUES = ["", "null", "NULL"]
NOT_STORED = ("root", "symbol")  # the root is a partition directory, not a column
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
# The reader's batches (one per block, a few thousand rows) are gathered up to this many rows before
# they are normalised and checked: each compute call then costs its Python overhead a tenth as often
# (bench/convert_rate.py); held for one gathered batch at a time, it adds a few MB per conversion.
GROUP_ROWS = 1 << 15
# Min/max statistics where readers filter and prune row groups: the contract and time columns.
# On the prices and greeks (every value in every row group) they would cost a writer about a
# twentieth of its time for nothing (bench/convert_rate.py).
STATISTICS_COLUMNS = ("expiration", "strike", "right", "timestamp", "ms_of_day")
# Arrow scalars made once: turning a Python number into one costs pyarrow a failed import each time.
STRIKE_UNITS = pa.scalar(1000.0)
CALL, PUT, C, P = (pa.scalar(text) for text in ("CALL", "PUT", "C", "P"))
RIGHT_WIRE_TYPE = pa.dictionary(pa.int32(), pa.string())  # v3 CALL/PUT: parsed once into a dictionary


@dataclass(frozen=True)
class ConvertSpec:
    """What one file holds and how to convert and check it."""

    dataset: Dataset
    api: str
    root: str
    expiration: date
    trade_date: date
    start_ms: int
    end_ms: int
    interval_ms: int | None
    validation: str = "flag"
    row_group_rows: int = 131_072
    compression: str = "zstd"
    compression_level: int | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    block_size: int = BLOCK_SIZE
    early_close_ms: int | None = None  # the session's early close (ms of day) when the trade date has one

    def __post_init__(self) -> None:
        if self.validation not in VALIDATION_MODES:
            raise ConfigError(
                f"unknown validation mode {self.validation!r}: use flag, drop or fail", key="validation"
            )
        if self.row_group_rows < 1:
            raise ConfigError("row_group_rows must be at least 1", key="row_group_rows")
        if self.dataset.columns(self.api) is None:
            raise ConfigError(f"dataset {self.dataset.name} has no {self.api} endpoint", key="api")

    def expected(self) -> checks.Expected:
        """The spec's values as Arrow scalars, for comparisons against whole columns."""
        return checks.Expected(
            expiration=pa.scalar(self.expiration, pa.date32()),
            trade_date=pa.scalar(self.trade_date, pa.date32()),
            start_ms=pa.scalar(self.start_ms, pa.int32()),
            end_ms=pa.scalar(self.end_ms, pa.int32()),
        )

    @property
    def expected_rows_per_contract(self) -> tuple[int, int] | None:
        """(fewest, most) rows a contract may have; None when the dataset has no interval.

        Both are the intervals of the window, ends included. On an early-close day a contract may
        stop at the early close or run to the window's end (a terminal may serve either).
        """
        if not self.dataset.uses_interval or not self.interval_ms:
            return None
        most = max(0, (self.end_ms - self.start_ms) // self.interval_ms + 1)
        if self.early_close_ms is None or self.early_close_ms >= self.end_ms:
            return most, most
        return max(0, (self.early_close_ms - self.start_ms) // self.interval_ms + 1), most


@dataclass
class ConvertResult:
    """What one conversion wrote and what its checks flagged (check name -> rows or contracts)."""

    rows: int
    row_groups: int
    pages: int
    dropped: int
    checks: dict[str, int]
    max_buffered_rows: int = 0  # the most rows held for a row group at once (bounded by row_group_rows)
    extra_columns: tuple[str, ...] = ()  # columns the terminal sent beyond the pinned ones (not stored)


def _yyyymmdd_to_date(values: pa.Array) -> pa.Array:
    """Integers YYYYMMDD -> date32; an impossible date becomes null.

    Parsed once per distinct value: a chain has one expiration and one date.
    """
    encoded = values.dictionary_encode()
    text = pc.cast(encoded.dictionary, pa.string())
    parsed = pc.strptime(text, format="%Y%m%d", unit="s", error_is_null=True)
    return pc.take(pc.cast(parsed, pa.date32()), encoded.indices)


def _short_right(right: pa.DictionaryArray) -> pa.Array:
    """v3 CALL/PUT (dictionary-encoded by the reader; gathering unifies the batches' dictionaries)
    -> C/P strings; other values are kept so that the right check flags them. Only the
    dictionary's few values are compared."""
    words = right.dictionary
    short = pc.if_else(pc.equal(words, CALL), C, pc.if_else(pc.equal(words, PUT), P, words))
    return pc.take(short, right.indices)


# ---------------------------------------------------------------------------------------------
# normalisation: wire batch -> output columns (+ "date" for the checks)

Normalizer = Callable[[dict[str, pa.Array], Dataset, TradeDay], dict[str, pa.Array]]


def _normalize_v2(columns: dict[str, pa.Array], dataset: Dataset, day: TradeDay) -> dict[str, pa.Array]:
    """v2 sends ms of day only: instants are the trade date's, both times alike."""
    columns["expiration"] = _yyyymmdd_to_date(columns["expiration"])
    columns["date"] = _yyyymmdd_to_date(columns["date"])
    columns["strike"] = pc.divide(pc.cast(columns["strike"], pa.float64()), STRIKE_UNITS)
    columns["timestamp"] = instants(columns["ms_of_day"], day.midnight_ms)
    if dataset.second_time:
        columns[dataset.second_time] = instants(columns["ms_of_day2"], day.midnight_ms)
    return columns


def _normalize_v3(columns: dict[str, pa.Array], dataset: Dataset, day: TradeDay) -> dict[str, pa.Array]:
    """v3 sends CALL/PUT and full wall-clock timestamps: each keeps its own date."""
    columns["right"] = _short_right(columns["right"])
    wall_clock = columns["ms_of_day"]
    columns["date"] = pc.cast(wall_clock, pa.date32())
    columns["ms_of_day"] = wall_ms_of_day(wall_clock)
    columns["timestamp"] = day.zoned(wall_clock, columns["ms_of_day"], columns["date"])
    if "ms_of_day2" in columns:
        second = columns["ms_of_day2"]
        columns["ms_of_day2"] = wall_ms_of_day(second)
        if dataset.second_time:
            columns[dataset.second_time] = day.zoned(second, columns["ms_of_day2"], pc.cast(second, pa.date32()))
    return columns


NORMALIZERS: Mapping[str, Normalizer] = {
    "v2": _normalize_v2,
    "v3": _normalize_v3,
}


# ---------------------------------------------------------------------------------------------
# conversion


class Converter:
    """Turns the pages of one expiration into checked output batches; counts what it saw."""

    def __init__(self, spec: ConvertSpec) -> None:
        self.spec = spec
        self.wire_columns: tuple[str, ...] = spec.dataset.columns(spec.api) or ()
        self.stored_columns = [name for name in self.wire_columns if name not in NOT_STORED]
        self.wire_types = spec.dataset.wire_types(spec.api)
        self.normalize = NORMALIZERS[spec.api]
        self.expected = spec.expected()
        self.day = TradeDay.of(spec.trade_date)
        self.rows = 0
        self.pages = 0
        self.dropped = 0
        self.checks: dict[str, int] = {}
        self.extra_columns: list[str] = []
        self.contracts = checks.ContractCounter()

    def batches(self, pages: Iterable[BinaryIO]) -> Iterator[pa.RecordBatch]:
        """Every page's rows as output-schema batches, in the terminal's order."""
        for page in pages:
            self.pages += 1
            gather = min(GROUP_ROWS, self.spec.row_group_rows // 2)  # a row group's worth stays the bound
            for wire_batch in gathered(self._page_batches(page, self.pages), gather):
                batch = self._checked(self._to_output(wire_batch))
                if batch.num_rows:
                    self.rows += batch.num_rows
                    yield batch
        self._check_contracts()

    def result(self, row_groups: int) -> ConvertResult:
        """The counts so far, as reported for the file."""
        return ConvertResult(
            self.rows, row_groups, self.pages, self.dropped, dict(self.checks), extra_columns=tuple(self.extra_columns)
        )

    def _csv_options(self, header: list[str]) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions, pacsv.ConvertOptions]:
        # One thread: the reader's own threads cost about a tenth more CPU and gain nothing here (a
        # worker already converts several chains at once; bench/convert_rate.py)
        read = pacsv.ReadOptions(column_names=header, block_size=self.spec.block_size, use_threads=False)
        parse = pacsv.ParseOptions(newlines_in_values=False)
        types = dict(self.wire_types)
        if self.spec.api == "v3":
            types["right"] = RIGHT_WIRE_TYPE
        convert = pacsv.ConvertOptions(
            column_types=types,
            include_columns=self.stored_columns,  # pinned order, whatever the header's
            null_values=NULL_VALUES,
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        )
        return read, parse, convert

    def _page_batches(self, page: BinaryIO, page_number: int) -> Iterator[pa.RecordBatch]:
        body = PageBody(page, self.spec.block_size)
        try:
            header, extra = check_header(body.header_line(), self.wire_columns, page_number)
            self._note_extra(extra)
            if body.at_end():
                return  # a header without rows
            yield from pacsv.open_csv(body, *self._csv_options(header))
        except Exception as exc:
            failure = page_failure(page, page_number, exc)
            if failure is exc:
                raise
            raise failure from exc

    def _note_extra(self, extra: list[str]) -> None:
        for name in extra:
            if name not in self.extra_columns:
                self.extra_columns.append(name)

    def _to_output(self, wire_batch: pa.RecordBatch) -> dict[str, pa.Array]:
        api = self.spec.api
        names = wire_batch.schema.names
        columns = {output_name(api, name): column for name, column in zip(names, wire_batch.columns)}
        columns = self.normalize(columns, self.spec.dataset, self.day)
        for name in self.spec.dataset.nullable:
            if name not in columns:
                columns[name] = pa.nulls(wire_batch.num_rows, self.spec.dataset.schema.field(name).type)
        return columns

    def _count(self, name: str, flagged: int) -> None:
        self.checks[name] = self.checks.get(name, 0) + flagged

    def _checked(self, columns: dict[str, pa.Array]) -> pa.RecordBatch:
        """Count every check on the batch and apply the validation mode; the output batch."""
        dataset = self.spec.dataset
        length = len(columns["ms_of_day"])
        batch = pa.RecordBatch.from_arrays([columns[name] for name in dataset.schema.names], schema=dataset.schema)
        masks = checks.row_checks(dataset, self.expected, columns, length)
        counts = {name: mask.true_count for name, mask in masks.items()}
        counts.update(checks.observations(dataset, columns))
        for name, count in counts.items():
            self._count(name, count)
        failing = {name: count for name, count in counts.items() if count and name not in checks.OBSERVATIONS}
        if failing and self.spec.validation == "fail":
            raise self._validation_failed(failing)
        if failing and self.spec.validation == "drop":
            flagged = checks.any_of([masks[name] for name in failing], length)
            self.dropped += flagged.true_count
            batch = batch.filter(pc.invert(flagged))
        if self.spec.expected_rows_per_contract is not None:
            self.contracts.add(batch)
        return batch

    def _check_contracts(self) -> None:
        expected = self.spec.expected_rows_per_contract
        if expected is None:
            return
        short, long = self.contracts.short_and_long(*expected)
        self._count("contracts_short", short)
        self._count("contracts_long", long)
        if (short or long) and self.spec.validation == "fail":
            raise self._validation_failed({"contracts_short": short, "contracts_long": long})

    def _validation_failed(self, counts: Mapping[str, int]) -> ValidationFailed:
        spec = self.spec
        listed = ", ".join(f"{name}={count}" for name, count in sorted(counts.items()) if count)
        return ValidationFailed(
            f"{spec.dataset.name} {spec.root} {spec.trade_date} exp {spec.expiration}: "
            f"checks failed ({listed})",
            counts={name: count for name, count in counts.items() if count},
        )


def iter_batches(pages: Iterable[BinaryIO], spec: ConvertSpec) -> Iterator[pa.RecordBatch]:
    """The pages' rows as checked batches of the dataset's output schema."""
    return Converter(spec).batches(pages)


def gathered(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """``batches`` concatenated, in order, into batches of at most ``rows`` rows (a longer one alone)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if pending and count + batch.num_rows > rows:
            yield concatenated(pending)
            pending, count = [], 0
        pending.append(batch)
        count += batch.num_rows
    if pending:
        yield concatenated(pending)


def concatenated(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    return batches[0] if len(batches) == 1 else pa.concat_batches(batches)


# ---------------------------------------------------------------------------------------------
# writing


class RowGroupBuffer:
    """Collects batches and hands out tables of exactly ``rows`` rows; never holds more than that."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self._batches: list[pa.RecordBatch] = []
        self.buffered_rows = 0
        self.max_buffered_rows = 0

    def add(self, batch: pa.RecordBatch) -> Iterator[pa.Table]:
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


def _without_host(value: str) -> str:
    """A URL's path and query only: files must not name the machine they came from."""
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc:
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return value


def _metadata_text(value: object) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return _without_host(str(value))


def file_metadata(spec: ConvertSpec) -> dict[str, str]:
    """The key-value metadata of a file: what it holds and where it came from, never a time of day."""
    metadata = {
        "spxdl_version": __version__,
        "dataset": spec.dataset.name,
        "schema_version": str(spec.dataset.schema_version),
        "api": spec.api,
        "root": spec.root,
        "trade_date": spec.trade_date.isoformat(),
        "expiration": spec.expiration.isoformat(),
        "endpoint": spec.dataset.path(spec.api) or "",
        "start_ms": str(spec.start_ms),
        "end_ms": str(spec.end_ms),
        "interval_ms": "" if spec.interval_ms is None else str(spec.interval_ms),
    }
    metadata.update({str(key): _metadata_text(value) for key, value in spec.metadata.items() if value is not None})
    return metadata


def writer_options(spec: ConvertSpec) -> dict[str, object]:
    """ParquetWriter options: compression, dictionaries and statistics where they pay."""
    names = spec.dataset.schema.names
    return {
        "compression": spec.compression,
        "compression_level": spec.compression_level,
        "use_dictionary": [name for name in DICTIONARY_COLUMNS if name in names],
        "write_statistics": [name for name in STATISTICS_COLUMNS if name in names],
    }


def write_parquet(pages: Iterable[BinaryIO], sink: BinaryIO, spec: ConvertSpec) -> ConvertResult:
    """Convert ``pages`` into one Parquet file on ``sink``; row groups of exactly ``row_group_rows``.

    The caller makes the write atomic (storage.atomic_output): on an exception ``sink`` holds garbage.
    """
    converter = Converter(spec)
    buffer = RowGroupBuffer(spec.row_group_rows)
    schema = spec.dataset.schema.with_metadata(file_metadata(spec))
    row_groups = 0
    with pq.ParquetWriter(sink, schema, **writer_options(spec)) as writer:
        for batch in converter.batches(pages):
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
