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

import pytest

from spxdl import config
from spxdl.datasets import DATASETS, EOD, GREEKS, GREEKS_EOD, INDEX_PRICE, OPEN_INTEREST
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
