"""The output columns every archive file is typed with, whatever API served it, and how a schema is built.

``root`` and the trade date are not columns: they are Hive partition directories
(``root=SPXW/trade_date=2024-01-15``) and each file's key-value metadata.

Time columns: v3 sends full New York wall-clock timestamps, whose date can differ from the trade
date (an ``underlying_timestamp`` of the previous evening). The archive keeps each as a zoned
instant (``timestamp``, and ``underlying_timestamp`` or ``last_trade``) next to its ms of day
(``ms_of_day``, ``ms_of_day2``), so nothing the wire carries is lost.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

NY_TZ = "America/New_York"

# Column types by name; the Arrow types are made from them on first use (``arrow_type``), so that
# naming a dataset, planning a run or finding nothing to do never loads Arrow (about 50 ms).
ZONED_TYPE = "zoned"  # a New York instant: timestamp[ms, America/New_York]
WALL_CLOCK_TYPE = "wall_clock"  # a naive New York wall-clock timestamp: timestamp[ms]

# A pinned schema as (column name, type name) pairs, in order (``pinned_schema``; ``arrow_schema``
# makes the Arrow schema of one).
SchemaSpec = tuple[tuple[str, str], ...]

CONTRACT_SPEC: SchemaSpec = (("expiration", "date32"), ("strike", "float64"), ("right", "string"))
TIME_SPEC: SchemaSpec = (("timestamp", ZONED_TYPE), ("ms_of_day", "int32"))
QUOTE_FIELDS: SchemaSpec = (
    ("bid_size", "int64"),
    ("bid_exchange", "int32"),
    ("bid", "float64"),
    ("bid_condition", "int32"),
    ("ask_size", "int64"),
    ("ask_exchange", "int32"),
    ("ask", "float64"),
    ("ask_condition", "int32"),
)
OHLC_FIELDS: SchemaSpec = (("open", "float64"), ("high", "float64"), ("low", "float64"), ("close", "float64"),
                           ("volume", "int64"), ("count", "int64"))
FIRST_ORDER_GREEKS = ("delta", "theta", "vega", "rho", "epsilon", "lambda")
SECOND_ORDER_GREEKS = ("gamma", "vanna", "charm", "vomma", "veta")
# The end-of-day greeks of /v3/option/history/greeks/eod, in the vendor's column order.
EOD_GREEKS = (*FIRST_ORDER_GREEKS, *SECOND_ORDER_GREEKS, "vera", "speed", "zomma", "color", "ultima", "d1", "d2",
              "dual_delta", "dual_gamma")


def arrow_type(name: str) -> pa.DataType:
    """The Arrow type called ``name``: a pyarrow factory's name (``float64``), ``zoned`` or ``wall_clock``."""
    import pyarrow as pa

    if name == ZONED_TYPE:
        return pa.timestamp("ms", tz=NY_TZ)
    if name == WALL_CLOCK_TYPE:
        return pa.timestamp("ms")
    return getattr(pa, name)()


def pinned_schema(fields: SchemaSpec, appended: tuple[str, ...] = (), *, contract: bool = True) -> SchemaSpec:
    """Contract columns (not for an index), the time columns, ``fields`` in wire order, then zoned ``appended`` columns.

    Columns added in a later schema version go at the end, so that older files read alongside.
    """
    return (*(CONTRACT_SPEC if contract else ()), *TIME_SPEC, *fields, *((name, ZONED_TYPE) for name in appended))


@lru_cache(maxsize=None)
def arrow_schema(spec: SchemaSpec) -> pa.Schema:
    """The Arrow schema of a pinned ``spec`` (made once per spec)."""
    import pyarrow as pa

    return pa.schema([pa.field(name, arrow_type(kind)) for name, kind in spec])


def greeks_fields(greeks: tuple[str, ...]) -> SchemaSpec:
    """The wire fields of a greeks endpoint after ``ms_of_day``, without ``date``."""
    return (
        ("bid", "float64"),
        ("ask", "float64"),
        *((name, "float64") for name in greeks),
        ("implied_vol", "float64"),
        ("iv_error", "float64"),
        ("ms_of_day2", "int32"),
        ("underlying_price", "float64"),
    )


# The Arrow objects these names held before types were named (Arrow loads when one is asked for).
_ARROW_TYPES = {"F64": "float64", "I32": "int32", "I64": "int64", "ZONED": ZONED_TYPE}
_ARROW_FIELDS = {"CONTRACT_FIELDS": CONTRACT_SPEC, "TIME_FIELDS": TIME_SPEC}
ARROW_NAMES = (*_ARROW_TYPES, *_ARROW_FIELDS)


def __getattr__(name: str) -> Any:
    if name in _ARROW_TYPES:
        return arrow_type(_ARROW_TYPES[name])
    if name in _ARROW_FIELDS:
        return tuple(arrow_schema(_ARROW_FIELDS[name]))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
