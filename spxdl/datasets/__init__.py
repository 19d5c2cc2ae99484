"""What each dataset is: its endpoints, its wire columns per API version and its pinned Arrow schema.

The output schema is the same whatever API version served the data, so that every file of an
archive is typed alike. Laid out one responsibility per module, each importing only those above
it in this list:

- ``schema``: the output columns and their types, how a pinned schema is built;
- ``wire``: each API's wire names, their renames to the output names, their wire types, headers;
- ``catalogue``: ``Dataset``, every dataset spxdl knows (``DATASETS``), intervals, lookups.

The package imports nothing of spxdl but ``errors``, and Arrow only once a type or schema is asked for. Everything importable from
``spxdl.datasets`` before it became a package still is.
"""

from spxdl.datasets.schema import (
    ARROW_NAMES, EOD_GREEKS, FIRST_ORDER_GREEKS, NY_TZ, OHLC_FIELDS, QUOTE_FIELDS, SECOND_ORDER_GREEKS, arrow_schema,
    arrow_type,
)
from spxdl.datasets.wire import (
    APIS, DIRECT_OPTIONAL, DIRECT_RENAMES, DIRECT_WIRE_TYPES, OHLC_WIRE, QUOTE_WIRE, V2_CONTRACT, V2_WIRE_TYPES,
    V3_CONTRACT, V3_RENAMES, V3_WIRE_TYPES, output_name,
)
from spxdl.datasets.catalogue import (
    DATASETS, DEFAULT_DATASET, EOD, GREEKS, GREEKS_EOD, GREEKS_SECOND_ORDER, INDEX_PRICE, INDEX_SYMBOLS,
    INTERVALS, OHLC, OPEN_INTEREST, QUOTE, Dataset, get_dataset, interval_ms,
)

__all__ = [
    "APIS", "CONTRACT_FIELDS", "DATASETS", "DEFAULT_DATASET", "DIRECT_OPTIONAL", "DIRECT_RENAMES",
    "DIRECT_WIRE_TYPES", "EOD", "EOD_GREEKS", "F64", "FIRST_ORDER_GREEKS", "GREEKS", "GREEKS_EOD",
    "GREEKS_SECOND_ORDER", "I32", "I64", "INDEX_PRICE", "INDEX_SYMBOLS", "INTERVALS", "NY_TZ", "OHLC",
    "OHLC_FIELDS", "OHLC_WIRE", "OPEN_INTEREST", "QUOTE", "QUOTE_FIELDS", "QUOTE_WIRE", "SECOND_ORDER_GREEKS",
    "TIME_FIELDS", "V2_CONTRACT", "V2_WIRE_TYPES", "V3_CONTRACT", "V3_RENAMES", "V3_WIRE_TYPES", "ZONED",
    "Dataset", "arrow_schema", "arrow_type", "get_dataset", "interval_ms", "output_name",
]


def __getattr__(name: str) -> object:
    """The Arrow types of ``schema`` (``ARROW_NAMES``: F64, ZONED, CONTRACT_FIELDS ...), loading Arrow on first use."""
    if name not in ARROW_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from spxdl.datasets import schema

    return getattr(schema, name)
