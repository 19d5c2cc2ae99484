"""The simulator's own column lists, written from docs/wire.md (sections 2, 3.2, 6.3) and the vendor's
v3 OpenAPI columns (tests/data/v3-openapi-facts.json).

Kept apart from ``spxdl.datasets`` on purpose: when the client and the simulator disagree about
the wire, a test fails instead of both being wrong together.

Each dataset has canonical fields (the order of the row tuples ``rows.py`` produces, ending with
the trade date) and, per API, the wire columns. A wire column names either a canonical field or
one of the contract columns; ``V3_ALIASES`` maps v3 names onto canonical ones.
"""

from __future__ import annotations

from dataclasses import dataclass

V2_CONTRACT = ("root", "expiration", "strike", "right")
V3_CONTRACT = ("symbol", "expiration", "strike", "right")

# How a field is printed: prices 2 decimals, greeks 4 decimals, ints bare, times per API,
# text already rendered by the row generator (OHLC prints empty bars as 0.0).
PRICE, GREEK, INT, TIME, TEXT = "price", "greek", "int", "time", "text"

FIELD_KINDS: dict[str, str] = {
    "ms_of_day": TIME, "ms_of_day2": TIME,
    "bid": PRICE, "ask": PRICE, "underlying_price": PRICE, "vwap": PRICE,
    "open": TEXT, "high": TEXT, "low": TEXT, "close": TEXT,
    "delta": GREEK, "theta": GREEK, "vega": GREEK, "rho": GREEK, "epsilon": GREEK,
    "lambda": GREEK, "implied_vol": GREEK, "iv_error": GREEK,
    "gamma": GREEK, "vanna": GREEK, "charm": GREEK, "vomma": GREEK, "veta": GREEK,
    "bid_size": INT, "bid_exchange": INT, "bid_condition": INT,
    "ask_size": INT, "ask_exchange": INT, "ask_condition": INT,
    "volume": INT, "count": INT, "open_interest": INT,
    "vera": GREEK, "speed": GREEK, "zomma": GREEK, "color": GREEK, "ultima": GREEK, "d1": GREEK, "d2": GREEK,
    "dual_delta": GREEK, "dual_gamma": GREEK,
}


@dataclass(frozen=True)
class DatasetColumns:
    """Wire layout of one history endpoint in both API families."""

    name: str
    fields: tuple[str, ...]                 # canonical row fields; rows also carry the date last
    v2_path: str | None                      # None: v2 has no such endpoint
    v2_format: tuple[str, ...]               # v2 `header.format` (CSV adds V2_CONTRACT first)
    v3_path: str | None
    v3_columns: tuple[str, ...] | None       # whole v3 CSV header
    v3_json_keys: tuple[str, ...] | None     # key order of a v3 JSON data object
    v3_aliases: tuple[tuple[str, str], ...] = ()   # v3 name -> canonical field

    @property
    def v2_columns(self) -> tuple[str, ...]:
        """The whole v2 bulk CSV header."""
        return V2_CONTRACT + self.v2_format

    def canonical(self, wire_name: str) -> str:
        """The canonical field a v3 column name stands for."""
        return dict(self.v3_aliases).get(wire_name, wire_name)


_GREEKS_1 = ("delta", "theta", "vega", "rho", "epsilon", "lambda")
_GREEKS_2 = ("gamma", "vanna", "charm", "vomma", "veta")
_QUOTE = ("bid_size", "bid_exchange", "bid", "bid_condition",
          "ask_size", "ask_exchange", "ask", "ask_condition")
_TIME_ALIASES = (("timestamp", "ms_of_day"), ("underlying_timestamp", "ms_of_day2"))

GREEKS = DatasetColumns(
    name="greeks",
    fields=("ms_of_day", "bid", "ask") + _GREEKS_1 + ("implied_vol", "iv_error", "ms_of_day2",
                                                      "underlying_price"),
    v2_path="/v2/bulk_hist/option/greeks",
    v2_format=("ms_of_day", "bid", "ask") + _GREEKS_1
    + ("implied_vol", "iv_error", "ms_of_day2", "underlying_price", "date"),
    v3_path="/v3/option/history/greeks/first_order",
    v3_columns=V3_CONTRACT + ("timestamp", "bid", "ask") + _GREEKS_1
    + ("implied_vol", "iv_error", "underlying_timestamp", "underlying_price"),
    # Guess: no v3 greeks JSON was recorded; the CSV order is used.
    v3_json_keys=("timestamp", "bid", "ask") + _GREEKS_1
    + ("implied_vol", "iv_error", "underlying_timestamp", "underlying_price"),
    v3_aliases=_TIME_ALIASES,
)

GREEKS_SECOND_ORDER = DatasetColumns(
    name="greeks_second_order",
    fields=("ms_of_day", "bid", "ask") + _GREEKS_2 + ("implied_vol", "iv_error", "ms_of_day2",
                                                      "underlying_price"),
    v2_path="/v2/bulk_hist/option/greeks_second_order",
    v2_format=("ms_of_day", "bid", "ask") + _GREEKS_2
    + ("implied_vol", "iv_error", "ms_of_day2", "underlying_price", "date"),
    v3_path="/v3/option/history/greeks/second_order",
    v3_columns=V3_CONTRACT + ("timestamp", "bid", "ask") + _GREEKS_2
    + ("implied_vol", "iv_error", "underlying_timestamp", "underlying_price"),
    # Guess: no v3 greeks JSON was recorded; the CSV order is used.
    v3_json_keys=("timestamp", "bid", "ask") + _GREEKS_2
    + ("implied_vol", "iv_error", "underlying_timestamp", "underlying_price"),
    v3_aliases=_TIME_ALIASES,
)

QUOTE = DatasetColumns(
    name="quote",
    fields=("ms_of_day",) + _QUOTE,
    v2_path="/v2/bulk_hist/option/quote",
    v2_format=("ms_of_day",) + _QUOTE + ("date",),
    v3_path="/v3/option/history/quote",
    v3_columns=V3_CONTRACT + ("timestamp",) + _QUOTE,
    # Recorded order (v3-option-history-quote-AAPL.json).
    v3_json_keys=("ask_size", "bid_size", "ask_exchange", "ask_condition", "bid_exchange",
                  "ask", "bid", "bid_condition", "timestamp"),
    v3_aliases=_TIME_ALIASES,
)

OHLC = DatasetColumns(
    name="ohlc",
    fields=("ms_of_day", "open", "high", "low", "close", "volume", "count", "vwap"),
    v2_path="/v2/bulk_hist/option/ohlc",
    v2_format=("ms_of_day", "open", "high", "low", "close", "volume", "count", "date"),
    v3_path="/v3/option/history/ohlc",
    v3_columns=V3_CONTRACT + ("timestamp", "open", "high", "low", "close", "volume", "count",
                              "vwap"),
    # Recorded order (v3-option-history-ohlc-AAPL.json).
    v3_json_keys=("volume", "high", "low", "vwap", "count", "close", "open", "timestamp"),
    v3_aliases=_TIME_ALIASES,
)

OPEN_INTEREST = DatasetColumns(
    name="open_interest",
    fields=("ms_of_day", "open_interest"),
    v2_path="/v2/bulk_hist/option/open_interest",
    v2_format=("ms_of_day", "open_interest", "date"),
    v3_path="/v3/option/history/open_interest",
    v3_columns=V3_CONTRACT + ("timestamp", "open_interest"),
    # Guess: no v3 open-interest JSON was recorded; the CSV order is used.
    v3_json_keys=("timestamp", "open_interest"),
    v3_aliases=_TIME_ALIASES,
)

EOD = DatasetColumns(
    name="eod",
    fields=("ms_of_day", "ms_of_day2", "open", "high", "low", "close", "volume", "count") + _QUOTE,
    v2_path="/v2/bulk_hist/option/eod",
    v2_format=("ms_of_day", "ms_of_day2", "open", "high", "low", "close", "volume", "count")
    + _QUOTE + ("date",),
    v3_path="/v3/option/history/eod",
    v3_columns=V3_CONTRACT + ("created", "last_trade", "open", "high", "low", "close", "volume",
                              "count") + _QUOTE,
    # Recorded order (v3-option-history-eod-AAPL.json).
    v3_json_keys=("ask_size", "last_trade", "created", "ask_condition", "count", "volume", "high",
                  "low", "bid_size", "ask_exchange", "bid_exchange", "ask", "bid",
                  "bid_condition", "close", "open"),
    v3_aliases=(("created", "ms_of_day"), ("last_trade", "ms_of_day2")),
)

_EOD_GREEKS = _GREEKS_1 + _GREEKS_2 + ("vera", "speed", "zomma", "color", "ultima", "d1", "d2", "dual_delta",
                                      "dual_gamma")

# The vendor's OpenAPI columns of /v3/option/history/greeks/eod (v3 only).
GREEKS_EOD = DatasetColumns(
    name="greeks_eod",
    fields=("ms_of_day", "open", "high", "low", "close", "volume", "count") + _QUOTE + _EOD_GREEKS
    + ("implied_vol", "iv_error", "ms_of_day2", "underlying_price"),
    v2_path=None,
    v2_format=(),
    v3_path="/v3/option/history/greeks/eod",
    v3_columns=V3_CONTRACT + ("timestamp", "open", "high", "low", "close", "volume", "count") + _QUOTE
    + _EOD_GREEKS + ("implied_vol", "iv_error", "underlying_timestamp", "underlying_price"),
    # Guess: no greeks EOD JSON was recorded; the CSV order is used.
    v3_json_keys=("timestamp", "open", "high", "low", "close", "volume", "count") + _QUOTE + _EOD_GREEKS
    + ("implied_vol", "iv_error", "underlying_timestamp", "underlying_price"),
    v3_aliases=_TIME_ALIASES,
)

DATASETS: dict[str, DatasetColumns] = {
    d.name: d for d in (GREEKS, GREEKS_SECOND_ORDER, QUOTE, OHLC, OPEN_INTEREST, EOD, GREEKS_EOD)
}
BY_V2_PATH = {d.v2_path: d for d in DATASETS.values() if d.v2_path}
BY_V3_PATH = {d.v3_path: d for d in DATASETS.values() if d.v3_path}
INTERVAL_DATASETS = frozenset({"greeks", "greeks_second_order", "quote", "ohlc"})
# One row per contract and day; these answer every expiration at once (v3 expiration=*, v2 exp=0).
DAILY_DATASETS = frozenset({"open_interest", "eod", "greeks_eod"})

# The index endpoints (docs/wire.md §1.4 and the vendor's OpenAPI columns): no contract columns.
INDEX_V2_PATH, INDEX_V3_PATH = "/v2/hist/index/price", "/v3/index/history/price"
INDEX_V2_FORMAT = ("ms_of_day", "price", "date")
INDEX_V3_COLUMNS = ("timestamp", "price")
# The v3 calendar (the vendor's OpenAPI columns).
CALENDAR_YEAR_PATH, CALENDAR_DAY_PATH = "/v3/calendar/year_holidays", "/v3/calendar/on_date"
CALENDAR_YEAR_COLUMNS = ("date", "type", "open", "close")
CALENDAR_DAY_COLUMNS = ("type", "open", "close")
