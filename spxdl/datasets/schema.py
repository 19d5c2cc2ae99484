"""The output columns every archive file is typed with, whatever API served it, and how a schema is built.

``root`` and the trade date are not columns: they are Hive partition directories
(``root=SPXW/trade_date=2024-01-15``) and each file's key-value metadata.

Time columns: v3 sends full New York wall-clock timestamps, whose date can differ from the trade
date (an ``underlying_timestamp`` of the previous evening). The archive keeps each as a zoned
instant (``timestamp``, and ``underlying_timestamp`` or ``last_trade``) next to its ms of day
(``ms_of_day``, ``ms_of_day2``), so nothing the wire carries is lost.
"""

from __future__ import annotations

import pyarrow as pa

NY_TZ = "America/New_York"

F64 = pa.float64()
I32 = pa.int32()
I64 = pa.int64()

CONTRACT_FIELDS = (
    pa.field("expiration", pa.date32()),
    pa.field("strike", F64),
    pa.field("right", pa.string()),
)
TIME_FIELDS = (
    pa.field("timestamp", pa.timestamp("ms", tz=NY_TZ)),
    pa.field("ms_of_day", I32),
)
QUOTE_FIELDS = (
    ("bid_size", I64),
    ("bid_exchange", I32),
    ("bid", F64),
    ("bid_condition", I32),
    ("ask_size", I64),
    ("ask_exchange", I32),
    ("ask", F64),
    ("ask_condition", I32),
)
OHLC_FIELDS = (("open", F64), ("high", F64), ("low", F64), ("close", F64), ("volume", I64), ("count", I64))
FIRST_ORDER_GREEKS = ("delta", "theta", "vega", "rho", "epsilon", "lambda")
SECOND_ORDER_GREEKS = ("gamma", "vanna", "charm", "vomma", "veta")
# The end-of-day greeks of /v3/option/history/greeks/eod, in the vendor's column order.
EOD_GREEKS = (*FIRST_ORDER_GREEKS, *SECOND_ORDER_GREEKS, "vera", "speed", "zomma", "color", "ultima", "d1", "d2",
              "dual_delta", "dual_gamma")

ZONED = pa.timestamp("ms", tz=NY_TZ)


def pinned_schema(
    fields: tuple[tuple[str, pa.DataType], ...], appended: tuple[str, ...] = (), *, contract: bool = True
) -> pa.Schema:
    """Contract columns (not for an index), the time columns, ``fields`` in wire order, then zoned ``appended`` columns.

    Columns added in a later schema version go at the end, so that older files read alongside.
    """
    return pa.schema([
        *(CONTRACT_FIELDS if contract else ()),
        *TIME_FIELDS,
        *(pa.field(name, kind) for name, kind in fields),
        *(pa.field(name, ZONED) for name in appended),
    ])


def greeks_fields(greeks: tuple[str, ...]) -> tuple[tuple[str, pa.DataType], ...]:
    """The wire fields of a greeks endpoint after ``ms_of_day``, without ``date``."""
    return (
        ("bid", F64),
        ("ask", F64),
        *((name, F64) for name in greeks),
        ("implied_vol", F64),
        ("iv_error", F64),
        ("ms_of_day2", I32),
        ("underlying_price", F64),
    )
