"""The row checks: what each counts, as Arrow masks over whole batches (never a Python loop per row).

Every check has a name a user can read in ``status``, the run summary, ``metrics.csv`` and each
expiration's record in ``_day.json``; ``CHECKS`` says in one sentence what each counts. Row
checks count rows; the two contract checks count contracts. ``[validation] mode`` decides what
happens to flagged rows: ``flag`` keeps them, ``drop`` leaves them out, ``fail`` fails the
expiration. Observations (``OBSERVATIONS``) are counted in every mode and never drop or fail
anything: they describe what the vendor sends, not a fault.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from spxdl.datasets import Dataset

if TYPE_CHECKING:
    import pyarrow as pa

CHECKS: Mapping[str, str] = {
    "null_required": "rows with an empty value in a column that must always hold one",
    "strike_nonpositive": "rows whose strike is zero or negative",
    "right_invalid": "rows whose right is neither C nor P (CALL/PUT on v3)",
    "expiration_mismatch": "rows of another expiration than the one asked for",
    "date_mismatch": "rows whose own date differs from the trade date asked for; an observation, kept "
    "with the wire's own date and time",
    "negative_quote": "rows with a negative bid or ask",
    "crossed_quote": "rows whose bid is above the ask",
    "implied_vol_range": "rows whose implied volatility is below 0 or above 10 (1000 %)",
    "outside_window": "rows whose time is outside the requested intraday window",
    "no_quote_yet": "rows with bid and ask both 0: the vendor's placeholder before a contract's first "
    "quote (greeks 0, while lambda and implied_vol may be set); an observation, never dropped",
    "greeks_all_zero": "rows whose greeks (lambda aside) are all 0; an observation, never dropped",
    "contracts_short": "contracts with fewer rows than the session's intervals (on an early-close day: "
    "fewer than up to the early close)",
    "contracts_long": "contracts with more rows than the window's intervals up to its end",
}
OBSERVATIONS = frozenset({"date_mismatch", "no_quote_yet", "greeks_all_zero"})

CONTRACT_KEYS = ["expiration", "strike", "right"]


@dataclass(frozen=True)
class Expected:
    """What the rows of one file should show, as Arrow scalars made once per file."""

    expiration: pa.Scalar | None  # None: no single expiration is asked (an index, a whole day)
    trade_date: pa.Scalar
    start_ms: pa.Scalar
    end_ms: pa.Scalar


@functools.cache
def _constants() -> tuple[pa.Scalar, pa.Scalar, pa.Array]:
    """0.0, the highest implied vol and the rights, made once (on first use: making an Arrow value
    loads Arrow's compute, which the command line, reading ``CHECKS``, needs not)."""
    import pyarrow as pa

    return pa.scalar(0.0), pa.scalar(10.0), pa.array(["C", "P"])


def any_of(masks: list[pa.Array], length: int) -> pa.Array:
    """Row-wise OR of boolean masks (all False when there are none)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not masks:
        return pc.fill_null(pa.nulls(length, pa.bool_()), False)
    return functools.reduce(pc.or_, masks)


def _flag(mask: pa.Array, null_means: bool = False) -> pa.Array:
    """``mask`` with its nulls (comparisons with a null value) read as ``null_means``."""
    import pyarrow.compute as pc

    return pc.fill_null(mask, null_means) if mask.null_count else mask


def row_checks(dataset: Dataset, expected: Expected, columns: Mapping[str, pa.Array], length: int) -> dict[str, pa.Array]:
    """Boolean masks of flagged rows, one per row check that applies to the dataset."""
    import pyarrow.compute as pc  # here: the command line reads CHECKS without loading Arrow's compute

    zero, max_iv, rights = _constants()
    names = dataset.schema.names
    required = [columns[name] for name in dataset.required if columns[name].null_count]
    masks = {"null_required": any_of([pc.is_null(column) for column in required], length)}
    if "strike" in names:
        masks["strike_nonpositive"] = _flag(pc.less_equal(columns["strike"], zero))
        masks["right_invalid"] = pc.invert(pc.is_in(columns["right"], value_set=rights))
    if expected.expiration is not None:
        masks["expiration_mismatch"] = _flag(pc.not_equal(columns["expiration"], expected.expiration), True)
    masks["date_mismatch"] = _flag(pc.not_equal(columns["date"], expected.trade_date), True)
    if "bid" in names and "ask" in names:
        bid, ask = columns["bid"], columns["ask"]
        masks["negative_quote"] = _flag(pc.or_(pc.less(bid, zero), pc.less(ask, zero)))
        masks["crossed_quote"] = _flag(pc.greater(bid, ask))
    if "implied_vol" in names:
        iv = columns["implied_vol"]
        masks["implied_vol_range"] = _flag(pc.or_(pc.less(iv, zero), pc.greater(iv, max_iv)))
    if dataset.uses_interval:
        ms = columns["ms_of_day"]
        masks["outside_window"] = _flag(pc.or_(pc.less(ms, expected.start_ms), pc.greater(ms, expected.end_ms)))
    return masks


def observations(dataset: Dataset, columns: Mapping[str, pa.Array]) -> dict[str, int]:
    """Counts of the observations that apply to the dataset (rows the vendor sends as they are)."""
    import pyarrow.compute as pc

    zero = _constants()[0]
    counts: dict[str, int] = {}
    names = dataset.schema.names
    if "bid" in names and "ask" in names and dataset.greek_columns:
        unquoted = pc.and_(_flag(pc.equal(columns["bid"], zero)), _flag(pc.equal(columns["ask"], zero)))
        counts["no_quote_yet"] = unquoted.true_count
    greeks = [name for name in dataset.greek_columns if name != "lambda"]
    if greeks:
        zeros = functools.reduce(pc.and_, [_flag(pc.equal(columns[name], zero)) for name in greeks])
        counts["greeks_all_zero"] = zeros.true_count
    return counts


class ContractCounter:
    """Rows per contract across a whole file.

    The key columns of about ``GROUP_ROWS`` rows are kept and then counted in one group-by (a
    group-by has a fixed cost too high to pay per small batch); the counts are summed at the end.
    Without key columns (an index) the whole file counts as one series.
    """

    GROUP_ROWS = 1 << 18

    def __init__(self, keys: tuple[str, ...] = tuple(CONTRACT_KEYS)) -> None:
        self.keys = list(keys)
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._counts: list[pa.Table] = []
        self._rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        """Count ``batch``'s rows per (expiration, strike, right)."""
        self._rows += batch.num_rows
        if not self.keys:
            return
        keys = batch.select(self.keys)
        self._pending.append(keys)
        self._pending_rows += keys.num_rows
        if self._pending_rows >= self.GROUP_ROWS:
            self._count_pending()

    def _count_pending(self) -> None:
        import pyarrow as pa

        if self._pending:
            table = pa.Table.from_batches(self._pending)
            self._counts.append(table.group_by(self.keys).aggregate([([], "count_all")]))
        self._pending, self._pending_rows = [], 0

    def totals(self) -> pa.Table:
        """One row per contract with its total row count in ``count_all``."""
        import pyarrow as pa

        if not self.keys:
            return pa.table({"count_all": pa.array([self._rows] if self._rows else [], pa.int64())})
        self._count_pending()
        if not self._counts:
            return pa.table({"count_all": pa.array([], pa.int64())})
        if len(self._counts) > 1:
            merged = pa.concat_tables(self._counts).group_by(self.keys).aggregate([("count_all", "sum")])
            self._counts = [pa.table({**{key: merged[key] for key in self.keys},
                                      "count_all": merged["count_all_sum"]})]
        return self._counts[0]

    def short_and_long(self, fewest: int, most: int | None = None) -> tuple[int, int]:
        """Contracts with fewer rows than ``fewest`` and with more than ``most`` (default: ``fewest``)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        counts = self.totals()["count_all"]
        low = pa.scalar(fewest, pa.int64())
        high = pa.scalar(fewest if most is None else most, pa.int64())
        return pc.sum(pc.less(counts, low)).as_py() or 0, pc.sum(pc.greater(counts, high)).as_py() or 0
