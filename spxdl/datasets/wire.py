"""The wire columns of each API: their names, how they map to the output names, their wire types.

v2 names are the output names. v3 renames a few (``symbol`` for ``root``, ``timestamp`` for
``ms_of_day`` ...); ``V3_RENAMES`` maps them back. The v2 bulk CSV header is
``root,expiration,strike,right`` followed by the endpoint's ``format`` fields, the last of which
is ``date`` (docs/wire.md §2, §3.2); v3 CSV headers are the vendor's OpenAPI columns
(tests/data/v3-openapi-facts.json, checked by tests/test_vendor_contract.py).

The direct source (``[terminal] source = direct``) reads the same data through the thetadatadx-py
SDK, whose Arrow columns are its own (``implied_volatility``, ``underlying_ms_of_day``, ``date`` as
``YYYYMMDD`` integers, strikes in dollars, rights ``C``/``P``); its "API" is ``direct``, its call
the SDK method, and ``DIRECT_RENAMES`` maps its names back (docs/direct.md). The header builders
here spell each dataset's whole header per API.
"""

from __future__ import annotations

from typing import Mapping

from spxdl.datasets.schema import OHLC_FIELDS, QUOTE_FIELDS, WALL_CLOCK_TYPE
from spxdl.errors import ConfigError

V2_CONTRACT = ("root", "expiration", "strike", "right")
V3_CONTRACT = ("symbol", "expiration", "strike", "right")

# v3 wire name -> v2 (output) name; the v3 time columns are ISO wall-clock timestamps.
V3_RENAMES: Mapping[str, str] = {
    "symbol": "root",
    "timestamp": "ms_of_day",
    "underlying_timestamp": "ms_of_day2",
    "created": "ms_of_day",
    "last_trade": "ms_of_day2",
}

# The SDK's Arrow column name -> the output (v2) name.
DIRECT_RENAMES: Mapping[str, str] = {"implied_volatility": "implied_vol", "underlying_ms_of_day": "ms_of_day2",
                                     "created_ms_of_day": "ms_of_day", "last_trade_ms_of_day": "ms_of_day2"}
# Columns the SDK may add that spxdl reads when present but does not pin: the root (a partition
# directory) and the date of the underlying's quote (the trade date when absent).
DIRECT_OPTIONAL = ("symbol", "underlying_date")

# Columns of the v2 wire whose wire type differs from the output type (type names: schema.arrow_type).
V2_WIRE_TYPES: Mapping[str, str] = {
    "root": "string",
    "expiration": "int32",  # YYYYMMDD
    "strike": "int64",  # 1/10 cent
    "right": "string",  # C / P
    "ms_of_day": "int32",
    "ms_of_day2": "int32",
    "date": "int32",  # YYYYMMDD
}

# Columns of the v3 wire whose wire type differs from the output type (keyed by v3 name).
V3_WIRE_TYPES: Mapping[str, str] = {
    "symbol": "string",
    "expiration": "date32",  # YYYY-MM-DD
    "strike": "float64",  # dollars
    "right": "string",  # CALL / PUT
    "timestamp": WALL_CLOCK_TYPE,  # New York wall clock, no zone
    "underlying_timestamp": WALL_CLOCK_TYPE,
    "created": WALL_CLOCK_TYPE,
    "last_trade": WALL_CLOCK_TYPE,
}

# Columns of the SDK's Arrow tables whose type differs from the output type: dates are YYYYMMDD
# integers, times ms of day, strikes dollars, rights C / P.
DIRECT_WIRE_TYPES: Mapping[str, str] = {
    **dict.fromkeys(("expiration", "date", "underlying_date", "ms_of_day", "underlying_ms_of_day",
                     "created_ms_of_day", "last_trade_ms_of_day"), "int32"),
    "strike": "float64", "right": "string",
}
APIS = ("v2", "v3", "direct")
# The quote and OHLC fields go on the wire under their output names.
QUOTE_WIRE = tuple(name for name, _ in QUOTE_FIELDS)
OHLC_WIRE = tuple(name for name, _ in OHLC_FIELDS)


def output_name(api: str, wire_name: str) -> str:
    """The output (v2) name of a wire column."""
    renames = {"v3": V3_RENAMES, "direct": DIRECT_RENAMES}.get(api, {})
    return renames.get(wire_name, wire_name)


def check_api(api: str) -> str:
    """``api`` when it is one spxdl speaks; ConfigError otherwise."""
    if api not in APIS:
        raise ConfigError(f"unknown API version {api!r}: use v2 or v3", key="api")
    return api


def v2_header(fields: tuple[str, ...]) -> tuple[str, ...]:
    """The whole v2 bulk CSV header: contract, ``ms_of_day``, the endpoint's fields, ``date``."""
    return (*V2_CONTRACT, "ms_of_day", *fields, "date")


def v3_header(time_column: str, fields: tuple[str, ...]) -> tuple[str, ...]:
    """The whole v3 CSV header: contract, the time column, the endpoint's fields."""
    return (*V3_CONTRACT, time_column, *fields)


def greeks_wire(greeks: tuple[str, ...], underlying_time: str) -> tuple[str, ...]:
    """The wire fields of a greeks endpoint after its time column (v2 and v3 differ in ``underlying_time``)."""
    return ("bid", "ask", *greeks, "implied_vol", "iv_error", underlying_time, "underlying_price")


def direct_header(time_column: str, fields: tuple[str, ...], *, contract: bool = True) -> tuple[str, ...]:
    """The Arrow columns of an SDK answer spxdl pins: contract, time, the fields, the row's date."""
    return (*(("expiration", "strike", "right") if contract else ()), time_column, *fields, "date")


def direct_greeks(greeks: tuple[str, ...]) -> tuple[str, ...]:
    """The SDK's Arrow columns of a greeks call after its time column."""
    return ("bid", "ask", *greeks, "implied_volatility", "iv_error", "underlying_ms_of_day", "underlying_price")
