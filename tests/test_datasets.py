"""Dataset entries against the wire formats written out in docs/wire.md (§2, §3.2, §6.3)."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest

from spxdl import datasets
from spxdl.datasets import DATASETS, GREEKS, INTERVALS, get_dataset, interval_ms, output_name
from spxdl.errors import ConfigError

from documented_wire import V2_FORMATS, V2_HEADERS, V3_HEADERS


@pytest.mark.parametrize("name", sorted(V2_FORMATS))
def test_v2_bulk_csv_header_is_the_contract_then_the_format_fields(name):
    assert ",".join(get_dataset(name).v2_columns) == "root,expiration,strike,right," + V2_FORMATS[name]


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_v2_header_is_in_the_reference_or_the_dataset_has_no_v2_endpoint(name):
    dataset = get_dataset(name)
    if name in V2_HEADERS:
        assert ",".join(dataset.v2_columns) == V2_HEADERS[name]
    elif name not in V2_FORMATS:
        assert dataset.v2_path is None and dataset.v2_columns is None


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_v3_csv_header_is_the_one_in_the_reference(name):
    dataset = get_dataset(name)
    if name in V3_HEADERS:
        assert ",".join(dataset.v3_columns) == V3_HEADERS[name]
    else:  # no v3 endpoint in the reference
        assert dataset.v3_path is None and dataset.v3_columns is None


def test_greeks_schema_is_pinned_exactly():
    f64 = pa.float64()
    expected = pa.schema([
        ("expiration", pa.date32()), ("strike", f64), ("right", pa.string()),
        ("timestamp", pa.timestamp("ms", tz="America/New_York")), ("ms_of_day", pa.int32()),
        ("bid", f64), ("ask", f64), ("delta", f64), ("theta", f64), ("vega", f64), ("rho", f64),
        ("epsilon", f64), ("lambda", f64), ("implied_vol", f64), ("iv_error", f64),
        ("ms_of_day2", pa.int32()), ("underlying_price", f64),
        ("underlying_timestamp", pa.timestamp("ms", tz="America/New_York")),  # schema version 2, appended
    ])
    assert GREEKS.schema.equals(expected)
    assert GREEKS.schema_version == 2
    assert GREEKS is get_dataset(datasets.DEFAULT_DATASET)


@pytest.mark.parametrize("dataset", list(DATASETS.values()), ids=lambda d: d.name)
def test_every_schema_starts_with_contract_and_time_and_has_no_partition_columns(dataset):
    contract = [] if dataset.is_index else ["expiration", "strike", "right"]
    assert dataset.schema.names[: len(contract) + 2] == [*contract, "timestamp", "ms_of_day"]
    assert "root" not in dataset.schema.names and "trade_date" not in dataset.schema.names
    assert dataset.schema_version >= 1


@pytest.mark.parametrize("dataset", list(DATASETS.values()), ids=lambda d: d.name)
def test_sizes_are_int64_exchanges_and_conditions_int32_prices_float64(dataset):
    for field in dataset.schema:
        if field.name.endswith(("_size", "volume", "count", "open_interest")):
            assert field.type == pa.int64(), field.name
        elif field.name.endswith(("_exchange", "_condition", "ms_of_day", "ms_of_day2")):
            assert field.type == pa.int32(), field.name
        elif field.name not in ("expiration", "right") and not pa.types.is_timestamp(field.type):
            assert field.type == pa.float64(), field.name


@pytest.mark.parametrize("dataset", list(DATASETS.values()), ids=lambda d: d.name)
def test_both_api_versions_fill_the_same_output_columns(dataset):
    outputs = set(dataset.schema.names) - {"timestamp", dataset.second_time}  # zoned: derived from the times
    for api in ("v2", "v3"):
        columns = dataset.columns(api)
        if columns is None:
            continue
        filled = {output_name(api, name) for name in columns} - {"root", "date"}
        assert filled | set(dataset.nullable) == outputs
        assert set(dataset.wire_types(api)) == set(columns)


def test_wire_types_follow_each_versions_units():
    v2, v3 = GREEKS.wire_types("v2"), GREEKS.wire_types("v3")
    assert (v2["strike"], v2["expiration"], v2["date"], v2["ms_of_day"]) == (pa.int64(), pa.int32(), pa.int32(), pa.int32())
    assert (v3["strike"], v3["expiration"], v3["timestamp"]) == (pa.float64(), pa.date32(), pa.timestamp("ms"))
    assert v3["underlying_timestamp"] == pa.timestamp("ms") and v2["delta"] == pa.float64()


def test_archive_names_carry_the_interval_only_where_the_dataset_has_one():
    assert GREEKS.archive_name("1m") == "greeks-1m"
    assert get_dataset("quote").archive_name("5m") == "quote-5m"
    assert get_dataset("open_interest").archive_name("1m") == "open_interest"
    assert get_dataset("eod").archive_name("1m") == "eod"
    with pytest.raises(ConfigError):
        GREEKS.archive_name("7m")


def test_endpoints_per_api_version():
    assert GREEKS.path("v2") == "/v2/bulk_hist/option/greeks"
    assert GREEKS.path("v3") == "/v3/option/history/greeks/first_order"
    assert get_dataset("greeks_second_order").path("v3") == "/v3/option/history/greeks/second_order"
    assert [d.name for d in DATASETS.values() if d.greeks_params] == ["greeks", "greeks_second_order", "greeks_eod"]
    assert [d.name for d in DATASETS.values() if not d.uses_interval] == ["open_interest", "eod", "greeks_eod"]
    assert [d.name for d in DATASETS.values() if d.all_expirations] == ["open_interest", "eod", "greeks_eod"]
    assert [d.name for d in DATASETS.values() if d.is_index] == ["index_price"]
    with pytest.raises(ConfigError):
        GREEKS.path("v4")


def test_intervals_are_the_v3_names_in_milliseconds():
    assert interval_ms("1m") == 60_000 and interval_ms("1s") == 1_000 and interval_ms("1h") == 3_600_000
    assert list(INTERVALS) == ["1s", "5s", "10s", "15s", "30s", "1m", "5m", "10m", "15m", "30m", "1h"]
    with pytest.raises(ConfigError, match="1m"):
        interval_ms("90s")


def test_unknown_dataset_names_the_known_ones():
    with pytest.raises(ConfigError) as raised:
        get_dataset("trades")
    assert all(name in str(raised.value) for name in DATASETS)
    assert raised.value.key == "dataset"


@pytest.mark.parametrize("dataset", [d for d in DATASETS.values() if d.second_time], ids=lambda d: d.name)
def test_the_second_time_is_kept_zoned_at_the_end_of_the_schema(dataset):
    assert dataset.schema.names[-1] == dataset.second_time
    assert dataset.schema.field(dataset.second_time).type == pa.timestamp("ms", tz="America/New_York")
    assert "ms_of_day2" in dataset.schema.names


def test_a_dataset_one_api_lacks_is_refused_naming_the_api_that_has_it():
    v3_only = dataclasses.replace(GREEKS, name="greeks_v3_only", v2_path=None, v2_columns=None)
    with pytest.raises(ConfigError, match="served only by API v3") as raised:
        v3_only.check_served("v2", "1m")
    assert "--api v3" in str(raised.value)
    v3_only.check_served("v3", "1m")


def test_v2_quote_below_one_minute_is_refused_and_v3_is_not():
    with pytest.raises(ConfigError, match="under 1m"):
        get_dataset("quote").check_served("v2", "30s")
    get_dataset("quote").check_served("v2", "1m")
    get_dataset("quote").check_served("v3", "30s")
    GREEKS.check_served("v2", "30s")


def test_index_price_follows_the_index_of_the_roots_and_covers_no_dte_window():
    index = get_dataset("index_price")
    assert index.roots_for(("SPXW", "SPX")) == ("SPX",)
    assert index.roots_for(("SPXW", "VIX")) == ("SPX", "VIX")
    assert GREEKS.roots_for(("SPXW", "VIX")) == ("SPXW", "VIX")
    with pytest.raises(ConfigError, match="add SPXW or SPX"):
        index.roots_for(("NDX",))
    assert index.dte_window(0, 60) == (0, 0) and GREEKS.dte_window(3, 60) == (3, 60)
    assert index.archive_name("1m") == "index_price-1m" and get_dataset("greeks_eod").archive_name("1m") == "greeks_eod"
    assert index.contract_columns == () and GREEKS.contract_columns == ("expiration", "strike", "right")


def test_greeks_eod_is_served_by_v3_only():
    with pytest.raises(ConfigError, match="served only by API v3"):
        get_dataset("greeks_eod").check_served("v2", "1m")
