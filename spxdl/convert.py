"""CSV pages -> Arrow record batches -> Parquet row groups, streaming, with checks counted per file.

Each page is a file-like body carrying its own CSV header line. The header is checked against the
dataset's pinned wire columns, then pyarrow's streaming CSV reader parses the rest with the pinned
wire types (never inferred). Batches are normalised to the output schema with ``pyarrow.compute``
only (no Python loop over rows), checked, and collected into row groups of an exact row count, so
that at most one row group's worth of rows is held whatever the size of the chain.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import BinaryIO, Callable, Iterable, Iterator, Mapping
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from spxdl import __version__
from spxdl.datasets import NY_TZ, Dataset, output_name
from spxdl.errors import ConfigError, DataError, SchemaMismatch, SpxdlError, ValidationFailed

log = logging.getLogger(__name__)

VALIDATION_MODES = ("flag", "drop", "fail")
DAY_MS = 86_400_000
# pyarrow's streaming CSV reader reads a few dozen blocks ahead of the parser. 512 KiB blocks keep
# a worker converting chains of 4x the usual strikes near 250 MB peak (1 MiB: about 280 MB;
# bench/worker_memory.py), at the price of a slower parse (bench/convert_rate.py).
BLOCK_SIZE = 1 << 19
MAX_HEADER_BYTES = 1 << 16
NULL_VALUES = ["", "null", "NULL"]
EPOCH = date(1970, 1, 1)
SESSION_NOON = time(12)
TIMESTAMP_TYPE = pa.timestamp("ms", tz=NY_TZ)
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
CONTRACT_KEYS = ["expiration", "strike", "right"]
# Arrow scalars made once: turning a Python number into one costs pyarrow a failed import each time.
ZERO = pa.scalar(0.0)
MAX_IV = pa.scalar(10.0)
STRIKE_UNITS = pa.scalar(1000.0)
CALL, PUT, C, P = (pa.scalar(text) for text in ("CALL", "PUT", "C", "P"))
RIGHTS = pa.array(["C", "P"])


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

    def __post_init__(self) -> None:
        if self.validation not in VALIDATION_MODES:
            raise ConfigError(
                f"unknown validation mode {self.validation!r}: use flag, drop or fail", key="validation"
            )
        if self.row_group_rows < 1:
            raise ConfigError("row_group_rows must be at least 1", key="row_group_rows")
        if self.dataset.columns(self.api) is None:
            raise ConfigError(f"dataset {self.dataset.name} has no {self.api} endpoint", key="api")

    @property
    def scalars(self) -> "SpecScalars":
        """The spec's values as Arrow scalars, for comparisons against whole columns."""
        return SpecScalars(
            expiration=pa.scalar(self.expiration, pa.date32()),
            trade_date=pa.scalar(self.trade_date, pa.date32()),
            start_ms=pa.scalar(self.start_ms, pa.int32()),
            end_ms=pa.scalar(self.end_ms, pa.int32()),
            midnight_ms=pa.scalar(ny_midnight_epoch_ms(self.trade_date), pa.int64()),
        )

    @property
    def expected_rows_per_contract(self) -> int | None:
        """Intervals in the window, both ends included; None when the dataset has no interval."""
        if not self.dataset.uses_interval or not self.interval_ms:
            return None
        return max(0, (self.end_ms - self.start_ms) // self.interval_ms + 1)


@dataclass(frozen=True)
class SpecScalars:
    """A spec's values as Arrow scalars (made once per file, not once per batch)."""

    expiration: pa.Scalar
    trade_date: pa.Scalar
    start_ms: pa.Scalar
    end_ms: pa.Scalar
    midnight_ms: pa.Scalar


@dataclass
class ConvertResult:
    """What one conversion wrote and what its checks flagged (check name -> rows or contracts)."""

    rows: int
    row_groups: int
    pages: int
    dropped: int
    checks: dict[str, int]
    max_buffered_rows: int = 0  # the most rows held for a row group at once (bounded by row_group_rows)


# ---------------------------------------------------------------------------------------------
# time


def session_utc_offset_ms(trade_date: date) -> int:
    """New York's UTC offset in ms during the session of ``trade_date`` (negative: behind UTC).

    Taken at noon: DST switches at 02:00, so every session hour of a change day has this offset.
    """
    offset = datetime.combine(trade_date, SESSION_NOON, ZoneInfo(NY_TZ)).utcoffset()
    assert offset is not None
    return int(offset.total_seconds() * 1000)


def ny_midnight_epoch_ms(trade_date: date) -> int:
    """Epoch ms that, plus a wall-clock ``ms_of_day``, gives the instant in New York on ``trade_date``."""
    return (trade_date - EPOCH).days * DAY_MS - session_utc_offset_ms(trade_date)


def _instants(ms_of_day: pa.Array, midnight_ms: pa.Scalar) -> pa.Array:
    """timestamp[ms, tz=America/New_York] of wall-clock ``ms_of_day`` on the trade date."""
    return pc.add(pc.cast(ms_of_day, pa.int64()), midnight_ms).cast(TIMESTAMP_TYPE)


def _wall_ms_of_day(wall_clock: pa.Array) -> pa.Array:
    """Milliseconds since midnight of naive (New York wall-clock) timestamps."""
    return pc.cast(pc.cast(wall_clock, pa.time32("ms")), pa.int32())


def _yyyymmdd_to_date(values: pa.Array) -> pa.Array:
    """Integers YYYYMMDD -> date32; an impossible date becomes null.

    Parsed once per distinct value: a chain has one expiration and one date.
    """
    encoded = values.dictionary_encode()
    text = pc.cast(encoded.dictionary, pa.string())
    parsed = pc.strptime(text, format="%Y%m%d", unit="s", error_is_null=True)
    return pc.take(pc.cast(parsed, pa.date32()), encoded.indices)


def _short_right(right: pa.Array) -> pa.Array:
    """v3 CALL/PUT -> C/P; other values are kept so that the right check flags them."""
    return pc.if_else(pc.equal(right, CALL), C, pc.if_else(pc.equal(right, PUT), P, right))


# ---------------------------------------------------------------------------------------------
# normalisation: wire batch -> output columns (+ "date" for the checks)


def _normalize_v2(columns: dict[str, pa.Array]) -> dict[str, pa.Array]:
    columns["expiration"] = _yyyymmdd_to_date(columns["expiration"])
    columns["date"] = _yyyymmdd_to_date(columns["date"])
    columns["strike"] = pc.divide(pc.cast(columns["strike"], pa.float64()), STRIKE_UNITS)
    return columns


def _normalize_v3(columns: dict[str, pa.Array]) -> dict[str, pa.Array]:
    columns["right"] = _short_right(columns["right"])
    wall_clock = columns["ms_of_day"]
    columns["date"] = pc.cast(wall_clock, pa.date32())
    columns["ms_of_day"] = _wall_ms_of_day(wall_clock)
    if "ms_of_day2" in columns:
        columns["ms_of_day2"] = _wall_ms_of_day(columns["ms_of_day2"])
    return columns


NORMALIZERS: Mapping[str, Callable[[dict[str, pa.Array]], dict[str, pa.Array]]] = {
    "v2": _normalize_v2,
    "v3": _normalize_v3,
}


# ---------------------------------------------------------------------------------------------
# checks


def _any(masks: list[pa.Array], length: int) -> pa.Array:
    """Row-wise OR of boolean masks (all False when there are none)."""
    if not masks:
        return pc.fill_null(pa.nulls(length, pa.bool_()), False)
    return functools.reduce(pc.or_, masks)


def _flag(mask: pa.Array, null_means: bool = False) -> pa.Array:
    """``mask`` with its nulls (comparisons with a null value) read as ``null_means``."""
    return pc.fill_null(mask, null_means) if mask.null_count else mask


def row_checks(spec: ConvertSpec, values: SpecScalars, columns: Mapping[str, pa.Array],
               length: int) -> dict[str, pa.Array]:
    """Boolean masks of flagged rows, one per check that applies to the dataset."""
    names = spec.dataset.schema.names
    required = [columns[name] for name in spec.dataset.required if columns[name].null_count]
    masks = {
        "null_required": _any([pc.is_null(column) for column in required], length),
        "strike_nonpositive": _flag(pc.less_equal(columns["strike"], ZERO)),
        "right_invalid": pc.invert(pc.is_in(columns["right"], value_set=RIGHTS)),
        "expiration_mismatch": _flag(pc.not_equal(columns["expiration"], values.expiration), True),
        "date_mismatch": _flag(pc.not_equal(columns["date"], values.trade_date), True),
    }
    if "bid" in names and "ask" in names:
        bid, ask = columns["bid"], columns["ask"]
        masks["negative_quote"] = _flag(pc.or_(pc.less(bid, ZERO), pc.less(ask, ZERO)))
        masks["crossed_quote"] = _flag(pc.greater(bid, ask))
    if "implied_vol" in names:
        iv = columns["implied_vol"]
        masks["implied_vol_range"] = _flag(pc.or_(pc.less(iv, ZERO), pc.greater(iv, MAX_IV)))
    if spec.dataset.uses_interval:
        ms = columns["ms_of_day"]
        masks["outside_window"] = _flag(pc.or_(pc.less(ms, values.start_ms), pc.greater(ms, values.end_ms)))
    return masks


def zero_greeks(spec: ConvertSpec, columns: Mapping[str, pa.Array]) -> pa.Array | None:
    """Rows whose greeks are all zero (no quote yet); None for datasets without greeks."""
    greeks = spec.dataset.greek_columns
    if not greeks:
        return None
    return functools.reduce(pc.and_, [_flag(pc.equal(columns[name], ZERO)) for name in greeks])


class ContractCounter:
    """Rows per contract across a whole file.

    The key columns of about ``GROUP_ROWS`` rows are kept and then counted in one group-by (a
    group-by has a fixed cost too high to pay per small batch); the counts are summed at the end.
    """

    GROUP_ROWS = 1 << 18

    def __init__(self) -> None:
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._counts: list[pa.Table] = []

    def add(self, batch: pa.RecordBatch) -> None:
        """Count ``batch``'s rows per (expiration, strike, right)."""
        keys = batch.select(CONTRACT_KEYS)
        self._pending.append(keys)
        self._pending_rows += keys.num_rows
        if self._pending_rows >= self.GROUP_ROWS:
            self._count_pending()

    def _count_pending(self) -> None:
        if self._pending:
            table = pa.Table.from_batches(self._pending)
            self._counts.append(table.group_by(CONTRACT_KEYS).aggregate([([], "count_all")]))
        self._pending, self._pending_rows = [], 0

    def totals(self) -> pa.Table:
        """One row per contract with its total row count in ``count_all``."""
        self._count_pending()
        if not self._counts:
            return pa.table({"count_all": pa.array([], pa.int64())})
        if len(self._counts) > 1:
            merged = pa.concat_tables(self._counts).group_by(CONTRACT_KEYS).aggregate([("count_all", "sum")])
            self._counts = [pa.table({**{key: merged[key] for key in CONTRACT_KEYS},
                                      "count_all": merged["count_all_sum"]})]
        return self._counts[0]

    def short_and_long(self, expected: int) -> tuple[int, int]:
        """Contracts with fewer and with more rows than ``expected``."""
        counts = self.totals()["count_all"]
        wanted = pa.scalar(expected, pa.int64())
        return pc.sum(pc.less(counts, wanted)).as_py() or 0, pc.sum(pc.greater(counts, wanted)).as_py() or 0


# ---------------------------------------------------------------------------------------------
# reading pages


def _parse_header(line: bytes) -> list[str]:
    """A CSV header line as column names (quoted or bare, CRLF or LF)."""
    text = line.decode("utf-8-sig").rstrip("\r\n")
    if not text:
        return []
    return [name.strip() for name in next(csv.reader([text]))]


def check_header(header: list[str], expected: tuple[str, ...], page_number: int) -> None:
    """SchemaMismatch naming missing, unexpected or reordered columns when ``header`` differs."""
    if tuple(header) == expected:
        return
    missing = [name for name in expected if name not in header]
    extra = [name for name in header if name not in expected]
    differing = missing + extra or [a for a, b in zip(header, expected) if a != b]
    details = []
    if missing:
        details.append(f"missing {', '.join(missing)}")
    if extra:
        details.append(f"unexpected {', '.join(extra)}")
    if not missing and not extra:
        details.append(f"order differs at {', '.join(differing)}")
    raise SchemaMismatch(
        f"page {page_number}: the terminal's CSV header differs from the pinned columns "
        f"({'; '.join(details)})",
        columns=differing,
    )


class PageBody:
    """One page read in whole blocks: its header line first, then the rest for pyarrow.

    Reads go straight to the page's ``read``; the page's ``closed`` flag is never consulted (an
    HTTP body reports itself closed once read to its end, while its last bytes may still be
    held here). At most one block plus the header is held.
    """

    closed = False

    def __init__(self, page: BinaryIO, block_size: int) -> None:
        self._page = page
        self._block_size = block_size
        self._pending = b""
        self._eof = False

    def _read_page(self, size: int) -> bytes:
        if self._eof:
            return b""
        chunk = self._page.read(size) or b""
        self._eof = not chunk
        return chunk

    def read(self, size: int = -1) -> bytes:
        """``size`` bytes (everything left when negative); fewer only at the end of the page."""
        want = sys.maxsize if size is None or size < 0 else size
        parts = [self._pending[:want]]
        self._pending = self._pending[want:]
        have = len(parts[0])
        while have < want and not self._eof:
            chunk = self._read_page(min(want - have, self._block_size))
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)

    def header_line(self) -> bytes:
        """The first line of the page (at most MAX_HEADER_BYTES); what follows stays for ``read``."""
        while b"\n" not in self._pending and len(self._pending) < MAX_HEADER_BYTES and not self._eof:
            self._pending += self._read_page(self._block_size)
        line, newline, self._pending = self._pending.partition(b"\n")
        return line + newline

    def at_end(self) -> bool:
        """Whether nothing follows what was read so far."""
        if not self._pending:
            self._pending = self._read_page(self._block_size)
        return not self._pending

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def _page_failure(page: BinaryIO, page_number: int, exc: Exception) -> BaseException:
    """The error to raise when reading a page failed: the page's own error first (pyarrow wraps it)."""
    original = getattr(page, "error", None)
    if original is not None:
        return original
    if isinstance(exc, SpxdlError):
        return exc
    if isinstance(exc, pa.ArrowInvalid):
        return DataError(f"page {page_number}: the CSV body cannot be read with the pinned types: {exc}")
    return exc


# ---------------------------------------------------------------------------------------------
# conversion


class Converter:
    """Turns the pages of one expiration into checked output batches; counts what it saw."""

    def __init__(self, spec: ConvertSpec) -> None:
        self.spec = spec
        self.wire_columns: tuple[str, ...] = spec.dataset.columns(spec.api) or ()
        self.wire_types = spec.dataset.wire_types(spec.api)
        self.normalize = NORMALIZERS[spec.api]
        self.values = spec.scalars
        self.rows = 0
        self.pages = 0
        self.dropped = 0
        self.checks: dict[str, int] = {}
        self.contracts = ContractCounter()

    def batches(self, pages: Iterable[BinaryIO]) -> Iterator[pa.RecordBatch]:
        """Every page's rows as output-schema batches, in the terminal's order."""
        for page in pages:
            self.pages += 1
            for wire_batch in self._page_batches(page, self.pages):
                batch = self._checked(self._to_output(wire_batch))
                if batch.num_rows:
                    self.rows += batch.num_rows
                    yield batch
        self._check_contracts()

    def result(self, row_groups: int) -> ConvertResult:
        """The counts so far, as reported for the file."""
        return ConvertResult(self.rows, row_groups, self.pages, self.dropped, dict(self.checks))

    def _csv_options(self) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions, pacsv.ConvertOptions]:
        read = pacsv.ReadOptions(column_names=list(self.wire_columns), block_size=self.spec.block_size)
        parse = pacsv.ParseOptions(newlines_in_values=False)
        convert = pacsv.ConvertOptions(
            column_types=self.wire_types,
            include_columns=[name for name in self.wire_columns if name not in NOT_STORED],
            null_values=NULL_VALUES,
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        )
        return read, parse, convert

    def _page_batches(self, page: BinaryIO, page_number: int) -> Iterator[pa.RecordBatch]:
        body = PageBody(page, self.spec.block_size)
        try:
            check_header(_parse_header(body.header_line()), self.wire_columns, page_number)
            if body.at_end():
                return  # a header without rows
            reader = pacsv.open_csv(body, *self._csv_options())
            for batch in reader:
                yield batch
        except Exception as exc:
            failure = _page_failure(page, page_number, exc)
            if failure is exc:
                raise
            raise failure from exc

    def _to_output(self, wire_batch: pa.RecordBatch) -> dict[str, pa.Array]:
        api = self.spec.api
        names = wire_batch.schema.names
        columns = {output_name(api, name): column for name, column in zip(names, wire_batch.columns)}
        columns = self.normalize(columns)
        columns["timestamp"] = _instants(columns["ms_of_day"], self.values.midnight_ms)
        for name in self.spec.dataset.nullable:
            if name not in columns:
                columns[name] = pa.nulls(wire_batch.num_rows, self.spec.dataset.schema.field(name).type)
        return columns

    def _count(self, name: str, flagged: int) -> None:
        self.checks[name] = self.checks.get(name, 0) + flagged

    def _checked(self, columns: dict[str, pa.Array]) -> pa.RecordBatch:
        """Count every check on the batch and apply the validation mode; the output batch."""
        schema = self.spec.dataset.schema
        length = len(columns["ms_of_day"])
        batch = pa.RecordBatch.from_arrays([columns[name] for name in schema.names], schema=schema)
        masks = row_checks(self.spec, self.values, columns, length)
        counts = {name: mask.true_count for name, mask in masks.items()}
        for name, count in counts.items():
            self._count(name, count)
        zeros = zero_greeks(self.spec, columns)
        if zeros is not None:
            self._count("zero_greeks", zeros.true_count)
        failing = {name: count for name, count in counts.items() if count}
        if failing and self.spec.validation == "fail":
            raise self._validation_failed(failing)
        if failing and self.spec.validation == "drop":
            flagged = _any(list(masks.values()), length)
            self.dropped += flagged.true_count
            batch = batch.filter(pc.invert(flagged))
        if self.spec.expected_rows_per_contract is not None:
            self.contracts.add(batch)
        return batch

    def _check_contracts(self) -> None:
        expected = self.spec.expected_rows_per_contract
        if expected is None:
            return
        short, long = self.contracts.short_and_long(expected)
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
    """ParquetWriter options: compression, dictionaries where they pay, statistics."""
    names = spec.dataset.schema.names
    return {
        "compression": spec.compression,
        "compression_level": spec.compression_level,
        "use_dictionary": [name for name in DICTIONARY_COLUMNS if name in names],
        "write_statistics": True,
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
    result = converter.result(row_groups)
    result.max_buffered_rows = buffer.max_buffered_rows
    log.debug("converted %s %s %s exp %s: %s",
              spec.dataset.name, spec.root, spec.trade_date, spec.expiration, result)
    return result
