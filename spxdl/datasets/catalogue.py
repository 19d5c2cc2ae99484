"""The catalogue of datasets: what each is, its endpoints per API, its pinned schema, what serves it.

A ``Dataset`` names its endpoint on each API (``None`` where that API has none), its whole wire
header per API (built in ``wire``), and its pinned Arrow schema (built in ``schema``), new columns
only ever appended with a bumped ``schema_version``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from spxdl.datasets.schema import (
    EOD_GREEKS,
    FIRST_ORDER_GREEKS,
    OHLC_FIELDS,
    QUOTE_FIELDS,
    SECOND_ORDER_GREEKS,
    SchemaSpec,
    arrow_schema,
    arrow_type,
    greeks_fields,
    pinned_schema,
)
from spxdl.datasets.wire import (
    DIRECT_WIRE_TYPES,
    OHLC_WIRE,
    QUOTE_WIRE,
    V2_WIRE_TYPES,
    V3_WIRE_TYPES,
    check_api,
    direct_greeks,
    direct_header,
    greeks_wire,
    output_name,
    v2_header,
    v3_header,
)
from spxdl.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

INTERVALS: Mapping[str, int] = {
    "1s": 1_000,
    "5s": 5_000,
    "10s": 10_000,
    "15s": 15_000,
    "30s": 30_000,
    "1m": 60_000,
    "5m": 300_000,
    "10m": 600_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
}

# The index each option root is written on: what ``index_price`` downloads for a configured root.
INDEX_SYMBOLS: Mapping[str, str] = {"SPX": "SPX", "SPXW": "SPX", "VIX": "VIX", "VIXW": "VIX"}


@dataclass(frozen=True)
class Dataset:
    """One kind of data the terminal serves, and how spxdl stores it."""

    name: str
    v2_path: str | None
    v3_path: str | None
    v2_columns: tuple[str, ...] | None
    v3_columns: tuple[str, ...] | None
    pinned: SchemaSpec  # the output columns, (name, type name) in order: ``schema`` is their Arrow schema
    schema_version: int
    uses_interval: bool
    greeks_params: bool
    greek_columns: tuple[str, ...] = ()  # the greeks whose all-zero rows are counted
    nullable: tuple[str, ...] = ()  # output columns one API version does not send
    second_time: str | None = None  # the zoned column that ``ms_of_day2`` is the wall clock of
    v3_date_range: bool = False  # v3 asks for the day as start_date/end_date (no ``date`` parameter)
    min_v2_interval_ms: int = 0  # the vendor serves nothing finer over v2
    all_expirations: bool = False  # one request per trade date for every expiration (v3 ``*``, v2 ``exp=0``)
    is_index: bool = False  # an index's own rows: no option contract, one file per trade date
    direct_call: str | None = None  # the SDK's market-data method (``option_history_greeks_first_order``)
    direct_columns: tuple[str, ...] | None = None  # the columns of its Arrow answer spxdl pins

    def archive_name(self, interval: str) -> str:
        """The archive directory name: ``greeks-1m``; datasets without an interval use their name."""
        if not self.uses_interval:
            return self.name
        interval_ms(interval)
        return f"{self.name}-{interval}"

    def path(self, api: str) -> str | None:
        """The endpoint path of ``api`` ("v2" or "v3"; "direct": the SDK method); None when it has none."""
        return {"v2": self.v2_path, "v3": self.v3_path, "direct": self.direct_call}[check_api(api)]

    def columns(self, api: str) -> tuple[str, ...] | None:
        """The whole CSV header of ``api`` ("direct": the pinned Arrow columns); None when it has no endpoint."""
        return {"v2": self.v2_columns, "v3": self.v3_columns, "direct": self.direct_columns}[check_api(api)]

    @property
    def schema(self) -> pa.Schema:
        """The pinned Arrow schema of the output (made on first use: Arrow loads then)."""
        return arrow_schema(self.pinned)

    @property
    def column_names(self) -> tuple[str, ...]:
        """The output columns, in order (``schema.names``, without loading Arrow)."""
        return tuple(name for name, _ in self.pinned)

    def wire_types(self, api: str) -> dict[str, pa.DataType]:
        """The Arrow type of every wire column of ``api``, keyed by wire name (never inferred)."""
        columns = self.columns(api)
        if columns is None:
            raise ConfigError(f"dataset {self.name} has no {api} endpoint", key="api")
        special = {"v2": V2_WIRE_TYPES, "v3": V3_WIRE_TYPES, "direct": DIRECT_WIRE_TYPES}[api]
        output = dict(self.pinned)
        return {name: arrow_type(special.get(name) or output[output_name(api, name)]) for name in columns}

    @property
    def required(self) -> tuple[str, ...]:
        """Output columns that must hold a value in every row."""
        return tuple(name for name in self.column_names if name not in self.nullable)

    @property
    def contract_columns(self) -> tuple[str, ...]:
        """The option contract columns of the output (none for an index)."""
        return tuple(name for name in ("expiration", "strike", "right") if name in self.column_names)

    def roots_for(self, roots: tuple[str, ...]) -> tuple[str, ...]:
        """``roots`` for an option dataset; for an index the index each is written on (SPXW, SPX: SPX)."""
        if not self.is_index:
            return roots
        symbols = tuple(dict.fromkeys(INDEX_SYMBOLS[root] for root in roots if root in INDEX_SYMBOLS))
        if not symbols:
            raise ConfigError(
                f"dataset {self.name} follows the index of your roots, and none of {', '.join(roots)} has one "
                f"spxdl knows: add SPXW or SPX (index SPX) or VIX to the roots",
                key="roots",
            )
        return symbols

    def dte_window(self, min_dte: int, max_dte: int) -> tuple[int, int]:
        """The DTE window a task of this dataset covers: the configured one; [0, 0] for an index (no expirations)."""
        return (0, 0) if self.is_index else (min_dte, max_dte)

    def apis(self) -> tuple[str, ...]:
        """The terminal API versions that serve this dataset (the direct source aside)."""
        return tuple(api for api in ("v2", "v3") if self.path(api) is not None)

    def check_served(self, api: str, interval: str) -> None:
        """ConfigError (one line naming what works) when ``api`` cannot serve this dataset at ``interval``."""
        if api == "direct" and self.direct_call is None:
            raise ConfigError(f"dataset {self.name} is not served by the direct source: use [terminal] source = "
                              f"terminal, or leave {self.name} out", key="datasets")
        if self.path(api) is None:
            others = " or ".join(self.apis())
            raise ConfigError(
                f"dataset {self.name} is served only by API {others}, and the terminal speaks {api}: "
                f"use a terminal with API {others} (--api {self.apis()[0]}), or leave {self.name} out",
                key="datasets",
            )
        if api == "v2" and self.uses_interval and interval_ms(interval) < self.min_v2_interval_ms:
            raise ConfigError(
                f"the vendor's v2 API does not serve {self.name} at intervals under 1m (asked: {interval}): "
                "use --interval 1m or coarser, or a v3 terminal",
                key="interval",
            )


def greeks_dataset(name: str, order: str, greeks: tuple[str, ...]) -> Dataset:
    """A 1-minute greeks dataset (``order``: ``first_order`` or ``second_order``): the two differ only
    in their greeks. Schema version 2 appended the zoned ``underlying_timestamp``."""
    return Dataset(
        name=name,
        v2_path=f"/v2/bulk_hist/option/{name}",
        v3_path=f"/v3/option/history/greeks/{order}",
        v2_columns=v2_header(greeks_wire(greeks, "ms_of_day2")),
        v3_columns=v3_header("timestamp", greeks_wire(greeks, "underlying_timestamp")),
        pinned=pinned_schema(greeks_fields(greeks), ("underlying_timestamp",)),
        schema_version=2,
        uses_interval=True,
        greeks_params=True,
        greek_columns=greeks,
        second_time="underlying_timestamp",
        direct_call=f"option_history_greeks_{order}",
        direct_columns=direct_header("ms_of_day", direct_greeks(greeks)),
    )


# Schema version 2 (greeks, greeks_second_order, eod) appended the zoned second time column.
GREEKS = greeks_dataset("greeks", "first_order", FIRST_ORDER_GREEKS)
GREEKS_SECOND_ORDER = greeks_dataset("greeks_second_order", "second_order", SECOND_ORDER_GREEKS)

QUOTE = Dataset(
    name="quote",
    v2_path="/v2/bulk_hist/option/quote",
    v3_path="/v3/option/history/quote",
    v2_columns=v2_header(QUOTE_WIRE),
    v3_columns=v3_header("timestamp", QUOTE_WIRE),
    pinned=pinned_schema(QUOTE_FIELDS),
    schema_version=1,
    uses_interval=True,
    greeks_params=False,
    min_v2_interval_ms=60_000,  # docs/wire.md §1.3: "ivl < 60000 unsupported"
    direct_call="option_history_quote",
    direct_columns=direct_header("ms_of_day", QUOTE_WIRE),
)

# v3 adds vwap; v2 has none, so the column is kept and null in files written from v2.
OHLC = Dataset(
    name="ohlc",
    v2_path="/v2/bulk_hist/option/ohlc",
    v3_path="/v3/option/history/ohlc",
    v2_columns=v2_header(OHLC_WIRE),
    v3_columns=v3_header("timestamp", (*OHLC_WIRE, "vwap")),
    pinned=pinned_schema((*OHLC_FIELDS, ("vwap", "float64"))),
    schema_version=1,
    uses_interval=True,
    greeks_params=False,
    nullable=("vwap",),
    direct_call="option_history_ohlc",
    direct_columns=direct_header("ms_of_day", (*OHLC_WIRE, "vwap")),
)

OPEN_INTEREST = Dataset(
    name="open_interest",
    v2_path="/v2/bulk_hist/option/open_interest",
    v3_path="/v3/option/history/open_interest",
    v2_columns=v2_header(("open_interest",)),
    v3_columns=v3_header("timestamp", ("open_interest",)),
    pinned=pinned_schema((("open_interest", "int64"),)),
    schema_version=1,
    uses_interval=False,
    greeks_params=False,
    all_expirations=True,  # docs/wire.md: v2 exp=0 and v3 expiration=* serve every expiration of the day
    direct_call="option_history_open_interest",
    direct_columns=direct_header("ms_of_day", ("open_interest",)),
)

EOD = Dataset(
    name="eod",
    v2_path="/v2/bulk_hist/option/eod",
    v3_path="/v3/option/history/eod",
    v2_columns=v2_header(("ms_of_day2", *OHLC_WIRE, *QUOTE_WIRE)),
    v3_columns=v3_header("created", ("last_trade", *OHLC_WIRE, *QUOTE_WIRE)),
    pinned=pinned_schema((("ms_of_day2", "int32"), *OHLC_FIELDS, *QUOTE_FIELDS), ("last_trade",)),
    schema_version=2,
    uses_interval=False,
    greeks_params=False,
    second_time="last_trade",
    v3_date_range=True,  # the vendor's /v3/option/history/eod has no ``date`` parameter
    all_expirations=True,
    direct_call="option_history_eod",
    direct_columns=direct_header("created_ms_of_day", ("last_trade_ms_of_day", *OHLC_WIRE, *QUOTE_WIRE)),
)

# Every greek of the day's close for every expiration in one request; v3 only (Standard).
GREEKS_EOD = Dataset(
    name="greeks_eod",
    v2_path=None,
    v3_path="/v3/option/history/greeks/eod",
    v2_columns=None,
    v3_columns=v3_header("timestamp", (*OHLC_WIRE, *QUOTE_WIRE, *greeks_wire(EOD_GREEKS, "underlying_timestamp")[2:])),
    pinned=pinned_schema((*OHLC_FIELDS, *QUOTE_FIELDS, *greeks_fields(EOD_GREEKS)[2:]), ("underlying_timestamp",)),
    schema_version=1,
    uses_interval=False,
    greeks_params=True,
    greek_columns=tuple(name for name in EOD_GREEKS if name not in ("d1", "d2")),
    second_time="underlying_timestamp",
    v3_date_range=True,  # start_date and end_date are required; the path has no ``date``
    all_expirations=True,
    direct_call="option_history_greeks_eod",
    direct_columns=direct_header("ms_of_day", (*OHLC_WIRE, *QUOTE_WIRE, *direct_greeks(EOD_GREEKS)[2:])),
)

# The index itself (SPX, VIX) at the interval; v2 /hist/index/price lists ms_of_day, price, date.
INDEX_PRICE = Dataset(
    name="index_price",
    v2_path="/v2/hist/index/price",
    v3_path="/v3/index/history/price",
    v2_columns=("ms_of_day", "price", "date"),
    v3_columns=("timestamp", "price"),
    pinned=pinned_schema((("price", "float64"),), contract=False),
    schema_version=1,
    uses_interval=True,
    greeks_params=False,
    is_index=True,
    direct_call="index_history_price",
    direct_columns=direct_header("ms_of_day", ("price",), contract=False),
)

DATASETS: Mapping[str, Dataset] = {
    dataset.name: dataset
    for dataset in (GREEKS, GREEKS_SECOND_ORDER, QUOTE, OHLC, OPEN_INTEREST, EOD, GREEKS_EOD, INDEX_PRICE)
}
DEFAULT_DATASET = GREEKS.name


def get_dataset(name: str) -> Dataset:
    """The dataset called ``name``; ConfigError naming the known ones otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(DATASETS)
        raise ConfigError(f"unknown dataset {name!r}: choose one of {known}", key="dataset") from None


def interval_ms(name: str) -> int:
    """Milliseconds of the interval called ``name`` ("1m" -> 60000); ConfigError if unknown."""
    try:
        return INTERVALS[name]
    except KeyError:
        known = ", ".join(INTERVALS)
        raise ConfigError(f"unknown interval {name!r}: choose one of {known}", key="interval") from None
