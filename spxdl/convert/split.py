"""One answer of every expiration of a day -> checked batches per expiration (the daily datasets).

``eod``, ``open_interest`` and ``greeks_eod`` are asked once per trade date for every expiration
(v3 ``expiration=*``, v2 ``exp=0``). The rows are read once, split by their expiration, and each
expiration is checked by a converter of its own, as if it had been asked alone: its file and its
ledger record look exactly like those of a per-expiration request. Expirations the caller does not
want (outside the DTE window) are left out, not flagged. A day's rows are few (one per contract),
so the parts are held in memory until they are written.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Callable, Iterable

import pyarrow as pa
import pyarrow.compute as pc

from spxdl.convert.reader import Converter, SourcePage
from spxdl.convert.spec import ConvertSpec

log = logging.getLogger(__name__)


@dataclass
class DayPart:
    """The checked rows of one expiration of a day, ready to be written (``writer.write_batches``)."""

    spec: ConvertSpec
    converter: Converter
    batches: list[pa.RecordBatch] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(batch.num_rows for batch in self.batches)


@dataclass
class DaySplit:
    """What a day's answer held: the parts wanted, and the rows left out."""

    parts: dict[date, DayPart]
    left_out: int = 0  # rows of expirations not wanted (outside the DTE window)
    unreadable: int = 0  # rows without a readable expiration (cannot go in any file)
    pages: int = 0


def split_by_expiration(
    pages: Iterable[SourcePage], spec: ConvertSpec, wanted: Callable[[date], bool]
) -> DaySplit:
    """Read ``pages`` (every expiration of ``spec.trade_date``) and check each wanted expiration's rows apart."""
    reader = Converter(spec)
    split = DaySplit({})
    for columns in reader.columns(pages):
        expirations = columns["expiration"]
        split.unreadable += expirations.null_count
        for expiration in pc.unique(expirations).to_pylist():
            if expiration is None:
                continue
            mask = pc.equal(expirations, pa.scalar(expiration, pa.date32()))
            if not wanted(expiration):
                split.left_out += mask.true_count
                continue
            part = split.parts.get(expiration)
            if part is None:
                part_spec = dataclasses.replace(spec, expiration=expiration)
                part = split.parts[expiration] = DayPart(part_spec, Converter(part_spec))
            batch = part.converter.check({name: pc.filter(column, mask) for name, column in columns.items()})
            if batch.num_rows:
                part.batches.append(batch)
    split.pages = reader.pages
    for part in split.parts.values():
        part.converter.pages = reader.pages
        part.converter.note_extra(reader.extra_columns)
        part.converter.check_contracts()
    if split.unreadable:
        log.warning("%s %s %s: %d row(s) without a readable expiration were left out",
                    spec.dataset.name, spec.root, spec.trade_date, split.unreadable)
    return split
