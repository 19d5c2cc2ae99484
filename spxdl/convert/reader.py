"""CSV pages (or the SDK's Arrow chunks) -> checked Arrow record batches of the dataset's output schema.

Each page is a file-like body carrying its own CSV header line. The header must hold every pinned
wire column (extra columns are left out and reported; a missing one, or an answer that is not CSV
at all, is a SchemaMismatch that stops the run); then pyarrow's streaming CSV reader parses the
rest with the pinned wire types (never inferred). The direct source hands over Arrow tables
instead (one per gRPC chunk): their columns are checked against the pinned ones the same way and
cast to the pinned types. The reader's small batches (one per block) are gathered into batches of
about ``GROUP_ROWS`` rows, so that each step below is one call per gathered batch rather than one
per block; those are normalised to the output schema (``normalize.py``) and checked
(``checks.py``) with ``pyarrow.compute`` only.
"""

from __future__ import annotations

from typing import BinaryIO, Callable, Iterable, Iterator, Mapping

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from spxdl import checks
from spxdl.convert.normalize import NORMALIZERS
from spxdl.convert.spec import ConvertResult, ConvertSpec
from spxdl.csvpages import PageBody, check_header, page_failure
from spxdl.datasets import DIRECT_OPTIONAL, output_name
from spxdl.errors import SchemaMismatch, ValidationFailed
from spxdl.sources import SourcePage
from spxdl.instants import TradeDay

NULL_VALUES = ["", "null", "NULL"]
NOT_STORED = ("root", "symbol")  # the root is a partition directory, not a column
# The reader's batches (one per block, a few thousand rows) are gathered up to this many rows before
# they are normalised and checked: each compute call then costs its Python overhead a tenth as often
# (bench/convert_rate.py); held for one gathered batch at a time, it adds a few MB per conversion.
GROUP_ROWS = 1 << 15
RIGHT_WIRE_TYPE = pa.dictionary(pa.int32(), pa.string())  # v3 CALL/PUT: parsed once into a dictionary


class Converter:
    """Turns the pages of one file into checked output batches; counts what it saw.

    ``columns`` reads and normalises (one dict of output-named arrays per wire batch), ``check``
    counts the checks of one such dict and applies the validation mode; ``batches`` does both.
    """

    def __init__(self, spec: ConvertSpec, on_rows: Callable[[int], None] | None = None) -> None:
        self.spec = spec
        self.on_rows = on_rows  # told the rows of each wire batch as it is parsed (progress)
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
        self.contracts = checks.ContractCounter(spec.dataset.contract_columns)

    def batches(self, pages: Iterable[SourcePage]) -> Iterator[pa.RecordBatch]:
        """Every page's rows as output-schema batches, in the terminal's order."""
        for columns in self.columns(pages):
            batch = self.check(columns)
            if batch.num_rows:
                yield batch
        self.check_contracts()

    def columns(self, pages: Iterable[SourcePage]) -> Iterator[dict[str, pa.Array]]:
        """Every wire batch of every page (or Arrow chunk), normalised to output names (plus ``date``)."""
        gather = min(GROUP_ROWS, self.spec.row_group_rows // 2)  # a row group's worth stays the bound
        for page in pages:
            self.pages += 1
            read = self._table_batches if isinstance(page, pa.Table) else self._page_batches
            for wire_batch in gathered(read(page, self.pages), gather):
                if self.on_rows is not None:
                    self.on_rows(wire_batch.num_rows)
                yield self._to_output(wire_batch)

    def result(self, row_groups: int) -> ConvertResult:
        """The counts so far, as reported for the file."""
        return ConvertResult(
            self.rows, row_groups, self.pages, self.dropped, dict(self.checks), extra_columns=tuple(self.extra_columns)
        )

    def note_extra(self, extra: Iterable[str]) -> None:
        """Remember columns the terminal sent beyond the pinned ones (reported, not stored)."""
        for name in extra:
            if name not in self.extra_columns:
                self.extra_columns.append(name)

    def _csv_options(self, header: list[str]) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions, pacsv.ConvertOptions]:
        # One thread: the reader's own threads cost about a tenth more CPU and gain nothing here (a
        # worker already converts several chains at once; bench/convert_rate.py)
        read = pacsv.ReadOptions(column_names=header, block_size=self.spec.block_size, use_threads=False)
        parse = pacsv.ParseOptions(newlines_in_values=False)
        types = dict(self.wire_types)
        if self.spec.api == "v3":  # a type for a column a page lacks (an index) is ignored
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
            self.note_extra(extra)
            if body.at_end():
                return  # a header without rows
            yield from pacsv.open_csv(body, *self._csv_options(header))
        except Exception as exc:
            failure = page_failure(page, page_number, exc)
            if failure is exc:
                raise
            raise failure from exc

    def _table_batches(self, table: pa.Table, chunk_number: int) -> Iterator[pa.RecordBatch]:
        """One Arrow chunk of the SDK: its pinned columns (and the optional ones it has), cast to the pinned types."""
        if table.num_rows == 0:
            return  # an empty chunk carries no columns at all
        names = table.schema.names
        missing = [name for name in self.wire_columns if name not in names]
        if missing:
            raise SchemaMismatch(
                f"chunk {chunk_number}: the SDK's answer is not the table spxdl expects (columns {','.join(names)}; "
                f"missing {', '.join(missing)}); expected columns {','.join(self.wire_columns)}",
                columns=missing,
            )
        self.note_extra(name for name in names if name not in self.wire_columns and name not in DIRECT_OPTIONAL)
        kept = self.stored_columns + [name for name in DIRECT_OPTIONAL if name in names and name not in NOT_STORED]
        types = {**self.wire_types, "underlying_date": pa.int32()}
        for batch in table.select(kept).to_batches():
            arrays = [column.cast(types[name]) for name, column in zip(kept, batch.columns)]
            yield pa.RecordBatch.from_arrays(arrays, names=kept)

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

    def check(self, columns: Mapping[str, pa.Array]) -> pa.RecordBatch:
        """Count every check on one batch's columns and apply the validation mode; the output batch."""
        dataset = self.spec.dataset
        length = len(columns["ms_of_day"])
        batch = pa.RecordBatch.from_arrays([columns[name] for name in dataset.schema.names], schema=dataset.schema)
        masks = checks.row_checks(dataset, self.expected, columns, length)
        failing = {name: mask.true_count for name, mask in masks.items() if name not in checks.OBSERVATIONS}
        for name, count in failing.items():
            self._count(name, count)
        failing = {name: count for name, count in failing.items() if count}
        if failing and self.spec.validation == "fail":
            raise self._validation_failed(failing)
        observed = {name: mask for name, mask in masks.items() if name in checks.OBSERVATIONS}
        if failing and self.spec.validation == "drop":
            kept = pc.invert(checks.any_of([masks[name] for name in failing], length))
            self.dropped += length - kept.true_count
            batch = batch.filter(kept)
            columns = dict(zip(batch.schema.names, batch.columns))
            observed = {name: pc.filter(mask, kept) for name, mask in observed.items()}
        # Observations count the rows stored (as the contract checks do), so verify --content finds them again.
        for name, mask in observed.items():
            self._count(name, mask.true_count)
        for name, count in checks.observations(dataset, columns).items():
            self._count(name, count)
        if self.spec.expected_rows_per_contract is not None:
            self.contracts.add(batch)
        self.rows += batch.num_rows
        return batch

    def check_contracts(self) -> None:
        """Count the contracts with too few or too many rows (interval datasets); at the end of a file."""
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
        expiration = "" if spec.expiration is None else f" exp {spec.expiration}"
        return ValidationFailed(
            f"{spec.dataset.name} {spec.root} {spec.trade_date}{expiration}: checks failed ({listed})",
            counts={name: count for name, count in counts.items() if count},
        )


def iter_batches(pages: Iterable[SourcePage], spec: ConvertSpec) -> Iterator[pa.RecordBatch]:
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
