"""The direct source without the SDK: what it asks for, what its failures mean, and the one line on what to install.

These run on every Python (the SDK's own tests, against loopback doubles, are test_direct_*.py).
The SDK's exceptions are matched by class name: here classes of those names stand in for them, as
the SDK's module would define them. A machine without the SDK is a real subprocess in which
``import thetadatadx`` fails.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import pyarrow as pa
import pytest

from spxdl import config, convert
from spxdl.datasets import DATASETS, EOD, GREEKS, GREEKS_EOD, INDEX_PRICE, OPEN_INTEREST, QUOTE
from spxdl.direct import error_for, history_call, is_sdk_error, no_rows, sdk_missing_reason
from spxdl.errors import (
    BadRequest,
    BodyTruncated,
    ConfigError,
    NoData,
    PermissionDenied,
    SchemaMismatch,
    TerminalUnavailable,
    Throttled,
)

SPXDL = [sys.executable, "-m", "spxdl"]
WITHOUT_SDK = "import sys; sys.modules['thetadatadx'] = None; from spxdl.cli import main; sys.argv[0] = 'spxdl'; main()"


def sdk_error(name: str, *bases: str, message: str = "", **attributes: object) -> Exception:
    """An exception as the SDK raises it: its class name and bases, in its module."""
    parents = tuple(type(base, (Exception,), {"__module__": "thetadatadx"}) for base in bases) or (Exception,)
    kind = type(name, parents, {"__module__": "thetadatadx"})
    error = kind(message)
    for key, value in attributes.items():
        setattr(error, key, value)
    return error


@pytest.mark.parametrize("name, bases, message, expected", [
    ("NotFoundError", ("ThetaDataError",), "gRPC status NotFound: none", NoData),
    ("SubscriptionError", ("ThetaDataError",), "gRPC status PermissionDenied: tier", PermissionDenied),
    ("InvalidCredentialsError", ("AuthenticationError",), "invalid credentials (server returned 401/404)",
     PermissionDenied),
    ("AuthenticationError", ("ThetaDataError",), "gRPC status Unauthenticated: expired", PermissionDenied),
    ("AuthenticationError", ("ThetaDataError",), "Authentication error (NetworkError): Nexus API request failed",
     TerminalUnavailable),
    ("RateLimitError", ("ThetaDataError",), "gRPC status ResourceExhausted: slow", Throttled),
    ("UnavailableError", ("ThetaDataError",), "gRPC status Unavailable: down", TerminalUnavailable),
    ("NetworkError", ("ThetaDataError",), "transport error (tls): UnknownIssuer", TerminalUnavailable),
    ("DeadlineExceededError", ("ThetaDataError",), "Request deadline exceeded after 500 ms", TerminalUnavailable),
    ("StreamError", ("ThetaDataError",), "stream reset", BodyTruncated),
    ("InvalidParameterError", ("ThetaDataError",), "right: invalid option right", BadRequest),
    ("ThetaDataError", (), "gRPC status InvalidArgument: bad interval", BadRequest),
    ("ThetaDataError", (), "gRPC status Internal: oops", TerminalUnavailable),
    ("SchemaMismatchError", ("ThetaDataError",), "columns changed", SchemaMismatch),
    ("ConfigError", ("ThetaDataError",), "bad config", ConfigError),
])
def test_each_sdk_failure_maps_into_spxdls_tree(name, bases, message, expected):
    error = error_for(sdk_error(name, *bases, message=message), call="option_history_quote",
                      params={"symbol": "SPXW", "date": "20240314"})
    assert type(error) is expected
    if expected not in (ConfigError, SchemaMismatch):
        assert error.endpoint == "option_history_quote" and error.params == {"symbol": "SPXW", "date": "20240314"}
        assert error.body == message


def test_a_throttle_keeps_the_sdks_retry_after():
    error = error_for(sdk_error("RateLimitError", "ThetaDataError", retry_after=2.5), call="option_history_quote")
    assert isinstance(error, Throttled) and error.retry_after == 2.5


def test_only_the_sdks_own_exceptions_are_its_errors():
    assert is_sdk_error(sdk_error("NotFoundError", "ThetaDataError"))
    assert not is_sdk_error(ValueError("x")) and not is_sdk_error(KeyError("thetadatadx"))


def test_an_answer_without_rows_is_no_data():
    error = no_rows("option_history_eod", {"symbol": "SPXW", "expiration": "*"})
    assert isinstance(error, NoData) and "without rows" in str(error) and error.params["expiration"] == "*"


def test_a_history_call_carries_what_the_terminals_v3_request_carries():
    greeks = history_call(GREEKS, "SPXW", date(2024, 3, 15), date(2024, 3, 14), interval="1m", start_ms=34_200_000,
                          end_ms=57_600_000, rate="SOFR", rate_value=0.0533, annual_div=1.5, strike=5150.0, right="C")
    assert greeks.name == "option_history_greeks_first_order"
    assert greeks.params == {"symbol": "SPXW", "expiration": "20240315", "date": "20240314", "interval": "1m",
                             "start_time": "09:30:00", "end_time": "16:00:00", "rate_type": "sofr",
                             "rate_value": "5.33", "annual_dividend": "1.5", "strike": "5150.000", "right": "call"}
    eod = history_call(EOD, "SPXW", None, date(2024, 3, 14), interval="1m", start_ms=0, end_ms=1)
    assert eod.params == {"symbol": "SPXW", "expiration": "*", "start_date": "20240314", "end_date": "20240314"}
    assert history_call(GREEKS_EOD, "SPXW", None, date(2024, 3, 14), interval="1m", start_ms=0,
                        end_ms=1).params["expiration"] == "*"
    assert history_call(OPEN_INTEREST, "SPX", None, date(2024, 3, 14), interval="1m", start_ms=0,
                        end_ms=1).params == {"symbol": "SPX", "expiration": "*", "date": "20240314"}
    index = history_call(INDEX_PRICE, "SPX", None, date(2024, 3, 14), interval="5m", start_ms=34_200_500,
                         end_ms=57_600_000)
    assert index.params == {"symbol": "SPX", "date": "20240314", "interval": "5m", "start_time": "09:30:00.500",
                            "end_time": "16:00:00"}


def test_every_dataset_has_an_sdk_method_and_pinned_columns():
    for dataset in DATASETS.values():
        assert dataset.direct_call and dataset.path("direct") == dataset.direct_call
        assert "date" in dataset.direct_columns and dataset.wire_types("direct")
        dataset.check_served("direct", "1m")


@pytest.mark.parametrize("version, error, said", [
    ((3, 11, 7), None, "needs Python 3.12 or newer, and this is Python 3.11.7: install Python 3.12+, then make install"),
    ((3, 12, 1), ImportError("No module named 'thetadatadx'"), "is not installed: pip install 'spxdl[direct]'"),
    ((3, 13, 0), None, None),
])
def test_what_to_install_is_one_line(version, error, said):
    reason = sdk_missing_reason(version, error)
    assert reason == said if said is None else (said in reason and "\n" not in reason)


def test_source_is_a_setting_with_a_flag_env_and_file(tmp_path, monkeypatch):
    assert config.load(None, flags={}).source == "terminal"
    assert config.load(None, flags={"source": "direct"}).source == "direct"
    monkeypatch.setenv("SPXDL_TERMINAL_SOURCE", "direct")
    assert config.load(None, flags={}).sources["source"].startswith("env")
    with pytest.raises(ConfigError, match="terminal.source = 'java'"):
        config.load(None, flags={"source": "java"})


def test_the_terminals_calendar_cannot_be_in_charge_of_the_direct_source():
    with pytest.raises(ConfigError, match=r"\[calendar\] source = terminal .* \[terminal\] source = direct has none"):
        config.load(None, flags={"source": "direct", "calendar_source": "terminal"})


def run_without_sdk(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_SDK, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_without_the_sdk_the_direct_source_says_in_one_line_what_to_install(tmp_path):
    result = run_without_sdk("run", "--source", "direct", "--date", "2024-03-14", "--data-dir", str(tmp_path / "d"),
                             cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.startswith("spxdl: error:")]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(lines) == 1
    assert "needs the thetadatadx-py SDK" in lines[0]
    assert ("Python 3.12 or newer" in lines[0]) if sys.version_info < (3, 12) else ("pip install" in lines[0])


def test_simulate_cannot_stand_in_for_thetadata_behind_the_sdk(tmp_path):
    result = subprocess.run([*SPXDL, "run", "--simulate", "--source", "direct"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--simulate cannot serve [terminal] source = direct" in result.stderr
    assert "trusting only the public authorities compiled into it" in result.stderr
    assert not (tmp_path / "sim-data").exists()


def test_capture_has_nothing_to_keep_from_the_direct_source(tmp_path):
    from spxdl.engine.shared import client_for

    settings = config.load(None, flags={"source": "direct"}).replace(capture_dir=tmp_path / "capture")
    with pytest.raises(ConfigError, match="--capture keeps a terminal's HTTP answers"):
        client_for(settings)


# ---------------------------------------------------------------------------------------------
# the SDK's Arrow chunks through the converter (tables made as the SDK makes them)


def quote_chunk(**changes) -> pa.Table:
    columns = {
        "symbol": pa.array(["SPXW"] * 2), "ms_of_day": pa.array([36_000_000, 36_060_000], pa.int32()),
        "bid_size": pa.array([10, 12], pa.int32()), "bid_exchange": pa.array([5, 5], pa.int32()),
        "bid": pa.array([1.05, 1.10]), "bid_condition": pa.array([50, 50], pa.int32()),
        "ask_size": pa.array([11, 13], pa.int32()), "ask_exchange": pa.array([5, 5], pa.int32()),
        "ask": pa.array([1.15, 1.20]), "ask_condition": pa.array([50, 50], pa.int32()),
        "date": pa.array([20240314, 20240314], pa.int32()), "expiration": pa.array([20240315] * 2, pa.int32()),
        "strike": pa.array([5150.0, 5150.0]), "right": pa.array(["C", "C"]),
    }
    columns.update(changes)
    return pa.table({name: value for name, value in columns.items() if value is not None})


def direct_spec(dataset=QUOTE, expiration=date(2024, 3, 15)) -> convert.ConvertSpec:
    return convert.ConvertSpec(dataset, "direct", "SPXW", expiration, date(2024, 3, 14), 36_000_000, 36_060_000,
                               60_000 if dataset.uses_interval else None)


def test_an_sdk_chunk_becomes_the_pinned_schema_with_its_types_cast():
    converter = convert.Converter(direct_spec())
    (columns,) = list(converter.columns([quote_chunk()]))
    assert columns["bid_size"].type == pa.int64() and columns["expiration"].type == pa.date32()
    table = pa.Table.from_batches(list(convert.Converter(direct_spec()).batches([quote_chunk()])))
    assert table.schema.equals(QUOTE.schema)
    assert table.column("timestamp")[0].as_py().isoformat() == "2024-03-14T10:00:00-04:00"
    assert table.column("right").to_pylist() == ["C", "C"] and table.column("strike").to_pylist() == [5150.0] * 2


def test_a_chunk_without_a_pinned_column_is_a_schema_mismatch_naming_it():
    with pytest.raises(SchemaMismatch, match="missing bid_size") as caught:
        list(convert.Converter(direct_spec()).batches([quote_chunk(bid_size=None)]))
    assert caught.value.columns == ["bid_size"]


def test_columns_the_sdk_adds_are_left_out_and_reported_and_empty_chunks_skipped():
    converter = convert.Converter(direct_spec())
    batches = list(converter.batches([pa.table({}), quote_chunk(new_thing=pa.array([1, 2]))]))
    assert sum(batch.num_rows for batch in batches) == 2 and converter.extra_columns == ["new_thing"]
    assert converter.pages == 2


def test_the_underlyings_own_date_gives_its_instant():
    greeks = {name: pa.array([0.5]) for name in ("bid", "ask", "delta", "theta", "vega", "rho", "epsilon", "lambda",
                                                  "implied_volatility", "iv_error", "underlying_price")}
    chunk = pa.table({**greeks, "ms_of_day": pa.array([36_000_000], pa.int32()),
                      "underlying_ms_of_day": pa.array([72_000_000], pa.int32()),
                      "date": pa.array([20240314], pa.int32()), "underlying_date": pa.array([20240313], pa.int32()),
                      "expiration": pa.array([20240315], pa.int32()), "strike": pa.array([5150.0]),
                      "right": pa.array(["P"])})
    spec = convert.ConvertSpec(GREEKS, "direct", "SPXW", date(2024, 3, 15), date(2024, 3, 14), 36_000_000,
                               36_000_000, 60_000)
    (batch,) = list(convert.Converter(spec).batches([chunk]))
    row = batch.to_pylist()[0]
    assert row["underlying_timestamp"].isoformat() == "2024-03-13T20:00:00-04:00"  # the evening before
    assert row["ms_of_day2"] == 72_000_000 and row["timestamp"].isoformat() == "2024-03-14T10:00:00-04:00"
